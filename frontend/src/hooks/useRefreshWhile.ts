// Follows a long operation (a transaction being mined) without freezing the page: while `active`,
// one refresh at a time, spaced by timers that lengthen while the operation takes its time; stops
// when it is no longer active or the component goes away.
import { useEffect, useRef } from "react";

export const FIRST_DELAY_MS = 600;
export const MAX_DELAY_MS = 4000;

export function nextDelay(current: number, maxDelayMs: number = MAX_DELAY_MS): number {
  return Math.min(Math.round(current * 1.5), maxDelayMs);
}

export function useRefreshWhile(active: boolean, refresh: () => Promise<unknown>): void {
  const refreshRef = useRef(refresh);
  refreshRef.current = refresh;

  useEffect(() => {
    if (!active) return undefined;
    let stopped = false;
    let delay = FIRST_DELAY_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        await refreshRef.current();
      } catch {
        // the loader shows its own error; keep following
      }
      if (stopped) return;
      delay = nextDelay(delay);
      timer = setTimeout(tick, delay);
    };
    timer = setTimeout(tick, delay);
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [active]);
}
