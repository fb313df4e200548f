import { describe, expect, it } from "vitest";
import { RECORD } from "../test/fixtures";
import { sortRecords } from "./RecordTable";

const older = { ...RECORD, id: "a", category: "vital-signs" as const, created_by: "zed", created_at: "2026-01-01T00:00:00Z" };
const newer = { ...RECORD, id: "b", category: "condition" as const, created_by: "amy", created_at: "2026-06-01T00:00:00Z" };

describe("sortRecords", () => {
  it("orders by date either way, by category and by author", () => {
    expect(sortRecords([older, newer], "newest").map((r) => r.id)).toEqual(["b", "a"]);
    expect(sortRecords([newer, older], "oldest").map((r) => r.id)).toEqual(["a", "b"]);
    expect(sortRecords([older, newer], "category").map((r) => r.category)).toEqual(["condition", "vital-signs"]);
    expect(sortRecords([older, newer], "author").map((r) => r.created_by)).toEqual(["amy", "zed"]);
  });
});
