// Loading data for a page: the value, the error to show (with a retry), a reload that shows progress
// and a quiet refresh that keeps what is on screen (for polling).
import { useCallback, useEffect, useRef, useState } from "react";

export type Load<T> = {
  data: T | undefined;
  error: Error | null;
  loading: boolean;
  reload: () => void;
  refresh: () => Promise<void>;
};

export function useLoad<T>(fetcher: () => Promise<T>, deps: readonly unknown[]): Load<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | null>(null);
  const [loading, setLoading] = useState(true);
  const [generation, setGeneration] = useState(0);
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;
  const liveRef = useRef(0);

  useEffect(() => {
    const ticket = ++liveRef.current;
    setLoading(true);
    setError(null);
    fetcherRef
      .current()
      .then((value) => ticket === liveRef.current && setData(value))
      .catch((failure: Error) => ticket === liveRef.current && setError(failure))
      .finally(() => ticket === liveRef.current && setLoading(false));
    // `deps` name what the fetcher depends on, as for useEffect.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, generation]);

  useEffect(
    () => () => {
      liveRef.current += 1; // unmounted: late answers are dropped
    },
    [],
  );

  const reload = useCallback(() => setGeneration((n) => n + 1), []);
  const refresh = useCallback(async () => {
    const ticket = liveRef.current;
    try {
      const value = await fetcherRef.current();
      if (ticket !== liveRef.current) return;
      setData(value);
      setError(null);
    } catch (failure) {
      if (ticket === liveRef.current) setError(failure as Error);
    }
  }, []);
  return { data, error, loading, reload, refresh };
}
