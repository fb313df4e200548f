// The access-request calls the doctor's and the patient's pages share, each typed by the schema.
import { api, call } from "./client";
import type { AccessRequest } from "../lib/requests";

const ALL = 500; // the API's largest page: one person's requests stay far below it

/** As patient: the requests made to me; as doctor: those I made. Newest first. */
export async function listAccessRequests(): Promise<AccessRequest[]> {
  const page = await call(api.GET("/api/access-requests", { params: { query: { limit: ALL } } }));
  return page.results;
}
