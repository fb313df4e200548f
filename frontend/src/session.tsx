// Who is signed in, for the whole page. An answer of 401 from any call (the session expired or was
// ended elsewhere) sends the user to sign-in with the page they were on, and back there after.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, call, ensureCsrfCookie, setSignedOutHandler } from "./api/client";
import type { Me } from "./api/types";
import { navigate } from "./router";

type State =
  | { status: "loading" }
  | { status: "signed-out" }
  | { status: "unreachable"; error: Error }
  | { status: "signed-in"; me: Me };

type Session = {
  state: State;
  me: Me | null;
  signIn: (username: string, password: string) => Promise<Me>;
  signOut: () => Promise<void>;
  retry: () => void;
};

const SessionContext = createContext<Session | null>(null);

/** A `next` target is followed only when it is a path on this site (never another origin). */
export function safeNext(next: string | null): string | null {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return null;
  if (next.startsWith("/sign-in")) return null;
  return next;
}

export function signInPath(next: string, expired: boolean): string {
  const query = new URLSearchParams({ next });
  if (expired) query.set("expired", "1");
  return `/sign-in?${query.toString()}`;
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<State>({ status: "loading" });

  const load = useCallback(() => {
    setState({ status: "loading" });
    call(api.GET("/api/me"))
      .then((me) => setState({ status: "signed-in", me }))
      .catch((error: Error) => {
        if (error.name === "NetworkError") setState({ status: "unreachable", error });
        else setState({ status: "signed-out" });
      });
  }, []);

  useEffect(load, [load]);

  useEffect(() => {
    setSignedOutHandler(() => {
      setState((previous) => {
        if (previous.status === "signed-in") {
          const here = window.location.pathname + window.location.search;
          navigate(signInPath(here, true), { replace: true });
        }
        return { status: "signed-out" };
      });
    });
    return () => setSignedOutHandler(null);
  }, []);

  const signIn = useCallback(async (username: string, password: string) => {
    await ensureCsrfCookie();
    const me = await call(api.POST("/api/auth/login", { body: { username, password } }));
    setState({ status: "signed-in", me });
    return me;
  }, []);

  const signOut = useCallback(async () => {
    await call(api.POST("/api/auth/logout"));
    setState({ status: "signed-out" });
    navigate("/sign-in", { replace: true });
  }, []);

  const value = useMemo<Session>(
    () => ({ state, me: state.status === "signed-in" ? state.me : null, signIn, signOut, retry: load }),
    [state, signIn, signOut, load],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}

/** The signed-in user, on pages that are only rendered when someone is. */
export function useMe(): Me {
  const { me } = useSession();
  if (!me) throw new Error("useMe on a page rendered without a signed-in user");
  return me;
}
