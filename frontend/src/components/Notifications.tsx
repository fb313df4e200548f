// The header's notifications, derived from the API's own lists (there is no notification API): for a
// patient, break-glass accesses to my chart I have not seen yet, access requests waiting for my answer
// and revocations the chain refused; for a hospital admin, break-glasses waiting for review. Re-read on
// every navigation. A failed read shows nothing here: the page itself says when the server is gone.
import { useCallback, useEffect, useState } from "react";
import { api, call } from "../api/client";
import type { BreakGlass, Consent, Me } from "../api/types";
import { consentState, granteeName } from "../lib/consent";
import { formatDateTime } from "../lib/format";
import type { AccessRequest } from "../lib/requests";
import { Link, useLocation } from "../router";

export type Notice = { id: string; text: string; to: string };

export type Sources = {
  breakGlasses?: BreakGlass[];
  requests?: AccessRequest[];
  consents?: Consent[];
  reviews?: BreakGlass[];
};

function who(glass: BreakGlass): string {
  return glass.doctor.name || glass.doctor.username || "A doctor";
}

/** What deserves the user's attention, from what the API says; `seen` break-glasses are left out. */
export function noticesFrom(sources: Sources, seen: ReadonlySet<string>): Notice[] {
  const notices: Notice[] = [];
  for (const glass of sources.breakGlasses ?? []) {
    if (seen.has(glass.id)) continue;
    const when = glass.started_at ? ` on ${formatDateTime(glass.started_at)}` : "";
    notices.push({ id: `bg-${glass.id}`, text: `${who(glass)} opened your chart in an emergency${when}.`, to: "/access-log" });
  }
  const waiting = (sources.requests ?? []).filter((request) => request.status === "pending");
  if (waiting.length) {
    const text = waiting.length === 1 ? "1 access request waits for your answer." : `${waiting.length} access requests wait for your answer.`;
    notices.push({ id: "requests", text, to: "/requests" });
  }
  for (const consent of sources.consents ?? []) {
    const state = consentState(consent);
    if (consent.status === "active" && consent.revoke_failure_reason) {
      notices.push({ id: `revoke-${consent.id}`, text: `${state.problem ?? "A revocation failed."} ${granteeName(consent)} still has access.`, to: "/consents" });
    }
  }
  const reviews = sources.reviews ?? [];
  if (reviews.length) {
    const text = reviews.length === 1 ? "1 break-glass access waits for your review." : `${reviews.length} break-glass accesses wait for your review.`;
    notices.push({ id: "reviews", text, to: "/break-glass/reviews" });
  }
  return notices;
}

const quiet = <T,>(read: Promise<T>): Promise<T | undefined> => read.catch(() => undefined);

async function loadSources(me: Me): Promise<Sources> {
  if (me.role === "patient") {
    const [glasses, requests, consents] = await Promise.all([
      quiet(call(api.GET("/api/patients/me/break-glass", { params: { query: { limit: 100 } } }))),
      quiet(call(api.GET("/api/access-requests", { params: { query: { limit: 100, status: "pending" } } }))),
      quiet(call(api.GET("/api/consents", { params: { query: { limit: 500, status: "active" } } }))),
    ]);
    return { breakGlasses: glasses?.results, requests: requests?.results, consents: consents?.results };
  }
  if (me.role === "hospital_admin") {
    const reviews = await quiet(
      call(api.GET("/api/break-glass/reviews", { params: { query: { limit: 100, status: "pending" } } })),
    );
    return { reviews: reviews?.results };
  }
  return {};
}

const seenKey = (me: Me) => `healthhash.seen-break-glass.${me.id}`;

function readSeen(me: Me): Set<string> {
  try {
    return new Set(JSON.parse(window.localStorage.getItem(seenKey(me)) ?? "[]") as string[]);
  } catch {
    return new Set();
  }
}

export function Notifications({ me }: { me: Me }) {
  const { path } = useLocation();
  const [sources, setSources] = useState<Sources>({});
  const [seen, setSeen] = useState<Set<string>>(() => readSeen(me));
  const [open, setOpen] = useState(false);

  useEffect(() => {
    let live = true;
    void loadSources(me).then((loaded) => live && setSources(loaded));
    return () => {
      live = false;
    };
  }, [me, path]);

  const notices = noticesFrom(sources, seen);
  const markSeen = useCallback(() => {
    const ids = new Set([...seen, ...(sources.breakGlasses ?? []).map((glass) => glass.id)]);
    window.localStorage.setItem(seenKey(me), JSON.stringify([...ids]));
    setSeen(ids);
  }, [me, seen, sources.breakGlasses]);
  const unseenGlass = notices.some((notice) => notice.id.startsWith("bg-"));

  return (
    <div className="notifications">
      <button
        type="button"
        className="link"
        aria-expanded={open}
        aria-controls="notifications-panel"
        onClick={() => setOpen(!open)}
      >
        Notifications{" "}
        <span className={notices.length ? "count count-some" : "count"}>
          {notices.length}
          <span className="visually-hidden"> new</span>
        </span>
      </button>
      {open ? (
        <div id="notifications-panel" className="notifications-panel">
          {notices.length ? (
            <ul>
              {notices.map((notice) => (
                <li key={notice.id}>
                  <Link to={notice.to} onClick={() => setOpen(false)}>
                    {notice.text}
                  </Link>
                </li>
              ))}
            </ul>
          ) : (
            <p>Nothing new.</p>
          )}
          {unseenGlass ? (
            <button type="button" className="small" onClick={markSeen}>
              Mark emergency accesses as seen
            </button>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
