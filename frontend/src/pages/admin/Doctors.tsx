// The hospital admin's doctors: who works here and where each stands in the chain's Directory, a form
// that creates a doctor's account and registers them (signed with the admin's key, followed from
// pending to active while it is mined), and a deactivation, followed the same way.
import { useState, type FormEvent } from "react";
import { api, call } from "../../api/client";
import type { components } from "../../api/schema";
import type { DoctorEntry } from "../../api/types";
import { Hex } from "../../components/Chain";
import { FormError, TextField, type FormErrors } from "../../components/Fields";
import { ConnectionWatch, Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { useLoad } from "../../hooks/useLoad";
import { useRefreshWhile } from "../../hooks/useRefreshWhile";
import { formErrorsFrom } from "../../lib/errors";
import { useMe } from "../../session";
import { DeactivateCell, EntryBadge, statusInWords } from "../consortium/directoryEntry";

const USERNAME = /^[\w.@+-]+$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
type DoctorCreate = components["schemas"]["DoctorCreateIn"];
const FIELDS = ["username", "doctor_password", "eth_address", "email", "password"] as const;

export type DoctorForm = Record<(typeof FIELDS)[number], string>;
const EMPTY: DoctorForm = { username: "", doctor_password: "", eth_address: "", email: "", password: "" };

/** The page's own check of the form (the API checks again). */
export function checkDoctorForm(form: DoctorForm): FormErrors {
  const errors: FormErrors = {};
  if (!form.username) errors.username = "Enter the doctor's username.";
  else if (!USERNAME.test(form.username)) errors.username = "Letters, digits and @ . + - _ only.";
  else if (ADDRESS.test(form.username)) errors.username = "A username must not look like an Ethereum address.";
  if (form.eth_address && !ADDRESS.test(form.eth_address)) {
    errors.eth_address = "An Ethereum address is 0x followed by 40 hexadecimal digits.";
  }
  if (!form.doctor_password && !form.eth_address) {
    errors.doctor_password = "Give the doctor a password, or their wallet address below.";
  }
  if (!form.password) errors.password = "Enter your password to sign the registration.";
  return errors;
}

async function loadDoctors(hospital: string | undefined): Promise<DoctorEntry[]> {
  const page = await call(api.GET("/api/doctors", { params: { query: { limit: 500, hospital } } }));
  // The list says only active or not: each entry's own page says pending, failed or inactive.
  return Promise.all(
    page.results.map((doctor) =>
      call(api.GET("/api/doctors/{doctor_id}", { params: { path: { doctor_id: doctor.id } } })),
    ),
  );
}

function RegisterForm({ onRegistered }: { onRegistered: (doctor: DoctorEntry) => void }) {
  const [form, setForm] = useState<DoctorForm>(EMPTY);
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const set = (name: keyof DoctorForm) => (event: { target: { value: string } }) =>
    setForm({ ...form, [name]: event.target.value });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const found = checkDoctorForm(form);
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      const body = {
        username: form.username,
        password: form.password,
        ...(form.email ? { email: form.email } : {}),
        ...(form.doctor_password ? { doctor_password: form.doctor_password } : {}),
        ...(form.eth_address ? { eth_address: form.eth_address } : {}),
      };
      // The schema marks `email` as sent (it has a default), but the API refuses a blank one: an empty
      // email is left out, which the API accepts (the field is optional).
      const doctor = await call(api.POST("/api/doctors", { body: body as DoctorCreate }));
      setForm(EMPTY);
      onRegistered(doctor);
    } catch (error) {
      setErrors(formErrorsFrom(error, FIELDS));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="panel" onSubmit={submit} noValidate aria-labelledby="register-doctor">
      <h2 id="register-doctor">Register a doctor</h2>
      <FormError errors={errors} />
      <TextField id="username" label="Username" autoComplete="off" value={form.username} onChange={set("username")} error={errors.username} />
      <TextField
        id="doctor_password"
        label="The doctor's password"
        type="password"
        autoComplete="new-password"
        hint="Without a wallet address, a key is kept for the doctor, unlocked by this password."
        value={form.doctor_password}
        onChange={set("doctor_password")}
        error={errors.doctor_password}
      />
      <TextField
        id="eth_address"
        label="The doctor's wallet address (optional)"
        autoComplete="off"
        spellCheck={false}
        value={form.eth_address}
        onChange={set("eth_address")}
        error={errors.eth_address}
      />
      <TextField id="email" label="Email (optional)" type="email" value={form.email} onChange={set("email")} error={errors.email} />
      <TextField
        id="password"
        label="Your password, to sign"
        type="password"
        autoComplete="current-password"
        value={form.password}
        onChange={set("password")}
        error={errors.password}
      />
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Signing…" : "Sign and register"}
        </button>
      </div>
    </form>
  );
}

function followMessage(doctor: DoctorEntry | undefined): string {
  if (!doctor) return "";
  const words = statusInWords(doctor);
  return `${doctor.username}: ${words.label}.`;
}

export function Doctors() {
  const me = useMe();
  const loaded = useLoad(() => loadDoctors(me.hospital?.slug), [me.hospital?.slug]);
  const [deactivating, setDeactivating] = useState<number | null>(null);
  const [followed, setFollowed] = useState<number | null>(null);
  const doctors = loaded.data ?? [];
  useRefreshWhile(doctors.some((doctor) => doctor.status === "pending"), loaded.refresh);
  const follow = (id: number) => {
    setFollowed(id);
    void loaded.refresh();
  };

  return (
    <Page
      title="Doctors"
      intro={`The doctors of ${me.hospital?.name ?? "your hospital"}. Registering or deactivating one is signed with your key and written in the chain's Directory.`}
    >
      <p className="live" role="status" aria-live="polite">
        {followMessage(doctors.find((doctor) => doctor.id === followed))}
      </p>
      <ConnectionWatch error={loaded.data ? loaded.error : null} />
      {loaded.error && !loaded.data ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      {!loaded.data && loaded.loading ? <Loading what="doctors" /> : null}
      {loaded.data && !doctors.length ? <Empty>No doctor is registered at your hospital yet.</Empty> : null}
      {doctors.length ? (
        <table className="cards">
          <caption className="visually-hidden">Doctors</caption>
          <thead>
            <tr>
              <th scope="col">Doctor</th>
              <th scope="col">Address</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {doctors.map((doctor) => (
              <tr key={doctor.id} data-doctor={doctor.username}>
                <td data-label="Doctor">
                  {doctor.username}
                  {doctor.name && doctor.name !== doctor.username ? <span className="hint"> {doctor.name}</span> : null}
                </td>
                <td data-label="Address">
                  <Hex value={doctor.eth_address} label="address" />
                </td>
                <td data-label="Status">
                  <EntryBadge entry={doctor} />
                </td>
                <td data-label="Actions">
                  <DeactivateCell
                    id={String(doctor.id)}
                    name={doctor.username}
                    active={doctor.status === "active"}
                    open={deactivating === doctor.id}
                    onOpen={() => setDeactivating(doctor.id)}
                    onClose={() => setDeactivating(null)}
                    deactivate={(password) =>
                      call(
                        api.POST("/api/doctors/{doctor_id}/deactivate", {
                          params: { path: { doctor_id: doctor.id } },
                          body: { password },
                        }),
                      )
                    }
                    onDeactivated={() => follow(doctor.id)}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <RegisterForm onRegistered={(doctor) => follow(doctor.id)} />
    </Page>
  );
}
