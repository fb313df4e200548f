// What the page says when something went wrong: a lost connection with a retry, an API error in
// words, or a quiet "loading".
import type { ReactNode } from "react";
import { ApiError, NetworkError } from "../api/client";

export function ErrorNotice({ error, onRetry }: { error: Error; onRetry?: () => void }) {
  if (error instanceof NetworkError) {
    return (
      <div className="notice notice-bad" role="alert">
        <p>Connection lost: {error.message}</p>
        {onRetry ? (
          <button type="button" onClick={onRetry}>
            Try again
          </button>
        ) : null}
      </div>
    );
  }
  const detail = error instanceof ApiError ? error.message : "Something went wrong in the page.";
  return (
    <div className="notice notice-bad" role="alert">
      <p>{detail}</p>
      {onRetry ? (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

/** While polling: a lost connection is said, not fatal (the page keeps trying). */
export function ConnectionWatch({ error }: { error: Error | null }) {
  if (!(error instanceof NetworkError)) return null;
  return (
    <p className="notice notice-bad" role="status">
      Connection lost: still trying to reach the server…
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}
