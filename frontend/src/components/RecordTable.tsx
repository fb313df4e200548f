// A list of records' metadata (category, type, author, date), sortable, that narrows to a table
// of cards on a phone. Opening one goes through the record page (and the API's one door).
import { useMemo } from "react";
import type { RecordMeta } from "../api/types";
import { CATEGORY_WORDS } from "../lib/consent";
import { formatDateTime } from "../lib/format";
import { Link } from "../router";
import { SelectField } from "./Fields";

export type RecordSort = "newest" | "oldest" | "category" | "author";

export function sortRecords(records: readonly RecordMeta[], sort: RecordSort): RecordMeta[] {
  const byDate = (a: RecordMeta, b: RecordMeta) => (a.created_at ?? "").localeCompare(b.created_at ?? "");
  const sorted = [...records];
  switch (sort) {
    case "oldest":
      return sorted.sort(byDate);
    case "category":
      return sorted.sort((a, b) => a.category.localeCompare(b.category) || byDate(b, a));
    case "author":
      return sorted.sort((a, b) => a.created_by.localeCompare(b.created_by) || byDate(b, a));
    default:
      return sorted.sort((a, b) => byDate(b, a));
  }
}

export function categoryLabel(category: string): string {
  const words = CATEGORY_WORDS[category] ?? category;
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A record as a person recognises it in a list: its type, category and date. */
export function recordLabel(record: RecordMeta): string {
  return `${record.resource_type}, ${categoryLabel(record.category).toLowerCase()}, ${formatDateTime(record.created_at)}`;
}

export function SortField({ sort, onChange }: { sort: RecordSort; onChange: (sort: RecordSort) => void }) {
  return (
    <SelectField id="record-sort" label="Sort by" value={sort} onChange={(e) => onChange(e.target.value as RecordSort)}>
      <option value="newest">Date, newest first</option>
      <option value="oldest">Date, oldest first</option>
      <option value="category">Category</option>
      <option value="author">Author</option>
    </SelectField>
  );
}

export function RecordTable({ records, caption, sort }: { records: readonly RecordMeta[]; caption: string; sort: RecordSort }) {
  const rows = useMemo(() => sortRecords(records, sort), [records, sort]);
  return (
    <>
      <table className="cards">
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Category</th>
            <th scope="col">Type</th>
            <th scope="col">Author</th>
            <th scope="col">Date</th>
            <th scope="col">
              <span className="visually-hidden">Open</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((record) => (
            <tr key={record.id}>
              <td data-label="Category">{categoryLabel(record.category)}</td>
              <td data-label="Type">{record.resource_type}</td>
              <td data-label="Author">{record.created_by}</td>
              <td data-label="Date">{formatDateTime(record.created_at)}</td>
              <td>
                <Link to={`/records/${record.id}`} aria-label={`Open ${record.resource_type} of ${formatDateTime(record.created_at)}`}>
                  Open
                </Link>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
