// The door to the training screens: their code is fetched on the first visit (React.lazy), with
// "loading" meanwhile and, when the fetch fails (connection lost, a new build replaced the files), a
// retry instead of a blank page.
import { Component, lazy, Suspense, useState, type ReactNode } from "react";
import { NetworkError } from "../../api/client";
import { ErrorNotice, Loading } from "../../components/Notices";
import { Page } from "../../components/Page";

const lazyRoutes = () => lazy(() => import("./TrainingRoutes"));
// A lazy component that failed keeps failing: a retry makes a new one.
let TrainingRoutes = lazyRoutes();

type State = { failed: Error | null };

/** A script that could not be fetched reads as a lost connection; anything else as a fault of the page. */
function shown(error: Error): Error {
  return /dynamically imported module|module script failed|Failed to fetch/i.test(error.message) ? new NetworkError() : error;
}

class LoadBoundary extends Component<{ children: ReactNode; onRetry: () => void }, State> {
  override state: State = { failed: null };

  static getDerivedStateFromError(error: unknown): State {
    return { failed: error instanceof Error ? error : new Error(String(error)) };
  }

  override render() {
    if (!this.state.failed) return this.props.children;
    return (
      <Page title="Training">
        <ErrorNotice error={shown(this.state.failed)} onRetry={this.props.onRetry} />
      </Page>
    );
  }
}

export function TrainingScreen({ path }: { path: string }) {
  const [attempt, setAttempt] = useState(0);
  const retry = () => {
    TrainingRoutes = lazyRoutes();
    setAttempt((n) => n + 1);
  };
  return (
    <LoadBoundary key={attempt} onRetry={retry}>
      <Suspense fallback={<Loading what="the training pages" />}>
        <TrainingRoutes path={path} />
      </Suspense>
    </LoadBoundary>
  );
}
