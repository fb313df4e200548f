// Training jobs as a hospital admin reads them: which plans wait for my hospital's approval, a plan in
// plain words, a job's status and round progress, and the metric series its charts draw. The API is the
// judge of every rule; these only say what it answered.
import type { ModelVersionSummary, TrainingJob, TrainingJobDetail, TrainingRound } from "../api/types";

export type Tone = "ok" | "pending" | "bad" | "ended";

/** A job whose plan waits for my hospital's approval: still open, and my hospital has not approved (or
 * has not yet sent its approval of) the current plan hash. */
export function awaitsApprovalBy(job: TrainingJob, hospitalSlug: string): boolean {
  if (job.status !== "draft" && job.status !== "approving") return false;
  const mine = job.participants.find((p) => p.hospital.slug === hospitalSlug);
  if (!mine) return false;
  if (mine.approval_plan_hash !== job.plan_hash) return true;
  return mine.approval === "pending" || mine.approval === "failed";
}

/** My hospital's approval of the current plan is on its way to the chain. */
export function approvalQueuedBy(job: TrainingJob, hospitalSlug: string): boolean {
  const mine = job.participants.find((p) => p.hospital.slug === hospitalSlug);
  return !!mine && mine.approval === "queued" && mine.approval_plan_hash === job.plan_hash;
}

const JOB_STATUS: Record<string, { label: string; tone: Tone }> = {
  draft: { label: "Waiting for approvals", tone: "pending" },
  approving: { label: "Approvals on their way", tone: "pending" },
  ready: { label: "Ready to start", tone: "ok" },
  scheduled: { label: "Scheduled", tone: "pending" },
  running: { label: "Running", tone: "pending" },
  done: { label: "Done", tone: "ok" },
  failed: { label: "Failed", tone: "bad" },
  cancelled: { label: "Cancelled", tone: "ended" },
};

export function jobStatus(status: string): { label: string; tone: Tone } {
  return JOB_STATUS[status] ?? { label: status, tone: "ended" };
}

const APPROVAL: Record<string, string> = {
  pending: "not approved yet",
  queued: "approval on its way to the chain",
  approved: "approved on chain",
  failed: "approval failed on chain",
};

export function approvalWords(approval: string): string {
  return APPROVAL[approval] ?? approval;
}

const STRATEGY: Record<string, string> = {
  fedavg: "FedAvg (average weighted by sample count)",
  fedprox: "FedProx (FedAvg with a proximal term)",
  median: "coordinate-wise median",
  trimmed_mean: "trimmed mean",
  krum: "Krum",
  trust_score: "trust-score weighting",
};

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}

export function modelWords(model: unknown): string {
  const spec = record(model);
  if (spec.name === "logistic") return "logistic regression";
  if (spec.name === "mlp") {
    const hidden = Array.isArray(spec.hidden) ? spec.hidden.join(", ") : "32";
    return `a neural network (MLP, hidden layers ${hidden})`;
  }
  return String(spec.name ?? "an unnamed model");
}

export function strategyWords(strategy: unknown): string {
  const spec = record(strategy);
  const name = String(spec.name ?? "");
  const params = Object.entries(spec)
    .filter(([key]) => key !== "name")
    .map(([key, value]) => `${key} ${String(value)}`);
  const base = STRATEGY[name] ?? name;
  return params.length ? `${base}, ${params.join(", ")}` : base;
}

