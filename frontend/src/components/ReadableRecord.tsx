// One opened record, rendered for people: observations as a table with units, conditions as facts,
// documents by title (preview and download come with the documents slice).
import { readRecord } from "../lib/fhir";
import { formatDate } from "../lib/format";

export function ReadableRecord({ resource }: { resource: unknown }) {
  const readable = readRecord(resource);
  return (
    <div className="readable">
      {readable.observations.length ? (
        <table className="observations">
          <caption>Observations</caption>
          <thead>
            <tr>
              <th scope="col">Measurement</th>
              <th scope="col" className="num">
                Value
              </th>
              <th scope="col">Unit</th>
              <th scope="col">Date</th>
            </tr>
          </thead>
          <tbody>
            {readable.observations.map((row, index) => (
              <tr key={`${row.name}-${index}`}>
                <th scope="row">{row.name}</th>
                <td className="num">{row.value}</td>
                <td>{row.unit}</td>
                <td>{formatDate(row.date) || "not given"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {readable.conditions.map((condition, index) => (
        <section className="condition" key={`${condition.name}-${index}`} aria-label={`Condition: ${condition.name}`}>
          <h2>{condition.name}</h2>
          <dl className="facts">
            {condition.clinicalStatus ? (
              <>
                <dt>Clinical status</dt>
                <dd>{condition.clinicalStatus}</dd>
              </>
            ) : null}
            {condition.verification ? (
              <>
                <dt>Verification</dt>
                <dd>{condition.verification}</dd>
              </>
            ) : null}
            {condition.onset ? (
              <>
                <dt>Since</dt>
                <dd>{formatDate(condition.onset)}</dd>
              </>
            ) : null}
            {condition.note ? (
              <>
                <dt>Note</dt>
                <dd>{condition.note}</dd>
              </>
            ) : null}
          </dl>
        </section>
      ))}
      {readable.documents.map((document, index) => (
        <p key={`${document.title}-${index}`}>
          Document: {document.title} {document.contentType ? `(${document.contentType})` : ""}
        </p>
      ))}
      {readable.other.length ? <p>Also contains: {readable.other.join(", ")}.</p> : null}
    </div>
  );
}
