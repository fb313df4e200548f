import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import { FORM } from "../components/Fields";
import { checkJobForm, checkSchedule, emptyJobForm, jobBody, scheduleBody, trainingFormErrors } from "./trainingForm";

describe("the new-job form", () => {
  it("is refused field by field in the page", () => {
    const form = { ...emptyJobForm("general"), name: " ", rounds: "0", quorum: "2", lr: "-1", batch_size: "1.5" };
    const errors = checkJobForm(form, "general");
    expect(Object.keys(errors).sort()).toEqual(["batch_size", "lr", "name", "quorum", "rounds"]);
    expect(errors.quorum).toBe("Quorum cannot exceed the 1 hospital taking part.");
    expect(checkJobForm({ ...emptyJobForm("general"), name: "x", hospitals: ["city"] }, "general").hospitals).toBe(
      "Your own hospital must take part.",
    );
    expect(checkJobForm({ ...emptyJobForm("general"), name: "x", model: "mlp", hidden: "32,a" }, "general").model).toMatch(/Hidden layers/);
  });

  it("sends the body the API takes", () => {
    const form = { ...emptyJobForm("general"), name: " wdbc ", model: "mlp" as const, hidden: "32, 16" };
    expect(checkJobForm(form, "general")).toEqual({});
    expect(jobBody(form)).toEqual({
      name: "wdbc",
      model: { name: "mlp", hidden: [32, 16] },
      strategy: { name: "fedavg" },
      rounds: 3,
      hospitals: ["general"],
      quorum: 1,
      local_epochs: 2,
      batch_size: 8,
      lr: 0.1,
      round_timeout_s: 600,
    });
  });

  it("puts the API's error next to the control its field names", () => {
    const error = (field: string | null) => new ApiError(400, { error: "invalid", detail: "No.", field });
    expect(trainingFormErrors(error("hospitals[0]"), ["hospitals"])).toEqual({ hospitals: "No." });
    expect(trainingFormErrors(error("model.hidden.0"), ["model"])).toEqual({ model: "No." });
    expect(trainingFormErrors(error("schedule.every_s"), ["kind", "at", "every"])).toEqual({ every: "No." });
    expect(trainingFormErrors(error(null), ["name"])).toEqual({ [FORM]: "No." });
  });
});

describe("the schedule", () => {
  const now = new Date("2026-11-30T10:00:00Z");
  it("needs a future time or a period of at least 10 s", () => {
    expect(checkSchedule({ kind: "at", at: "", every: "" }, now).at).toBe("Pick the date and time to start.");
    expect(checkSchedule({ kind: "at", at: "2020-01-01T10:00", every: "" }, now).at).toBe("Pick a time in the future.");
    expect(checkSchedule({ kind: "periodic", at: "", every: "5" }, now).every).toMatch(/at least 10/);
    expect(checkSchedule({ kind: "now", at: "", every: "" }, now)).toEqual({});
  });

  it("sends a time with its zone", () => {
    const body = scheduleBody({ kind: "at", at: "2030-01-02T03:04", every: "" });
    expect(body.kind).toBe("at");
    expect(String(body.at)).toMatch(/^2030-01-0\dT\d\d:04:00\.000Z$/);
    expect(scheduleBody({ kind: "periodic", at: "", every: "3600" })).toEqual({ kind: "periodic", every_s: 3600 });
  });
});
