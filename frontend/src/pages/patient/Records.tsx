// My records: the chart's records by category, author and date, a page at a time; adding a record and
// exporting the whole chart start here.
import { useState } from "react";
import { listRecords, PAGE, type RecordPage } from "../../api/lists";
import type { Category } from "../../api/types";
import { SelectField } from "../../components/Fields";
import { Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { categoryLabel, RecordTable, SortField, type RecordSort } from "../../components/RecordTable";
import { useLoad } from "../../hooks/useLoad";
import { CATEGORY_WORDS } from "../../lib/consent";
import { Link } from "../../router";
import { ExportChart } from "./ExportChart";

export function RecordList({ patient, caption }: { patient?: string; caption: string }) {
  const [category, setCategory] = useState<Category | "">("");
  const [pages, setPages] = useState(1);
  const [sort, setSort] = useState<RecordSort>("newest");
  const loaded = useLoad<RecordPage>(
    () => listRecords({ patient, category: category || undefined, limit: PAGE * pages }),
    [patient, category, pages],
  );
  return (
    <>
      <div className="toolbar">
        <SelectField
          id="category"
          label="Category"
          value={category}
          onChange={(e) => {
            setCategory(e.target.value as Category | "");
            setPages(1);
          }}
        >
          <option value="">All categories</option>
          {Object.keys(CATEGORY_WORDS).map((name) => (
            <option key={name} value={name}>
              {categoryLabel(name)}
            </option>
          ))}
        </SelectField>
        <SortField sort={sort} onChange={setSort} />
      </div>
      {loaded.error ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      {!loaded.data && loaded.loading ? <Loading what="records" /> : null}
      {loaded.data ? (
        loaded.data.records.length ? (
          <>
            <p className="count" role="status">
              {loaded.data.total === 1 ? "1 record" : `${loaded.data.total} records`}
            </p>
            <RecordTable records={loaded.data.records} caption={caption} sort={sort} />
            {loaded.data.records.length < loaded.data.total ? (
              <button type="button" onClick={() => setPages((n) => n + 1)} disabled={loaded.loading}>
                {loaded.loading ? "Loading…" : "Show more"}
              </button>
            ) : null}
          </>
        ) : (
          <Empty>No records{category ? ` in ${categoryLabel(category).toLowerCase()}` : ""}.</Empty>
        )
      ) : null}
    </>
  );
}

export function Records() {
  return (
    <Page title="My records">
      <p className="actions">
        <Link to="/records/new" className="button">
          Add a record
        </Link>
      </p>
      <RecordList caption="My records" />
      <ExportChart />
    </Page>
  );
}
