import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { apiError, fakeServer } from "../../test/server";
import { openAt } from "../../test/render";
import { GENERAL } from "../../test/fixtures";
import { HADMIN, job } from "../../lib/trainingFixtures";

const CITY = { ...GENERAL, slug: "city", name: "City Clinic", hospital_id: "0x02" };

describe("a new training job", () => {
  it("is checked in the page, then by the API next to its field, then created", async () => {
    let posts = 0;
    fakeServer
      .on("GET", "/api/me", { body: HADMIN })
      .on("GET", "/api/doctors", { body: { count: 0, next: null, previous: null, results: [] } })
      .on("GET", "/api/hospitals", { body: { count: 2, next: null, previous: null, results: [GENERAL, CITY] } })
      .on("GET", "/api/training/jobs", { body: { count: 1, next: null, previous: null, results: [job()] } })
      .on("POST", "/api/training/jobs", () => {
        posts += 1;
        if (posts === 1) return { status: 400, body: apiError("invalid_plan", "quorum 2 exceeds the 1 participating hospitals.", "quorum") };
        return { status: 201, body: job() };
      });
    const { user } = openAt("/training/jobs/new");
    expect(await screen.findByRole("heading", { level: 1, name: "New training job" })).toBeInTheDocument();
    expect(await screen.findByLabelText(/General Hospital/)).toBeChecked();

    await user.clear(screen.getByLabelText("Rounds"));
    await user.type(screen.getByLabelText("Rounds"), "0");
    await user.click(screen.getByRole("button", { name: "Create job" }));
    expect(screen.getByText("Give the job a name.")).toBeInTheDocument();
    expect(screen.getByLabelText("Rounds")).toHaveAttribute("aria-invalid", "true");
    expect(posts).toBe(0);

    await user.type(screen.getByLabelText("Name"), "wdbc");
    await user.clear(screen.getByLabelText("Rounds"));
    await user.type(screen.getByLabelText("Rounds"), "3");
    await user.click(screen.getByLabelText(/City Clinic/));
    await user.clear(screen.getByLabelText("Quorum"));
    await user.type(screen.getByLabelText("Quorum"), "2");
    await user.click(screen.getByRole("button", { name: "Create job" }));
    expect(await screen.findByText("quorum 2 exceeds the 1 participating hospitals.")).toBeInTheDocument();
    expect(screen.getByLabelText("Quorum")).toHaveAttribute("aria-invalid", "true");
    expect(fakeServer.sent.find((s) => s.method === "POST")?.body).toMatchObject({
      name: "wdbc",
      hospitals: ["general", "city"],
      quorum: 2,
      rounds: 3,
      model: { name: "logistic" },
    });

    await user.click(screen.getByRole("button", { name: "Create job" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Training plans" })).toBeInTheDocument();
    expect(screen.getByText(/Job #4 created/)).toBeInTheDocument();
  });
});
