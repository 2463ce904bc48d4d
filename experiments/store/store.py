"""The experiment store: one DuckDB file plus a folder of raw metric chunks beside it.

`Store` is a thin facade over the store's parts, one concept a module (the file layout is in
`experiments.store.layout`):
    queue.py    the runs as a job queue: claim, progress, finish, fail, cancel, retry,
                resume, recover orphans, pending counts
    runners.py  the registry of live runner processes (register, heartbeat, live_runners)
    sweeps.py   a sweep created with its runs queued, read back (`get_sweep`, `list_sweeps`)
    metrics.py  chunk ingest, `rebuild_metrics`, and the run and metric frames
    records.py  coordinate checks, exports and verifications kept beside the sweeps

Every method opens the database for one short transaction (see `db.connect`), so the
dashboard, a CLI sweep and the background runner share the file without lock errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from experiments.store.metrics import MetricsTable
from experiments.store.queue import RunQueue
from experiments.store.records import RecordsTable
from experiments.store.schema import ensure_schema, read_version
from experiments.store.sweeps import SweepTable


class Store(RunQueue, SweepTable, MetricsTable, RecordsTable):
    """The DuckDB store: every part's methods on one object (`Store(path).claim(...)`).

    Opening creates the file and its folder if needed and migrates an older schema in place.
    With `read_only=True` it creates and migrates nothing and attaches the file READ_ONLY: the
    reads work on a store this user cannot write (and on an older schema: what a later
    migration added reads as empty); writes fail, and `ingest` does nothing.

    Raises:
        StoreError: the file is corrupt or not a store, or this user cannot read it (or, read-
            write, write it or its folder).
    """

    def __init__(self, db_path: str | Path, read_only: bool = False) -> None:
        super().__init__(db_path, read_only=read_only)
        with self._connect() as con:
            self._version = read_version(con) if read_only else ensure_schema(con)

    def schema_version(self) -> int:
        """The store's schema version."""
        with self._connect() as con:
            row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row else 0


def wait_for(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `predicate()` until true or timeout (tests and CLIs)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
