import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { apiError, fakeServer } from "../../test/server";
import { openAt } from "../../test/render";
import { HADMIN, PLAN_HASH, job, participant } from "../../lib/trainingFixtures";

describe("training plans", () => {
  it("shows the plan hash and the plan in words, refuses a wrong password next to the field, then follows the approval", async () => {
    let state: "pending" | "queued" | "approved" = "pending";
    const current = () =>
      job({
        status: state === "pending" ? "draft" : state === "queued" ? "approving" : "ready",
        participants: [
          participant({
            approval: state,
            approval_plan_hash: state === "pending" ? "" : PLAN_HASH,
            approved_block: state === "approved" ? 77 : null,
            approved_tx: state === "approved" ? `0x${"cd".repeat(32)}` : "",
          }),
        ],
      });
    let tries = 0;
    fakeServer
      .on("GET", "/api/me", { body: HADMIN })
      .on("GET", "/api/training/jobs", () => ({ body: { count: 1, next: null, previous: null, results: [current()] } }))
      .on("POST", `/api/training/jobs/${job().id}/approve`, () => {
        tries += 1;
        if (tries === 1) return { status: 400, body: apiError("bad_password", "The password is wrong.", "password") };
        state = "queued";
        return { status: 202, body: current() };
      });
    const { user } = openAt("/training/plans");
    expect(await screen.findByRole("heading", { level: 1, name: "Training plans" })).toBeInTheDocument();
    expect(await screen.findByTestId("plan-hash")).toHaveTextContent(PLAN_HASH);
    const words = screen.getByRole("list", { name: "What the plan contains" });
    expect(within(words).getByText("Model: logistic regression.")).toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "Approve this plan" }));
    expect(screen.getByText("Enter your password to sign the approval.")).toBeInTheDocument();
    expect(tries).toBe(0); // refused in the page

    await user.type(screen.getByLabelText("Your password, to sign the approval"), "wrong");
    await user.click(screen.getByRole("button", { name: "Approve this plan" }));
    expect(await screen.findByText("The password is wrong.")).toBeInTheDocument();
    expect(screen.getByLabelText("Your password, to sign the approval")).toHaveAttribute("aria-invalid", "true");

    await user.type(screen.getByLabelText("Your password, to sign the approval"), "right");
    await user.click(screen.getByRole("button", { name: "Approve this plan" }));
    expect(await screen.findByText("Approval on its way to the chain")).toBeInTheDocument();
    expect(fakeServer.sent.filter((s) => s.method === "POST").at(-1)?.body).toEqual({ password: "wrongright" });
    expect(screen.getByText("No plan waits for your approval.")).toBeInTheDocument();

    state = "approved"; // mined: the page's polling finds it
    expect(await screen.findByText("Approved on chain", {}, { timeout: 3000 })).toBeInTheDocument();
    expect(screen.getByText(/in block 77/)).toBeInTheDocument();
  });
});
