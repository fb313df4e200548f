import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { TrainingJobDetail } from "../../api/types";
import { apiError, fakeServer } from "../../test/server";
import { openAt } from "../../test/render";
import { HADMIN, PLAN_HASH, job, participant, trainRound } from "../../lib/trainingFixtures";

const approved = participant({ approval: "approved", approval_plan_hash: PLAN_HASH, approved_block: 50 });

function version(round: number, confirmed: boolean) {
  return {
    round,
    cid: "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
    weights_hash: `0x${"ee".repeat(32)}`,
    metrics: { test: { f1: 0.9, auroc: 0.95, loss: 0.3 } },
    created_at: "2026-11-30T10:00:05Z",
    chain: confirmed ? { status: "confirmed", block: 200 + round, tx: `0x${"aa".repeat(32)}` } : { status: "queued", block: null, tx: "" },
  };
}

describe("a training job's page", () => {
  it("starts a ready job, then fills the progress, the charts and the versions as rounds finish", async () => {
    let view: TrainingJobDetail = job({ status: "ready", participants: [approved] });
    fakeServer
      .on("GET", "/api/me", { body: HADMIN })
      .on("GET", `/api/training/jobs/4`, () => ({ body: view }))
      .on("POST", `/api/training/jobs/${view.id}/start`, () => {
        view = job({ status: "running", participants: [approved], training_rounds: [trainRound(0, { status: "running" })] });
        return { status: 202, body: view };
      });
    const { user, container } = openAt("/training/jobs/4");
    expect(await screen.findByRole("heading", { level: 1, name: "Training job: wdbc" })).toBeInTheDocument();
    expect(screen.getByTestId("job-status")).toHaveTextContent("Ready to start");

    await user.click(screen.getByLabelText(/Periodically/));
    await user.clear(screen.getByLabelText("Every (seconds)"));
    await user.type(screen.getByLabelText("Every (seconds)"), "5");
    await user.click(screen.getByRole("button", { name: "Schedule" }));
    expect(screen.getByText("Every: a whole number of seconds, at least 10.")).toBeInTheDocument();
    await user.click(screen.getByLabelText("Now"));
    await user.click(screen.getByRole("button", { name: "Start now" }));
    expect(await screen.findByTestId("round-progress")).toHaveTextContent("0 of 3 rounds done; preparing");
    expect(fakeServer.sent.find((s) => s.method === "POST")?.body).toEqual({ schedule: { kind: "now" } });
    expect(screen.getByText("The charts fill in as rounds finish.")).toBeInTheDocument();

    // Rounds finish while the page polls.
    view = job({
      status: "done",
      current_round: 3,
      participants: [approved],
      training_rounds: [0, 1, 2, 3].map((n) => trainRound(n)),
      model_versions: [0, 1, 2, 3].map((n) => version(n, n < 3)),
    });
    expect(await screen.findByText("3 of 3 rounds done", {}, { timeout: 3000 })).toBeInTheDocument();
    expect(container.querySelectorAll("[data-testid='chart-f1'] [data-series='test'] circle")).toHaveLength(3);
    expect(container.querySelectorAll("[data-testid='chart-loss'] [data-series='general'] circle")).toHaveLength(3);
    expect(screen.getByRole("row", { name: /^v2/ })).toHaveTextContent("block 202");
    expect(screen.getByRole("row", { name: /^v3/ })).toHaveTextContent("on its way to the chain");
    expect(screen.queryByRole("button", { name: "Cancel job" })).not.toBeInTheDocument();
  });

  it("cancels a running job after asking, and says the API's refusal in words", async () => {
    let view: TrainingJobDetail = job({ status: "running", participants: [approved], training_rounds: [trainRound(0)] });
    let calls = 0;
    fakeServer
      .on("GET", "/api/me", { body: HADMIN })
      .on("GET", `/api/training/jobs/4`, () => ({ body: view }))
      .on("POST", `/api/training/jobs/${view.id}/cancel`, () => {
        calls += 1;
        if (calls === 1) return { status: 409, body: apiError("conflict", "The job is aggregating; try again.") };
        view = job({ status: "cancelled", participants: [approved] });
        return { body: view };
      });
    const { user } = openAt("/training/jobs/4");
    await user.click(await screen.findByRole("button", { name: "Cancel job" }));
    await user.click(screen.getByRole("button", { name: "Yes, cancel the job" }));
    expect(await screen.findByText("The job is aggregating; try again.")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Yes, cancel the job" }));
    expect(await screen.findByText("Cancelled")).toBeInTheDocument();
  });

  it("offers a retry when the connection is lost", async () => {
    let up = false;
    fakeServer
      .on("GET", "/api/me", { body: HADMIN })
      .on("GET", "/api/training/jobs/4", () => (up ? { body: job() } : "network-error"));
    const { user } = openAt("/training/jobs/4");
    await user.click(await screen.findByRole("button", { name: "Try again" }));
    expect(screen.queryByTestId("job-status")).not.toBeInTheDocument();
    up = true;
    await user.click(await screen.findByRole("button", { name: "Try again" }));
    expect(await screen.findByTestId("job-status")).toHaveTextContent("Waiting for approvals");
  });
});
