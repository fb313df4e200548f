// Training jobs as the API answers them, for the component and logic tests (typed by the schema, so a
// changed API breaks these too). Imported by tests only.
import type { Me, TrainingJobDetail, TrainingParticipant, TrainingRound } from "../api/types";
import { GENERAL } from "../test/fixtures";

export const HADMIN: Me = {
  id: 3,
  username: "hadmin",
  role: "hospital_admin",
  eth_address: "0xAD0000000000000000000000000000000000000A",
  key_kind: "managed",
  hospital: GENERAL,
};

export const PLAN_HASH = `0x${"5a".repeat(32)}`;

export function participant(over: Partial<TrainingParticipant> = {}): TrainingParticipant {
  return {
    hospital: { slug: GENERAL.slug, name: GENERAL.name, hospital_id: GENERAL.hospital_id },
    approval: "pending",
    approval_plan_hash: "",
    approved_block: null,
    approved_tx: "",
    ...over,
  };
}

function split(f1: number, auroc: number | null, loss: number) {
  return { count: 10, positives: 4, accuracy: 0.9, f1, auroc, loss };
}

export function trainRound(number: number, over: Partial<TrainingRound> = {}): TrainingRound {
  return {
    number,
    kind: number === 0 ? "moments" : "train",
    status: "done",
    pinned_block: 100 + number,
    started_at: "2026-11-30T10:00:00Z",
    deadline_at: "2026-11-30T10:10:00Z",
    finished_at: "2026-11-30T10:00:05Z",
    reason: "",
    timings: {},
    metrics:
      number === 0
        ? {}
        : {
            test: split(0.8 + number / 100, 0.9, 0.5 - number / 100),
            validation: { general: split(0.7 + number / 100, null, 0.6 - number / 100) },
          },
    sample_count: 12,
    hospitals: { dispatched: 1, accepted: 1 },
    stragglers: [],
    updates: [],
    ...over,
  };
}

export function job(over: Partial<TrainingJobDetail> = {}): TrainingJobDetail {
  return {
    id: `0x${"0b".repeat(32)}`,
    number: 4,
    name: "wdbc",
    task: "wdbc_malignant",
    status: "draft",
    failure_reason: "",
    plan_hash: PLAN_HASH,
    model: { name: "logistic" },
    strategy: { name: "fedavg" },
    local_epochs: 2,
    batch_size: 8,
    lr: 0.1,
    rounds: 3,
    quorum: 1,
    round_timeout_s: 600,
    dp: null,
    schedule: { kind: "now" },
    current_round: 0,
    retrain_of: null,
    created_by: "hadmin",
    created_at: "2026-11-30T09:00:00Z",
    participants: [participant()],
    training_rounds: [],
    model_versions: [],
    ...over,
  };
}
