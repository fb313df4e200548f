// The consortium admin's hospitals: every hospital and where it stands in the chain's Directory, a form
// that creates a hospital (with its admin, new or existing) and registers it, signed with the consortium
// admin's key and followed from pending to active while it is mined, and a deactivation, followed the same way.
import { useState, type FormEvent } from "react";
import { api, call } from "../../api/client";
import type { HospitalEntry } from "../../api/types";
import { FormError, TextField, type FormErrors } from "../../components/Fields";
import { ConnectionWatch, Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { useLoad } from "../../hooks/useLoad";
import { useRefreshWhile } from "../../hooks/useRefreshWhile";
import { formErrorsFrom } from "../../lib/errors";
import { DeactivateCell, EntryBadge, statusInWords } from "./directoryEntry";

const SLUG = /^[-a-zA-Z0-9_]+$/;
const USERNAME = /^[\w.@+-]+$/;
const FIELDS = ["slug", "name", "admin_username", "admin_password", "password"] as const;

export type HospitalForm = Record<(typeof FIELDS)[number], string>;
const EMPTY: HospitalForm = { slug: "", name: "", admin_username: "", admin_password: "", password: "" };

/** The page's own check of the form (the API checks again). */
export function checkHospitalForm(form: HospitalForm): FormErrors {
  const errors: FormErrors = {};
  if (!form.name.trim()) errors.name = "Enter the hospital's name.";
  if (!form.slug) errors.slug = "Enter a short name for addresses, such as general-hospital.";
  else if (!SLUG.test(form.slug) || form.slug.length > 64) {
    errors.slug = "Letters, digits, - and _ only, at most 64.";
  }
  if (!form.admin_username) errors.admin_username = "Enter the username of the hospital's admin.";
  else if (!USERNAME.test(form.admin_username)) errors.admin_username = "Letters, digits and @ . + - _ only.";
  if (!form.password) errors.password = "Enter your password to sign the registration.";
  return errors;
}

async function loadHospitals(): Promise<HospitalEntry[]> {
  const page = await call(api.GET("/api/hospitals", { params: { query: { limit: 500 } } }));
  // The list says only active or not: each entry's own page says pending, failed or inactive.
  return Promise.all(
    page.results.map((hospital) => call(api.GET("/api/hospitals/{slug}", { params: { path: { slug: hospital.slug } } }))),
  );
}

function RegisterForm({ onRegistered }: { onRegistered: (hospital: HospitalEntry) => void }) {
  const [form, setForm] = useState<HospitalForm>(EMPTY);
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const set = (name: keyof HospitalForm) => (event: { target: { value: string } }) =>
    setForm({ ...form, [name]: event.target.value });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const found = checkHospitalForm(form);
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      const body = {
        slug: form.slug,
        name: form.name.trim(),
        admin_username: form.admin_username,
        password: form.password,
        ...(form.admin_password ? { admin_password: form.admin_password } : {}),
      };
      const hospital = await call(api.POST("/api/hospitals", { body }));
      setForm(EMPTY);
      onRegistered(hospital);
    } catch (error) {
      setErrors(formErrorsFrom(error, FIELDS));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="panel" onSubmit={submit} noValidate aria-labelledby="register-hospital">
      <h2 id="register-hospital">Register a hospital</h2>
      <FormError errors={errors} />
      <TextField id="name" label="Name" value={form.name} onChange={set("name")} error={errors.name} />
      <TextField id="slug" label="Short name" autoComplete="off" spellCheck={false} value={form.slug} onChange={set("slug")} error={errors.slug} />
      <TextField
        id="admin_username"
        label="Admin's username"
        autoComplete="off"
        value={form.admin_username}
        onChange={set("admin_username")}
        error={errors.admin_username}
      />
      <TextField
        id="admin_password"
        label="Admin's password (for a new admin)"
        type="password"
        autoComplete="new-password"
        hint="Leave empty to name an existing hospital admin who runs no hospital yet."
        value={form.admin_password}
        onChange={set("admin_password")}
        error={errors.admin_password}
      />
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

export function Hospitals() {
  const loaded = useLoad(loadHospitals, []);
  const [deactivating, setDeactivating] = useState<string | null>(null);
  const [followed, setFollowed] = useState<string | null>(null);
  const hospitals = loaded.data ?? [];
  useRefreshWhile(hospitals.some((hospital) => hospital.status === "pending"), loaded.refresh);
  const follow = (slug: string) => {
    setFollowed(slug);
    void loaded.refresh();
  };
  const followedHospital = hospitals.find((hospital) => hospital.slug === followed);

  return (
    <Page
      title="Hospitals"
      intro="The consortium's hospitals. Registering or deactivating one is signed with your key and written in the chain's Directory."
    >
      <p className="live" role="status" aria-live="polite">
        {followedHospital ? `${followedHospital.name}: ${statusInWords(followedHospital).label}.` : ""}
      </p>
      <ConnectionWatch error={loaded.data ? loaded.error : null} />
      {loaded.error && !loaded.data ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      {!loaded.data && loaded.loading ? <Loading what="hospitals" /> : null}
      {loaded.data && !hospitals.length ? <Empty>No hospital is registered yet.</Empty> : null}
      {hospitals.length ? (
        <table className="cards">
          <caption className="visually-hidden">Hospitals</caption>
          <thead>
            <tr>
              <th scope="col">Hospital</th>
              <th scope="col">Admin</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {hospitals.map((hospital) => (
              <tr key={hospital.slug} data-hospital={hospital.slug}>
                <td data-label="Hospital">
                  {hospital.name} <span className="hint">({hospital.slug})</span>
                </td>
                <td data-label="Admin">{hospital.admin_username}</td>
                <td data-label="Status">
                  <EntryBadge entry={hospital} />
                </td>
                <td data-label="Actions">
                  <DeactivateCell
                    id={hospital.slug}
                    name={hospital.name}
                    active={hospital.status === "active"}
                    open={deactivating === hospital.slug}
                    onOpen={() => setDeactivating(hospital.slug)}
                    onClose={() => setDeactivating(null)}
                    deactivate={(password) =>
                      call(
                        api.POST("/api/hospitals/{slug}/deactivate", {
                          params: { path: { slug: hospital.slug } },
                          body: { password },
                        }),
                      )
                    }
                    onDeactivated={() => follow(hospital.slug)}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <RegisterForm onRegistered={(hospital) => follow(hospital.slug)} />
    </Page>
  );
}
