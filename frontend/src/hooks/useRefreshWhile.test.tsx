import { act, render } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FIRST_DELAY_MS, MAX_DELAY_MS, nextDelay, useRefreshWhile } from "./useRefreshWhile";

function Follower({ active, refresh }: { active: boolean; refresh: () => Promise<unknown> }) {
  useRefreshWhile(active, refresh);
  return null;
}

describe("useRefreshWhile", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("refreshes on timers, slower each time, while active", async () => {
    const refresh = vi.fn(() => Promise.resolve());
    render(<Follower active refresh={refresh} />);
    expect(refresh).not.toHaveBeenCalled(); // never inline: the page renders first
    await act(() => vi.advanceTimersByTimeAsync(FIRST_DELAY_MS));
    expect(refresh).toHaveBeenCalledTimes(1);
    await act(() => vi.advanceTimersByTimeAsync(nextDelay(FIRST_DELAY_MS)));
    expect(refresh).toHaveBeenCalledTimes(2);
  });

  it("stops when the operation is no longer in flight", async () => {
    const refresh = vi.fn(() => Promise.resolve());
    const { rerender } = render(<Follower active refresh={refresh} />);
    await act(() => vi.advanceTimersByTimeAsync(FIRST_DELAY_MS));
    rerender(<Follower active={false} refresh={refresh} />);
    await act(() => vi.advanceTimersByTimeAsync(MAX_DELAY_MS * 5));
    expect(refresh).toHaveBeenCalledTimes(1);
  });

  it("keeps following through a failed refresh", async () => {
    const refresh = vi.fn(() => Promise.reject(new Error("lost")));
    render(<Follower active refresh={refresh} />);
    await act(() => vi.advanceTimersByTimeAsync(FIRST_DELAY_MS + nextDelay(FIRST_DELAY_MS)));
    expect(refresh).toHaveBeenCalledTimes(2);
  });

  it("never waits longer than the ceiling", () => {
    expect(nextDelay(MAX_DELAY_MS)).toBe(MAX_DELAY_MS);
  });
});
