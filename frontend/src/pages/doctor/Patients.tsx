// My patients: everyone whose TREATMENT consent I hold and is in force, with what it covers.
import { listConsents } from "../../api/lists";
import type { Consent } from "../../api/types";
import { Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { useLoad } from "../../hooks/useLoad";
import { CATEGORY_WORDS } from "../../lib/consent";
import { formatDate, shortHex } from "../../lib/format";
import { Link } from "../../router";

export type PatientSummary = { address: string; scopes: string[]; expiresAt: string | null; consents: number };

/** Scope as a doctor reads it (the patient's "your whole chart" is "the whole chart" here). */
export function scopeForDoctor(scope: string): string {
  if (scope === "chart") return "whole chart";
  if (scope.startsWith("category:")) return CATEGORY_WORDS[scope.slice(9)] ?? scope.slice(9);
  if (scope.startsWith("record:")) return "one record";
  return scope;
}

/** One line per patient; a consent without expiry makes the patient's access open-ended. */
export function patientsFrom(consents: readonly Consent[]): PatientSummary[] {
  const byPatient = new Map<string, PatientSummary>();
  for (const consent of consents) {
    if (consent.status !== "active" || consent.revocation_pending) continue;
    const entry = byPatient.get(consent.patient_address) ?? {
      address: consent.patient_address,
      scopes: [],
      expiresAt: consent.expires_at ?? null,
      consents: 0,
    };
    entry.consents += 1;
    const scope = scopeForDoctor(consent.scope);
    if (!entry.scopes.includes(scope)) entry.scopes.push(scope);
    if (entry.expiresAt !== null) {
      entry.expiresAt = !consent.expires_at ? null : consent.expires_at > entry.expiresAt ? consent.expires_at : entry.expiresAt;
    }
    byPatient.set(consent.patient_address, entry);
  }
  return [...byPatient.values()];
}

export function Patients() {
  const loaded = useLoad(() => listConsents({ status: "active", purpose: "TREATMENT" }), []);
  const patients = loaded.data ? patientsFrom(loaded.data) : [];
  return (
    <Page title="My patients" intro="Patients whose consent lets you see their records for their treatment.">
      {loaded.error ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      {!loaded.data && loaded.loading ? <Loading what="patients" /> : null}
      {loaded.data && !patients.length ? <Empty>No patient has given you access.</Empty> : null}
      {patients.length ? (
        <table className="cards">
          <caption className="visually-hidden">My patients</caption>
          <thead>
            <tr>
              <th scope="col">Patient</th>
              <th scope="col">Access to</th>
              <th scope="col">Until</th>
            </tr>
          </thead>
          <tbody>
            {patients.map((patient) => (
              <tr key={patient.address}>
                <td data-label="Patient">
                  <Link to={`/patients/${patient.address}`} title={patient.address}>
                    Patient {shortHex(patient.address)}
                  </Link>
                </td>
                <td data-label="Access to">{patient.scopes.join(", ")}</td>
                <td data-label="Until">{patient.expiresAt ? formatDate(patient.expiresAt) : "until revoked"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </Page>
  );
}
