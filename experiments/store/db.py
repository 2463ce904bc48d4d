"""Short-lived DuckDB connections with retry on the cross-process file lock.

DuckDB lets one process hold a database file read-write, and while it does every other
process's open fails, read-only included ("Could not set lock on file"). So no process of ours
keeps the file open while idle: each operation connects, runs one transaction, closes. A lock
conflict is retried with jittered backoff and is never shown to a user unless it outlasts
`LOCK_TIMEOUT_S` (then the message says which process holds the lock).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

LOCK_TIMEOUT_S = 60.0
_LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "lock on file", "already attached")
# DuckDB also refuses a second connection to the same file from another thread of this
# process ("Unique file handle conflict"), so threads of one process take turns per file.
_THREAD_LOCKS: dict[str, threading.RLock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.RLock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(str(path), threading.RLock())


class StoreBusyError(RuntimeError):
    """The store stayed locked by another process for longer than the timeout."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return any(m in text for m in _LOCK_MARKERS)


@contextmanager
def connect(path: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open `path` read-write for one operation; retry while another process holds it.

    Raises:
        StoreBusyError: still locked after `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    with _thread_lock(path):
        while True:
            try:
                con = duckdb.connect(str(path))
                break
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise
                if time.monotonic() > deadline:
                    raise StoreBusyError(
                        f"the store {path} stayed locked for {timeout_s:.0f} s: {exc}"
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 1.6, 0.25)
        try:
            yield con
        finally:
            con.close()
