// The training API calls the hospital admin's pages share, each typed by the schema.
import { api, call } from "../api/client";
import type { TrainingJob, TrainingJobCreate, TrainingJobDetail } from "../api/types";

const ALL = 500; // the API's largest page: one hospital's jobs stay far below it

export async function listJobs(): Promise<TrainingJob[]> {
  const page = await call(api.GET("/api/training/jobs", { params: { query: { limit: ALL } } }));
  return page.results;
}

export function getJob(job: string): Promise<TrainingJobDetail> {
  return call(api.GET("/api/training/jobs/{job}", { params: { path: { job } } }));
}

export function createJob(body: TrainingJobCreate): Promise<TrainingJobDetail> {
  return call(api.POST("/api/training/jobs", { body }));
}

export function approveJob(job: string, password: string): Promise<TrainingJobDetail> {
  return call(api.POST("/api/training/jobs/{job}/approve", { params: { path: { job } }, body: { password } }));
}

export function startJob(job: string, schedule: Record<string, unknown>): Promise<TrainingJobDetail> {
  return call(api.POST("/api/training/jobs/{job}/start", { params: { path: { job } }, body: { schedule } }));
}

export function cancelJob(job: string): Promise<TrainingJobDetail> {
  return call(api.POST("/api/training/jobs/{job}/cancel", { params: { path: { job } } }));
}
