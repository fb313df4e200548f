// Export my chart: GET /api/patients/me/export (a FHIR collection Bundle of every record and consent)
// fetched through the typed client, so the session cookie goes with it and a refusal reads as words,
// then offered to the browser as the file chart.json.
import { useState } from "react";
import { api, call } from "../../api/client";
import { ErrorNotice } from "../../components/Notices";
import { saveAs } from "../../lib/download";

export const EXPORT_FILE = "chart.json";

type State = { state: "idle" } | { state: "fetching" } | { state: "done" } | { state: "failed"; error: Error };

export function ExportChart() {
  const [state, setState] = useState<State>({ state: "idle" });
  const run = async () => {
    setState({ state: "fetching" });
    try {
      const blob = await call(api.GET("/api/patients/me/export", { parseAs: "blob" }));
      saveAs(new Blob([blob], { type: "application/fhir+json" }), EXPORT_FILE);
      setState({ state: "done" });
    } catch (error) {
      setState({ state: "failed", error: error as Error });
    }
  };
  return (
    <section className="panel" aria-labelledby="export-title">
      <h2 id="export-title">Export my chart</h2>
      <p className="hint">Every record and consent of yours, opened, in one FHIR Bundle you can keep or take to another provider.</p>
      <p className="actions">
        <button type="button" onClick={() => void run()} disabled={state.state === "fetching"}>
          {state.state === "fetching" ? <span className="spinner" aria-hidden="true" /> : null}
          {state.state === "fetching" ? "Preparing…" : `Download ${EXPORT_FILE}`}
        </button>
      </p>
      <div className="live" role="status" aria-live="polite">
        {state.state === "done" ? <p>Your chart was saved as {EXPORT_FILE}.</p> : null}
      </div>
      {state.state === "failed" ? <ErrorNotice error={state.error} onRetry={() => void run()} /> : null}
    </section>
  );
}
