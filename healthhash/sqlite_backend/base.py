"""Django's SQLite backend, with writers queued on a lock file instead of in SQLite's busy handler.

Every process of the embedded stack (gunicorn's workers and their threads, the Celery worker, the relayer,
the indexer) writes to one SQLite file, and SQLite lets one writer in at a time. A writer that finds the
file locked is put to sleep by SQLite's busy handler in growing steps (1, 2, 5, 10 ... 50, 100 ms) before
it looks again, so under load the one who has waited longest waits longer still: that backoff made the
tail of the embedded stack's opens (issue 17; bench_api, 16 clients: open p99 571-660 ms in four runs
with Django's backend, 257-481 ms in seven with this one, the median unchanged).

Here a transaction (settings ask for `BEGIN IMMEDIATE`) first takes an exclusive `flock` on
`<database>.write-lock`, through one open file per connection, and lets it go at COMMIT or ROLLBACK (or
when the connection closes): a waiting writer sleeps in the kernel and is woken as soon as the lock is
free. SQLite's own lock and busy timeout stay underneath, for the few writes made outside a transaction
(autocommit statements such as the relayer's lease), which do not take the file lock.

A writer waits for the file lock at most the connection's `timeout` (settings: 30 s), as SQLite's busy
timeout would, then fails as SQLite would: OperationalError("database is locked").

Fork: a child that inherits a connection shares its lock's open file; only a connection that holds the
lock ever unlocks it, and a connection is not forked while it is in a transaction (Celery and gunicorn
fork outside requests and tasks).
"""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Any

from django.db import OperationalError
from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    """django.db.backends.sqlite3's wrapper; a transaction holds `<NAME>.write-lock` (module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock_fd: int | None = None
        self._holds_write_lock = False

    def _start_transaction_under_autocommit(self) -> None:
        self._take_write_lock()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # not in django-stubs
        except BaseException:
            self._let_go_write_lock()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]  # not in django-stubs
        finally:
            if self.connection is None or self.connection.in_transaction is False:
                self._let_go_write_lock()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._let_go_write_lock()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._let_go_write_lock()
            if self._write_lock_fd is not None:
                os.close(self._write_lock_fd)
                self._write_lock_fd = None

    def _lock_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        if self.is_in_memory_db() or not name:
            return None
        return name + ".write-lock"

    def _take_write_lock(self) -> None:
        if self._holds_write_lock:
            return
        path = self._lock_path()
        if path is None:
            return
        if self._write_lock_fd is None:
            self._write_lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        timeout_s = float(self.settings_dict["OPTIONS"].get("timeout", 5))
        _flock_within(self._write_lock_fd, timeout_s)
        self._holds_write_lock = True

    def _let_go_write_lock(self) -> None:
        if self._holds_write_lock and self._write_lock_fd is not None:
            fcntl.flock(self._write_lock_fd, fcntl.LOCK_UN)
        self._holds_write_lock = False


def _flock_within(fd: int, timeout_s: float) -> None:
    """An exclusive flock on `fd`, waited for in the kernel, given up after `timeout_s`.

    Whatever ends the wait (the timeout, or an exception such as a signal handler's raised in this
    thread), the lock is either held and the function returns, or it is not held and never will be.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    # A blocking flock cannot time out by itself: a helper thread waits for it, this one for the helper.
    taken = threading.Event()
    settled = threading.Lock()
    abandoned = False

    def wait() -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with settled:
            if abandoned:
                fcntl.flock(fd, fcntl.LOCK_UN)
            else:
                taken.set()

    threading.Thread(target=wait, daemon=True, name="sqlite-write-lock").start()
    try:
        if taken.wait(timeout_s):
            return
    except BaseException:
        with settled:
            abandoned = True
            if taken.is_set():  # taken just before the exception: this thread will not use it
                fcntl.flock(fd, fcntl.LOCK_UN)
        raise
    with settled:
        if taken.is_set():  # taken between the timeout and now
            return
        abandoned = True
    raise OperationalError("database is locked")
