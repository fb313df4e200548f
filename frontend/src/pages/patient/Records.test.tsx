import { screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ALICE, RECORD } from "../../test/fixtures";
import { openAt } from "../../test/render";
import { apiError, fakeServer } from "../../test/server";

const CHART = { resourceType: "Bundle", type: "collection", entry: [{ resource: { resourceType: "Observation" } }] };

function myRecords(records = [RECORD]) {
  fakeServer
    .on("GET", "/api/me", { body: ALICE })
    .on("GET", "/api/records", { body: { count: records.length, next: null, previous: null, results: records } });
}

describe("my records", () => {
  afterEach(() => vi.restoreAllMocks());

  it("lists my records and says so plainly when there are none", async () => {
    myRecords([]);
    openAt("/records");
    expect(await screen.findByText("No records.")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Add a record" })).toHaveAttribute("href", "/records/new");
  });

  it("downloads my whole chart as chart.json with my session", async () => {
    myRecords();
    fakeServer.on("GET", "/api/patients/me/export", { body: CHART });
    const saved: Blob[] = [];
    vi.spyOn(URL, "createObjectURL").mockImplementation((blob) => {
      saved.push(blob as Blob);
      return "blob:chart";
    });
    vi.spyOn(URL, "revokeObjectURL").mockImplementation(() => undefined);
    const clicked: string[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this.download);
    });
    const { user } = openAt("/records");
    await user.click(await screen.findByRole("button", { name: "Download chart.json" }));

    expect(await screen.findByText("Your chart was saved as chart.json.")).toBeInTheDocument();
    expect(fakeServer.sent.some((r) => r.path === "/api/patients/me/export")).toBe(true);
    expect(clicked).toEqual(["chart.json"]);
    expect(JSON.parse(await (saved[0] as Blob).text())).toEqual(CHART);
  });

  it("says in words why the export failed", async () => {
    myRecords();
    fakeServer.on("GET", "/api/patients/me/export", {
      status: 503,
      body: apiError("key_unavailable", "The key ring does not answer; try again in a minute."),
    });
    const { user } = openAt("/records");
    await user.click(await screen.findByRole("button", { name: "Download chart.json" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The key ring does not answer; try again in a minute.");
  });
});
