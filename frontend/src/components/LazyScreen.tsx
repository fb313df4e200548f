// The door to a screen whose code is fetched on the first visit (React.lazy), so it stays out of the
// portal's first load: "loading" meanwhile and, when the fetch fails (connection lost, a new build
// replaced the files), a retry instead of a blank page.
import { Component, lazy, Suspense, useState, type ComponentType, type ReactNode } from "react";
import { NetworkError } from "../api/client";
import { ErrorNotice, Loading } from "./Notices";
import { Page } from "./Page";

type State = { failed: Error | null };

/** A script that could not be fetched reads as a lost connection; anything else as a fault of the page. */
function shown(error: Error): Error {
  return /dynamically imported module|module script failed|Failed to fetch/i.test(error.message) ? new NetworkError() : error;
}

class LoadBoundary extends Component<{ children: ReactNode; title: string; onRetry: () => void }, State> {
  override state: State = { failed: null };

  static getDerivedStateFromError(error: unknown): State {
    return { failed: error instanceof Error ? error : new Error(String(error)) };
  }

  override render() {
    if (!this.state.failed) return this.props.children;
    return (
      <Page title={this.props.title}>
        <ErrorNotice error={shown(this.state.failed)} onRetry={this.props.onRetry} />
      </Page>
    );
  }
}

/** A screen loaded on demand: `title` heads its error page, `what` its "Loading …" line. */
export function lazyScreen<P extends object>(
  load: () => Promise<{ default: ComponentType<P> }>,
  title: string,
  what: string,
): ComponentType<P> {
  // A lazy component that failed keeps failing: a retry makes a new one.
  let Screen = lazy(load);
  return function LazyScreen(props: P) {
    const [attempt, setAttempt] = useState(0);
    const retry = () => {
      Screen = lazy(load);
      setAttempt((n) => n + 1);
    };
    return (
      <LoadBoundary key={attempt} title={title} onRetry={retry}>
        <Suspense fallback={<Loading what={what} />}>
          <Screen {...props} />
        </Suspense>
      </LoadBoundary>
    );
  };
}
