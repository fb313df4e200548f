// The typed API client: every call goes through openapi-fetch with the paths of schema.d.ts, so an
// endpoint that changes shape fails `tsc`, not the user. It adds the CSRF header Django asks of
// session requests, turns error bodies into ApiError (code, detail, field) and a failed fetch into
// NetworkError, and tells the session when the server says we are no longer signed in.
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";
import type { ErrorBody } from "./types";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | null;

  constructor(status: number, body: ErrorBody) {
    super(body.detail);
    this.name = "ApiError";
    this.status = status;
    this.code = body.error;
    this.field = body.field;
  }
}

/** The server could not be reached (connection lost, server stopped): the page offers a retry. */
export class NetworkError extends Error {
  constructor() {
    super("The server cannot be reached. Check your connection, then try again.");
    this.name = "NetworkError";
  }
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const SIGNED_OUT_CODES = new Set(["not_authenticated", "authentication_failed"]);

export function readCookie(name: string): string {
  for (const part of document.cookie.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return "";
}

let onSignedOut: (() => void) | null = null;

/** The session registers what to do when any call answers 401 (sign-in, then back). */
export function setSignedOutHandler(handler: (() => void) | null): void {
  onSignedOut = handler;
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (UNSAFE.has(request.method)) {
      // Read on every request: Django rotates the token when a session signs in.
      request.headers.set("X-CSRFToken", readCookie("csrftoken"));
    }
    return request;
  },
};

export const api = createClient<paths>({
  baseUrl: typeof window === "undefined" ? "" : window.location.origin,
  credentials: "same-origin",
  headers: { Accept: "application/json" },
});
api.use(csrf);

function isErrorBody(value: unknown): value is ErrorBody {
  return typeof value === "object" && value !== null && "error" in value && "detail" in value;
}

type Outcome<T> = { data?: T; error?: unknown; response: Response };

/** Awaits one openapi-fetch call: its data, or an ApiError / NetworkError to show. */
export async function call<T>(request: Promise<Outcome<T>>): Promise<T> {
  let outcome: Outcome<T>;
  try {
    outcome = await request;
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new NetworkError();
  }
  const { data, error, response } = outcome;
  if (response.ok) return data as T;
  const body: ErrorBody = isErrorBody(error)
    ? error
    : { error: `http_${response.status}`, detail: `The server answered ${response.status}.`, field: null };
  if (response.status >= 502 && response.status <= 504 && !isErrorBody(error)) {
    // A proxy's or a stopped server's answer, not the API's: treat it as a lost connection.
    throw new NetworkError();
  }
  const failure = new ApiError(response.status, body);
  if (response.status === 401 && SIGNED_OUT_CODES.has(failure.code)) onSignedOut?.();
  return Promise.reject(failure);
}

/** Sets the csrftoken cookie before the first unsafe request (sign-in). */
export async function ensureCsrfCookie(): Promise<void> {
  if (!readCookie("csrftoken")) await call(api.GET("/api/auth/csrf"));
}
