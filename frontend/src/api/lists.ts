// The list reads the pages share, each typed by the schema.
import { api, call } from "./client";
import type { Category, Consent, Doctor, Hospital, RecordMeta } from "./types";

export const PAGE = 50;
const ALL = 500; // the API's largest page: directories and consent lists stay far below it

export type RecordPage = { records: RecordMeta[]; total: number };

export async function listRecords(options: {
  patient?: string;
  category?: Category;
  offset?: number;
  limit?: number;
}): Promise<RecordPage> {
  const page = await call(
    api.GET("/api/records", {
      params: { query: { limit: options.limit ?? PAGE, offset: options.offset ?? 0, patient: options.patient, category: options.category } },
    }),
  );
  return { records: page.results, total: page.count };
}

export async function listConsents(query: { status?: "active"; purpose?: "TREATMENT" } = {}): Promise<Consent[]> {
  const page = await call(api.GET("/api/consents", { params: { query: { limit: ALL, ...query } } }));
  return page.results;
}

export async function getConsent(id: string): Promise<Consent> {
  return call(api.GET("/api/consents/{consent_id}", { params: { path: { consent_id: id } } }));
}

export type Directory = { doctors: Doctor[]; hospitals: Hospital[] };

export async function loadDirectory(): Promise<Directory> {
  const [doctors, hospitals] = await Promise.all([
    call(api.GET("/api/doctors", { params: { query: { limit: ALL } } })),
    call(api.GET("/api/hospitals", { params: { query: { limit: ALL } } })),
  ]);
  return { doctors: doctors.results, hospitals: hospitals.results };
}
