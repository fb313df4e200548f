"""A progress line for the demo's long steps (chart import, anchoring), from the standard library.

On a terminal it redraws one line in place ("   importing charts  [######------]  312/569  12 s");
into a pipe or a log it writes a plain line at each quarter, so a captured run stays short.
"""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 28
REDRAW_EVERY_S = 0.1


class Progress:
    """Call `update(done)` as work advances and `close()` at the end (it draws the final state)."""

    def __init__(self, label: str, total: int, *, stream: TextIO) -> None:
        self.label, self.total, self.stream = label, max(total, 0), stream
        self.done = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._quarters_told = 0
        self._tty = bool(getattr(stream, "isatty", lambda: False)())

    def update(self, done: int) -> None:
        self.done = min(done, self.total)
        if self._tty:
            if time.monotonic() - self._drawn_at >= REDRAW_EVERY_S:
                self._draw(end="")
        elif self.total:
            quarter = 4 * self.done // self.total
            if quarter > self._quarters_told and quarter < 4:  # the 4th quarter is close()'s line
                self._quarters_told = quarter
                self._draw(end="\n")

    def close(self) -> None:
        self._draw(end="\n")

    def line(self) -> str:
        filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        width = len(str(self.total))
        seconds = time.monotonic() - self.started
        return f"   {self.label}  [{bar}]  {self.done:>{width}}/{self.total}  {seconds:.0f} s"

    def _draw(self, *, end: str) -> None:
        self._drawn_at = time.monotonic()
        prefix = "\r" if self._tty else ""
        self.stream.write(prefix + self.line() + end)
        self.stream.flush()
