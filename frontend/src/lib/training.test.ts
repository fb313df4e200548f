import { describe, expect, it } from "vitest";
import {
  awaitsApprovalBy,
  approvalQueuedBy,
  jobIsLive,
  metricSeries,
  planInWords,
  roundProgress,
  scheduleWords,
  strategyWords,
} from "./training";
import { PLAN_HASH, job, participant, trainRound } from "./trainingFixtures";

describe("plans awaiting approval", () => {
  it("waits for my hospital while it has not approved the current plan hash", () => {
    expect(awaitsApprovalBy(job(), "general")).toBe(true);
    expect(awaitsApprovalBy(job(), "city")).toBe(false); // not a participant
    const approvedOld = participant({ approval: "approved", approval_plan_hash: `0x${"00".repeat(32)}` });
    expect(awaitsApprovalBy(job({ participants: [approvedOld] }), "general")).toBe(true); // the plan changed
    const approved = participant({ approval: "approved", approval_plan_hash: PLAN_HASH });
    expect(awaitsApprovalBy(job({ status: "approving", participants: [approved] }), "general")).toBe(false);
    expect(awaitsApprovalBy(job({ status: "running" }), "general")).toBe(false);
  });

  it("says when my approval is on its way", () => {
    const queued = participant({ approval: "queued", approval_plan_hash: PLAN_HASH });
    const pending = job({ status: "approving", participants: [queued] });
    expect(approvalQueuedBy(pending, "general")).toBe(true);
    expect(awaitsApprovalBy(pending, "general")).toBe(false);
    expect(jobIsLive(pending)).toBe(true);
  });
});

describe("a plan in words", () => {
  it("names the model, strategy, hyper-parameters and hospitals", () => {
    const words = planInWords(job({ model: { name: "mlp", hidden: [32, 16] }, strategy: { name: "trimmed_mean", beta: 0.2 } }));
    expect(words).toContain("Model: a neural network (MLP, hidden layers 32, 16).");
    expect(words).toContain("Aggregation: trimmed mean, beta 0.2.");
    expect(words).toContain("3 rounds; each hospital trains 2 local epochs per round, batch size 8, learning rate 0.1.");
    expect(words.join(" ")).toContain("General Hospital; a round counts when 1 of them answered within 600 s.");
    expect(strategyWords({ name: "fedavg" })).toBe("FedAvg (average weighted by sample count)");
    expect(scheduleWords({ kind: "periodic", every_s: 3600 })).toBe(
      "Runs its rounds again every 3600 s, each time on the consents in force then.",
    );
  });
});

describe("round progress and metric series", () => {
  it("counts finished training rounds, not the moments round", () => {
    const running = job({
      status: "running",
      training_rounds: [trainRound(0), trainRound(1), trainRound(2, { status: "running", metrics: {} })],
    });
    expect(roundProgress(running)).toMatchObject({ done: 1, total: 3, current: 2 });
    expect(roundProgress(running).label).toBe("1 of 3 rounds done; round 2 training");
    expect(jobIsLive(running)).toBe(true);
    const preparing = job({ status: "running", training_rounds: [trainRound(0, { status: "running" })] });
    expect(roundProgress(preparing).label).toContain("preparing");
  });

  it("draws one point per finished round: the test set first, then each hospital, gaps for missing values", () => {
    const rounds = [trainRound(2), trainRound(0), trainRound(1), trainRound(3, { status: "running" })];
    const f1 = metricSeries(rounds, "f1");
    expect(f1.map((s) => s.key)).toEqual(["test", "general"]);
    expect(f1[0]?.points).toEqual([
      { x: 1, y: 0.81 },
      { x: 2, y: 0.8200000000000001 },
    ]);
    expect(metricSeries(rounds, "auroc")[1]?.points.map((p) => p.y)).toEqual([null, null]);
  });

  it("stops following a finished job once its versions are on chain", () => {
    const version = { round: 1, cid: "Qm", weights_hash: "0x", metrics: {}, created_at: "", chain: { status: "queued", block: null, tx: "" } };
    expect(jobIsLive(job({ status: "done", model_versions: [version] }))).toBe(true);
    const confirmed = { ...version, chain: { status: "confirmed", block: 9, tx: "0xab" } };
    expect(jobIsLive(job({ status: "done", model_versions: [confirmed] }))).toBe(false);
  });
});
