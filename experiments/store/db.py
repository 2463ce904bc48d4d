"""Short-lived DuckDB connections with retry on the cross-process file lock.

DuckDB lets one process hold a database file read-write, and while it does every other
process's open fails, read-only included ("Could not set lock on file"). So no process of ours
keeps the file open while idle: each operation attaches the file (to a per-thread in-memory
DuckDB instance, far cheaper than opening a database), runs one transaction, detaches. A lock
conflict is retried with jittered backoff and is never shown to a user unless it outlasts
`LOCK_TIMEOUT_S` (then the message says which process holds the lock).

Store faults are named, never shown as a DuckDB traceback: a file that is not a readable DuckDB
database (truncated, zero-length, damaged), a file or folder this user cannot write, a file it
cannot read each raise an `experiments.errors.StoreError` saying what to do (the CLI exits 2).
Commands that only read attach the file READ_ONLY (`connect(..., read_only=True)`), so they
work on a store this user cannot write.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from experiments.errors import StoreError

LOCK_TIMEOUT_S = 60.0
_LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "lock on file", "already attached")
# DuckDB also refuses a second connection to the same file from another thread of this
# process ("Unique file handle conflict"), so threads of one process take turns per file.
_THREAD_LOCKS: dict[str, threading.RLock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.RLock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(str(path), threading.RLock())


class StoreBusyError(StoreError, RuntimeError):
    """The store stayed locked by another process for longer than the timeout."""

    KIND = "busy"


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return any(m in text for m in _LOCK_MARKERS)


# What DuckDB says about a file that is not a (whole) DuckDB database: a foreign or zero-length
# file, one cut short, a block whose checksum fails.
_CORRUPT_MARKERS = ("not a valid DuckDB database", "Could not read enough bytes",
                    "Corrupt database file", "checksum does not match")


def store_fault(path: Path, exc: BaseException, read_only: bool = False) -> StoreError | None:
    """The named store fault behind a DuckDB error on the store file `path`, or None.

    Only errors about the store itself are named (its file or its `.wal` journal): an error
    about another file (a metric chunk, a data file) is not a store fault.
    """
    text = str(exc)
    about_store = str(path) in text
    if "Corrupt database file" in text or (about_store and any(m in text for m in _CORRUPT_MARKERS)):
        return StoreError(
            f"the store {path} is not a readable DuckDB database (corrupt, truncated or empty): "
            f"{text.strip().rstrip('.!')}. Nothing was changed. Restore it from a backup, or move it aside "
            f"(mv {path} {path}.broken) and pass a new --db; the metric chunks and run results "
            f"in {path}.d/chunks are kept", "corrupt")
    if not (about_store and "Permission denied" in text):
        return None
    folder = path.parent
    if read_only:
        return StoreError(f"the store {path} cannot be read by this user ({text.strip()}): "
                          "fix its permissions (chmod a+r) or run as its owner", "not_readable")
    if f"{path}.wal" in text or not path.exists():
        what = (f"DuckDB writes its journal {path}.wal beside the file, so the store cannot be "
                "changed" if path.exists() else "a new store cannot be created there")
        return StoreError(
            f"the folder {folder} of the store {path} is not writable by this user: {what}. "
            "Read-only commands (sweep status, runs, analyze, export) still work on an existing "
            "store; make the folder writable, or pass --db in a folder you can write to",
            "dir_not_writable")
    return StoreError(
        f"the store {path} is not writable by this user ({text.strip()}). Read-only commands "
        "(sweep status, runs, analyze, export) still work; to run, submit, cancel or retry "
        f"sweeps make it writable (chmod u+w {path}, or run as its owner), or copy it and pass "
        "--db COPY", "not_writable")


# Connections a thread holds open across several operations (`held`), by file path.
_HELD = threading.local()


def _held_connections() -> dict[str, duckdb.DuckDBPyConnection]:
    cons: dict[str, duckdb.DuckDBPyConnection] | None = getattr(_HELD, "cons", None)
    if cons is None:
        cons = _HELD.cons = {}
    return cons


@contextmanager
def held(path: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """Keep one connection to `path` open for every `connect` of this thread inside the block.

    For a burst of operations that belong together (the runner writing a result and claiming
    the next run): one attach and one (checkpointing) detach instead of one per operation. Other
    processes wait meanwhile, so keep the block short and never sleep or wait inside it.
    """
    cons = _held_connections()
    key = str(path)
    if key in cons:
        yield cons[key]
        return
    with connect(path, timeout_s) as con:
        cons[key] = con
        try:
            yield con
        finally:
            del cons[key]


def utc_now() -> datetime:
    """Now as the store writes timestamps: naive, in UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block as one transaction on `con`: COMMIT at its end, ROLLBACK if it raises.

    Every store write of more than one statement goes through here, so a failure half-way
    (a constraint, a bad chunk file, a KeyboardInterrupt) leaves no partial write behind.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        # A failed statement or COMMIT may have ended the transaction already; the original
        # error is the one worth raising.
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def _engine() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB instance, created once (~15 ms) and reused.

    Creating a DuckDB instance costs ~15 ms (its catalog of built-in functions), while
    attaching a file to a live one and detaching it costs ~2 ms, so each operation attaches
    the store file instead of opening a new database; DETACH releases the file lock exactly as
    closing a connection does. One instance per thread: attached names are per instance.
    """
    engine: duckdb.DuckDBPyConnection | None = getattr(_HELD, "engine", None)
    if engine is None:
        engine = _HELD.engine = duckdb.connect(":memory:")
    return engine


@contextmanager
def connect(
    path: Path, timeout_s: float = LOCK_TIMEOUT_S, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Attach `path` for one operation (read-write, or READ_ONLY); retry while another process
    holds it.

    The connection yielded has the store as its default database (unqualified table names
    are the store's). Inside a `held` block of this thread, the held connection is reused
    (and left attached). A read-only attach needs only read permission on the file, and several
    read-only processes may attach it at once (never while one holds it read-write).

    Raises:
        StoreBusyError: still locked after `timeout_s`.
        StoreError: the file is corrupt, or this user cannot read (or write) it or its folder.
    """
    reuse = _held_connections().get(str(path))
    if reuse is not None:
        yield reuse
        return
    with _thread_lock(path):
        engine = _engine()
        depth = getattr(_HELD, "depth", 0)
        alias = f"store{depth}"
        outer = f"store{depth - 1}" if depth else "memory"
        _attach(engine, path, alias, timeout_s, read_only)
        _HELD.depth = depth + 1
        finished = False
        try:
            engine.execute(f"USE {alias}")
            yield engine
            finished = True
        except duckdb.Error as exc:
            fault = store_fault(path, exc, read_only)
            if fault is None:
                raise
            raise fault from exc
        finally:
            _HELD.depth = depth
            if not finished:
                # An operation that failed mid-transaction: drop it, as closing would.
                with contextlib.suppress(duckdb.Error):
                    engine.execute("ROLLBACK")
            engine.execute(f"USE {outer}")
            engine.execute(f"DETACH {alias}")


def _attach(engine: duckdb.DuckDBPyConnection, path: Path, alias: str, timeout_s: float,
            read_only: bool) -> None:
    """ATTACH the store file as `alias`, retrying lock conflicts with jittered backoff."""
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    # ATTACH takes no bound parameters; the path is ours (not user SQL), quotes doubled.
    quoted = str(path).replace("'", "''")
    mode = " (READ_ONLY)" if read_only else ""
    while True:
        try:
            engine.execute(f"ATTACH '{quoted}' AS {alias}{mode}")
            return
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                fault = store_fault(path, exc, read_only)
                if fault is None:
                    raise
                raise fault from exc
            if time.monotonic() > deadline:
                raise StoreBusyError(
                    f"the store {path} stayed locked for {timeout_s:.0f} s: {exc}. Another "
                    "process holds it (the message names its PID): wait for it or stop it, "
                    "then try again"
                ) from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.6, 0.25)
