"""How a long-running command of ours stops on a signal (the demo, a benchmark's child)."""

from __future__ import annotations

import signal
from typing import Any


def stop_once(signum: int, _frame: Any) -> None:
    """A signal handler: the first SIGINT/SIGTERM unwinds the process (its `with` blocks stop what it
    started); later ones are ignored so the clean-up runs to its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)
