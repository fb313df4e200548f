// The hospital admin's break-glass review queue: every emergency access by the hospital's doctors, pending
// first, with the doctor's reason; a verdict (justified / unjustified, with a note) for each pending one. An
// unjustified verdict ends a break-glass that is still open (the API does it).
import { useState } from "react";
import { api, call } from "../../api/client";
import type { BreakGlass } from "../../api/types";
import { SelectField } from "../../components/Fields";
import { Empty, ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";
import { useLoad } from "../../hooks/useLoad";
import { formatDateTime, shortHex } from "../../lib/format";

type Filter = "pending" | "";
type Verdict = "justified" | "unjustified";

function ReviewForm({ glass, onDone }: { glass: BreakGlass; onDone: () => void }) {
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const send = async (verdict: Verdict) => {
    setBusy(true);
    setError(null);
    try {
      await call(
        api.POST("/api/break-glass/{break_glass_id}/review", {
          params: { path: { break_glass_id: glass.id } },
          body: { verdict, note },
        }),
      );
      onDone();
    } catch (failure) {
      setError(failure as Error);
    } finally {
      setBusy(false);
    }
  };
  const noteId = `note-${glass.id}`;
  return (
    <div className="review">
      <label htmlFor={noteId}>Note (optional)</label>
      <input id={noteId} type="text" value={note} onChange={(event) => setNote(event.target.value)} />
      <div className="actions">
        <button type="button" className="small" disabled={busy} onClick={() => void send("justified")}>
          Justified
        </button>
        <button type="button" className="small danger" disabled={busy} onClick={() => void send("unjustified")}>
          Unjustified
        </button>
      </div>
      {error ? <ErrorNotice error={error} /> : null}
    </div>
  );
}

export function BreakGlassReviews() {
  const [filter, setFilter] = useState<Filter>("pending");
  const loaded = useLoad(
    () => call(api.GET("/api/break-glass/reviews", { params: { query: { limit: 200, status: filter || undefined } } })),
    [filter],
  );
  const rows = loaded.data?.results ?? [];
  return (
    <Page title="Break-glass reviews" intro="Emergency accesses by your hospital's doctors. Each one waits for your verdict.">
      <div className="toolbar">
        <SelectField id="filter" label="Show" value={filter} onChange={(event) => setFilter(event.target.value as Filter)}>
          <option value="pending">Waiting for review</option>
          <option value="">All</option>
        </SelectField>
      </div>
      {loaded.error ? <ErrorNotice error={loaded.error} onRetry={loaded.reload} /> : null}
      {!loaded.data && loaded.loading ? <Loading what="the review queue" /> : null}
      {loaded.data && !rows.length ? <Empty>No break-glass access waits for review.</Empty> : null}
      {rows.length ? (
        <table className="cards">
          <caption className="visually-hidden">Break-glass accesses</caption>
          <thead>
            <tr>
              <th scope="col">Doctor</th>
              <th scope="col">Patient</th>
              <th scope="col">When</th>
              <th scope="col">Reason</th>
              <th scope="col">Review</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((glass) => (
              <tr key={glass.id} data-break-glass={glass.id}>
                <td data-label="Doctor">{glass.doctor.name || glass.doctor.username}</td>
                <td data-label="Patient">
                  <code title={glass.patient_address}>{shortHex(glass.patient_address)}</code>
                </td>
                <td data-label="When">
                  {formatDateTime(glass.started_at)}
                  <span className="hint"> {glass.live ? `open until ${formatDateTime(glass.expires_at)}` : "ended"}</span>
                </td>
                <td data-label="Reason">“{glass.reason}”</td>
                <td data-label="Review">
                  {glass.review_status === "pending" || !glass.review_status ? (
                    <ReviewForm glass={glass} onDone={loaded.reload} />
                  ) : (
                    <>
                      <span className={`badge ${glass.review_status === "justified" ? "badge-ok" : "badge-bad"}`}>
                        {glass.review_status}
                      </span>
                      {glass.review_note ? <span className="hint"> {glass.review_note}</span> : null}
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </Page>
  );
}