/** What the plan hash commits this hospital to, sentence by sentence. */
export function planInWords(job: TrainingJob): string[] {
  const hospitals = job.participants.map((p) => p.hospital.name).join(", ");
  const dp = record(job.dp);
  return [
    "Task: benign or malignant, from the 30 Breast Cancer Wisconsin features of the records' laboratory Observations.",
    `Model: ${modelWords(job.model)}.`,
    `Aggregation: ${strategyWords(job.strategy)}.`,
    `${job.rounds} round${job.rounds === 1 ? "" : "s"}; each hospital trains ${job.local_epochs} local epoch${
      job.local_epochs === 1 ? "" : "s"
    } per round, batch size ${job.batch_size}, learning rate ${job.lr}.`,
    job.dp
      ? `Differential privacy (DP-SGD): noise ${String(dp.noise_multiplier ?? "?")}, clipping ${String(dp.max_grad_norm ?? "?")}.`
      : "No differential privacy.",
    `Hospitals: ${hospitals}; a round counts when ${job.quorum} of them answered within ${job.round_timeout_s} s.`,
    "Only records whose patients hold an active TRAINING consent for your hospital are used; they never leave your hospital, only the model's weights do.",
  ];
}

/** When a job runs, as its stored schedule says. */
export function scheduleWords(schedule: unknown): string {
  const spec = record(schedule);
  if (spec.kind === "at") return `Starts at ${new Date(String(spec.at)).toLocaleString("en-GB")}.`;
  if (spec.kind === "periodic") return `Runs its rounds again every ${String(spec.every_s)} s, each time on the consents in force then.`;
  return "Starts now.";
}

export type Progress = { done: number; total: number; current: number | null; label: string };

/** Training rounds finished, of how many, and the one in progress (round 0 pools the features' moments). */
export function roundProgress(job: TrainingJobDetail): Progress {
  const train = job.training_rounds.filter((r) => r.kind === "train");
  const done = train.filter((r) => r.status === "done").length;
  const running = job.training_rounds.find((r) => r.status === "running" || r.status === "aggregating");
  const total = Math.max(job.rounds, done);
  const current = running ? running.number : null;
  let label = `${done} of ${total} rounds done`;
  if (running && running.kind === "moments") label += "; preparing (pooling the features' statistics)";
  else if (running) label += `; round ${running.number} ${running.status === "aggregating" ? "aggregating" : "training"}`;
  return { done, total, current, label };
}

/** While something may still change on its own: the page keeps following it. */
export function jobIsLive(job: TrainingJobDetail): boolean {
  if (["approving", "running", "scheduled"].includes(job.status)) return true;
  if (job.participants.some((p) => p.approval === "queued")) return true;
  return job.model_versions.some((v) => v.chain.status === "queued");
}

export type MetricName = "f1" | "auroc" | "loss";
export const METRICS: { name: MetricName; title: string }[] = [
  { name: "f1", title: "F1" },
  { name: "auroc", title: "AUROC" },
  { name: "loss", title: "Loss" },
];

export type Point = { x: number; y: number | null };
export type Series = { key: string; label: string; points: Point[] };

function numberOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** One metric per finished training round: on the held-out test set, and for each hospital the global
 * model's validation on its own split. */
export function metricSeries(rounds: TrainingRound[], metric: MetricName): Series[] {
  const finished = rounds.filter((r) => r.kind === "train" && r.status === "done").sort((a, b) => a.number - b.number);
  const test: Series = { key: "test", label: "Test set", points: [] };
  const hospitals = new Map<string, Series>();
  for (const round of finished) {
    const metrics = record(round.metrics);
    test.points.push({ x: round.number, y: numberOrNull(record(metrics.test)[metric]) });
    for (const [slug, values] of Object.entries(record(metrics.validation))) {
      const series = hospitals.get(slug) ?? { key: slug, label: `${slug} (validation)`, points: [] };
      series.points.push({ x: round.number, y: numberOrNull(record(values)[metric]) });
      hospitals.set(slug, series);
    }
  }
  return [test, ...[...hospitals.values()].sort((a, b) => a.key.localeCompare(b.key))];
}

export function versionMetric(version: ModelVersionSummary, metric: MetricName): number | null {
  return numberOrNull(record(record(version.metrics).test)[metric]);
}

export function formatMetric(value: number | null): string {
  return value === null ? "–" : value.toFixed(3);
}
