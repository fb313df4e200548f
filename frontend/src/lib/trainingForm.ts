// The new-job and start forms: their values as typed, the page's own checks (the API checks again and
// its `field` lands next to the same control), and the bodies the API takes.
import { ApiError } from "../api/client";
import type { TrainingJobCreate } from "../api/types";
import { FORM, type FormErrors } from "../components/Fields";

export type JobForm = {
  name: string;
  model: "logistic" | "mlp";
  hidden: string;
  strategy: string;
  rounds: string;
  hospitals: string[];
  quorum: string;
  local_epochs: string;
  batch_size: string;
  lr: string;
  round_timeout_s: string;
};

export const JOB_FIELDS = [
  "name",
  "model",
  "strategy",
  "rounds",
  "hospitals",
  "quorum",
  "local_epochs",
  "batch_size",
  "lr",
  "round_timeout_s",
] as const;

export const STRATEGIES = [
  { value: "fedavg", label: "FedAvg (weighted by sample count)" },
  { value: "fedprox", label: "FedProx" },
  { value: "median", label: "Coordinate-wise median" },
  { value: "trimmed_mean", label: "Trimmed mean" },
  { value: "krum", label: "Krum" },
  { value: "trust_score", label: "Trust scores" },
];

export function emptyJobForm(myHospital: string): JobForm {
  return {
    name: "",
    model: "logistic",
    hidden: "32",
    strategy: "fedavg",
    rounds: "3",
    hospitals: myHospital ? [myHospital] : [],
    quorum: "1",
    local_epochs: "2",
    batch_size: "8",
    lr: "0.1",
    round_timeout_s: "600",
  };
}

function wholeNumber(text: string, min: number, max: number): number | null {
  if (!/^\d+$/.test(text.trim())) return null;
  const value = Number(text);
  return value >= min && value <= max ? value : null;
}

/** The page's own checks, by field; empty when the form may be sent. */
export function checkJobForm(form: JobForm, myHospital: string): FormErrors {
  const errors: FormErrors = {};
  if (!form.name.trim()) errors.name = "Give the job a name.";
  else if (form.name.length > 200) errors.name = "At most 200 characters.";
  if (form.model === "mlp" && !/^\s*\d+(\s*,\s*\d+)*\s*$/.test(form.hidden)) {
    errors.model = "Hidden layers: whole numbers separated by commas, e.g. 32, 16.";
  }
  if (wholeNumber(form.rounds, 1, 10_000) === null) errors.rounds = "Rounds: a whole number from 1 to 10,000.";
  if (!form.hospitals.length) errors.hospitals = "Pick at least one hospital.";
  else if (myHospital && !form.hospitals.includes(myHospital)) errors.hospitals = "Your own hospital must take part.";
  const quorum = wholeNumber(form.quorum, 1, 100);
  if (quorum === null) errors.quorum = "Quorum: a whole number of hospitals, at least 1.";
  else if (form.hospitals.length && quorum > form.hospitals.length) {
    errors.quorum = `Quorum cannot exceed the ${form.hospitals.length} hospital${form.hospitals.length === 1 ? "" : "s"} taking part.`;
  }
  if (wholeNumber(form.local_epochs, 1, 1_000) === null) errors.local_epochs = "Local epochs: a whole number from 1 to 1,000.";
  if (wholeNumber(form.batch_size, 1, 1_000_000) === null) errors.batch_size = "Batch size: a whole number, at least 1.";
  const lr = Number(form.lr);
  if (!form.lr.trim() || !Number.isFinite(lr) || lr <= 0 || lr > 1e6) errors.lr = "Learning rate: a number greater than 0, e.g. 0.1.";
  if (wholeNumber(form.round_timeout_s, 1, 7 * 24 * 3600) === null) {
    errors.round_timeout_s = "Round timeout: whole seconds, from 1 to 604,800 (a week).";
  }
  return errors;
}

export function jobBody(form: JobForm): TrainingJobCreate {
  const model =
    form.model === "mlp"
      ? { name: "mlp", hidden: form.hidden.split(",").map((width) => Number(width.trim())) }
      : { name: "logistic" };
  return {
    name: form.name.trim(),
    model,
    strategy: { name: form.strategy },
    rounds: Number(form.rounds),
    hospitals: form.hospitals,
    quorum: Number(form.quorum),
    local_epochs: Number(form.local_epochs),
    batch_size: Number(form.batch_size),
    lr: Number(form.lr),
    round_timeout_s: Number(form.round_timeout_s),
  };
}

export type ScheduleForm = { kind: "now" | "at" | "periodic"; at: string; every: string };
export const SCHEDULE_FIELDS = ["kind", "at", "every"] as const;
export const MIN_PERIOD_S = 10;

export function checkSchedule(form: ScheduleForm, now: Date = new Date()): FormErrors {
  const errors: FormErrors = {};
  if (form.kind === "at") {
    const when = new Date(form.at);
    if (!form.at || Number.isNaN(when.getTime())) errors.at = "Pick the date and time to start.";
    else if (when.getTime() <= now.getTime()) errors.at = "Pick a time in the future.";
  }
  if (form.kind === "periodic" && wholeNumber(form.every, MIN_PERIOD_S, 10 ** 9) === null) {
    errors.every = `Every: a whole number of seconds, at least ${MIN_PERIOD_S}.`;
  }
  return errors;
}

/** The schedule as POST .../start takes it; a local date-time is sent as UTC with its zone. */
export function scheduleBody(form: ScheduleForm): Record<string, unknown> {
  if (form.kind === "at") return { kind: "at", at: new Date(form.at).toISOString() };
  if (form.kind === "periodic") return { kind: "periodic", every_s: Number(form.every) };
  return { kind: "now" };
}

// The API names nested members ("schedule.every_s", "hospitals[0]", "model.hidden.0"); each lands on the
// control that holds it.
const API_FIELD_TO_CONTROL: Record<string, string> = {
  "schedule.kind": "kind",
  "schedule.at": "at",
  "schedule.every_s": "every",
  schedule: "kind",
};

export function trainingFormErrors(error: unknown, fields: readonly string[]): FormErrors {
  if (error instanceof ApiError && error.field) {
    const control = API_FIELD_TO_CONTROL[error.field] ?? error.field.split(/[.[]/)[0] ?? "";
    if (fields.includes(control)) return { [control]: error.message };
  }
  if (error instanceof Error) return { [FORM]: error.message };
  return { [FORM]: "Something went wrong in the page." };
}
