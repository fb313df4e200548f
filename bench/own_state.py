"""A bench that measures in a state of its own (bench_api, bench_portal): a fresh folder under
VAR_DIR/tmp, and the same command started again inside it, so the bench's database, store, secrets and
chain never touch the caller's. Removed afterwards unless the caller keeps it (its logs are there)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError


@contextmanager
def own_state(prefix: str, *, keep: bool, say: Callable[[str], object]) -> Iterator[Path]:
    """A fresh state folder for one run; removed when the block ends, or named if `keep`."""
    scratch = Path(settings.VAR_DIR) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix=prefix, dir=scratch))
    try:
        yield state
    finally:
        if keep:
            say(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


def run_again_inside(command: str, argv: list[str], env: dict[str, str]) -> None:
    """`manage.py command argv` in a child process with `env`; CommandError if it fails."""
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), command, *argv],
        env=env,
        check=False,
    )
    if done.returncode:
        raise CommandError(f"the benchmark failed (exit {done.returncode})")
