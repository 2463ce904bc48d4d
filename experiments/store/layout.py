"""Where a store lives: one DuckDB file plus a folder of raw metric chunks beside it.

Layout for `data/mutransfer.duckdb`:
    data/mutransfer.duckdb                         sweeps, runs (the job queue), metrics, ...
    data/mutransfer.duckdb.d/chunks/S/R/part-A-N.parquet   raw metrics of run R, attempt A
    data/mutransfer.duckdb.d/chunks/S/R/result-A.json      result journal of each attempt
    data/mutransfer.duckdb.d/chunks/S/R/CANCEL             cancel marker the worker polls

`StoreFiles` is the base of every part of the store (queue, runners, sweeps, metrics,
records): each part reads and writes through `self._connect()` (`db.connect` of `self.path`,
read-only when the store was opened read-only), one short transaction per operation, and finds
run folders under `self.root`. Metric chunks that cannot be read are moved aside into
`<store>.d/quarantine/S/R/` (see `experiments.store.metrics`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import duckdb

from experiments.errors import StoreError
from experiments.store.chunks import run_dir
from experiments.store.db import connect, held


class StoreFiles:
    """The store's paths: `path` (the DuckDB file) and `root` (`<path>.d`, chunks and logs).

    `_version` is the schema version the store was opened at (set by `Store`).

    Args:
        db_path: the DuckDB file.
        read_only: attach the file READ_ONLY and create nothing (commands that only read:
            they then work on a store this user cannot write).

    Raises:
        StoreError: (read-write) the store's folders cannot be created here.
    """

    _version: int = 0

    def __init__(self, db_path: str | Path, read_only: bool = False) -> None:
        self.path = Path(db_path).expanduser().resolve()
        self.root = self.path.with_name(self.path.name + ".d")
        self.read_only = read_only
        if read_only:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            (self.root / "chunks").mkdir(parents=True, exist_ok=True)
        except PermissionError as exc:
            raise StoreError(
                f"cannot create the store's folders for {self.path}: {exc.strerror}: "
                f"{exc.filename}. The folder is not writable by this user: pass --db in a "
                "folder you can write to (read-only commands still work on an existing store)",
                "dir_not_writable") from None

    def _connect(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """One operation's connection to the store (read-only when the store was opened so)."""
        return connect(self.path, read_only=self.read_only)

    def run_dir(self, sweep_id: int, run_id: int) -> Path:
        """Folder of one run's chunks, result journal and cancel marker."""
        return run_dir(self.root, int(sweep_id), int(run_id))

    def batch(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A block in which this thread's store operations share one connection (`db.held`).

        Cheaper for a burst of small operations; other processes wait until it ends.
        """
        return held(self.path)
