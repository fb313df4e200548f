"""healthhash.sqlite_backend: a transaction holds `<database>.write-lock` from BEGIN to COMMIT or ROLLBACK,
a second writer waits for it (woken when it is let go, not failed), gives up after the connection's
timeout with "database is locked", and no way out of a transaction leaves the lock held.

Each test opens its own SQLite file through the backend (whatever database the suite runs on). "Another
process" is an open file of the lock in this process: flock locks belong to the open file, so a second
open file of the lock contends exactly as another process's would.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler

from healthhash.sqlite_backend.base import DatabaseWrapper


def _connection(path: Path, *, timeout_s: float = 30.0) -> DatabaseWrapper:
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "healthhash.sqlite_backend",
                "NAME": str(path),
                "OPTIONS": {"timeout": timeout_s, "transaction_mode": "IMMEDIATE"},
            }
        }
    )
    connection = handler["default"]
    assert isinstance(connection, DatabaseWrapper)
    return connection


@contextmanager
def _transaction(connection: Any) -> Iterator[Any]:
    """What transaction.atomic does on SQLite for an outermost block, on a connection of our own."""
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    try:
        yield connection.cursor()
    except BaseException:
        connection.rollback()
        connection.set_autocommit(True)
        raise
    connection.commit()
    connection.set_autocommit(True)


def _lock_is_free(lock_path: Path) -> bool:
    """Whether another open file (another process) could take the lock right now."""
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


@pytest.fixture
def database(tmp_path: Path, django_db_blocker: Any) -> Iterator[Path]:
    """A fresh file with one table; these connections are the tests' own, not the suite's database."""
    path = tmp_path / "db.sqlite3"
    with django_db_blocker.unblock():
        connection = _connection(path)
        with _transaction(connection) as cursor:
            cursor.execute("CREATE TABLE item (name TEXT NOT NULL)")
        connection.close()
        yield path


def _names(path: Path) -> list[str]:
    connection = _connection(path)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM item ORDER BY rowid")
            return [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()


def test_a_transaction_holds_the_lock_file_until_commit(database: Path) -> None:
    lock_path = Path(f"{database}.write-lock")
    connection = _connection(database)
    with _transaction(connection) as cursor:
        cursor.execute("INSERT INTO item VALUES ('a')")
        assert not _lock_is_free(lock_path)
    assert _lock_is_free(lock_path)
    # Reads outside a transaction take no lock.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM item")
    assert _lock_is_free(lock_path)
    connection.close()
    assert _names(database) == ["a"]


def test_a_second_writer_waits_for_the_first_and_then_writes(database: Path) -> None:
    holding, go_on = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        connection = _connection(database)
        try:
            with _transaction(connection) as cursor:
                cursor.execute("INSERT INTO item VALUES ('first')")
                holding.set()
                go_on.wait(10)
                time.sleep(0.3)  # still holding after the second writer has started waiting
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert holding.wait(10)
    connection = _connection(database, timeout_s=10.0)
    go_on.set()
    started = time.monotonic()
    with _transaction(connection) as cursor:
        waited = time.monotonic() - started
        cursor.execute("INSERT INTO item VALUES ('second')")
    connection.close()
    thread.join(10)
    assert errors == []
    assert waited >= 0.25, waited  # it waited for the first writer's commit ...
    assert waited < 5, waited  # ... and was let in soon after it, not after a timeout
    assert _names(database) == ["first", "second"]


def _other_lets_go_and_the_connection_writes(other: int, database: Path, connection: Any) -> None:
    """The other writer lets go: the helper thread that went on waiting for the lock on behalf of the
    connection that gave up takes it and lets it go again, so the lock is free, and that connection
    writes on its next try."""
    lock_path = Path(f"{database}.write-lock")
    fcntl.flock(other, fcntl.LOCK_UN)
    os.close(other)
    deadline = time.monotonic() + 5
    while not _lock_is_free(lock_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _lock_is_free(lock_path)
    with _transaction(connection) as cursor:
        cursor.execute("INSERT INTO item VALUES ('later')")
    connection.close()
    assert _names(database) == ["later"]


def test_a_writer_gives_up_after_its_timeout_and_leaves_no_lock_behind(database: Path) -> None:
    lock_path = Path(f"{database}.write-lock")
    other = os.open(lock_path, os.O_RDWR | os.O_CREAT)  # another process's writer, mid-transaction
    fcntl.flock(other, fcntl.LOCK_EX)
    connection = _connection(database, timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="database is locked"), _transaction(connection) as cursor:
        cursor.execute("INSERT INTO item VALUES ('never')")
    assert 0.15 <= time.monotonic() - started < 5
    _other_lets_go_and_the_connection_writes(other, database, connection)


class _Interrupted(Exception):
    pass


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise _Interrupted


def test_a_signal_that_ends_the_wait_leaves_no_lock_behind(database: Path) -> None:
    """A signal handler that raises while a writer waits (a SIGTERM turned into an exception, as the
    project's processes do): the writer fails with it, and the lock, once free, is not taken for good."""
    lock_path = Path(f"{database}.write-lock")
    other = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(other, fcntl.LOCK_EX)
    connection = _connection(database, timeout_s=30.0)
    previous = signal.signal(signal.SIGALRM, _raise_interrupted)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(_Interrupted), _transaction(connection):
            pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    _other_lets_go_and_the_connection_writes(other, database, connection)


def test_a_rolled_back_transaction_lets_the_lock_go_and_writes_nothing(database: Path) -> None:
    lock_path = Path(f"{database}.write-lock")
    connection = _connection(database)
    with pytest.raises(ZeroDivisionError), _transaction(connection) as cursor:
        cursor.execute("INSERT INTO item VALUES ('rolled back')")
        _ = 1 / 0
    assert _lock_is_free(lock_path)
    connection.close()
    assert _names(database) == []


def test_closing_a_connection_mid_transaction_lets_the_lock_go(database: Path) -> None:
    lock_path = Path(f"{database}.write-lock")
    connection = _connection(database)
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    connection.cursor().execute("INSERT INTO item VALUES ('lost')")
    assert not _lock_is_free(lock_path)
    connection.close()
    assert _lock_is_free(lock_path)
    assert _names(database) == []


def test_many_writers_in_threads_all_get_in(database: Path) -> None:
    """8 threads x 25 transactions on a 30 s timeout: every one commits, none fails with 'locked'."""
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        connection = _connection(database)
        try:
            for n in range(25):
                with _transaction(connection) as cursor:
                    cursor.execute("SELECT count(*) FROM item")
                    cursor.execute("INSERT INTO item VALUES (%s)", [f"{index}-{n}"])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(_names(database)) == sorted(f"{i}-{n}" for i in range(8) for n in range(25))
