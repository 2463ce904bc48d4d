"""Where a store lives: one DuckDB file plus a folder of raw metric chunks beside it.

Layout for `data/mutransfer.duckdb`:
    data/mutransfer.duckdb                         sweeps, runs (the job queue), metrics, ...
    data/mutransfer.duckdb.d/chunks/S/R/part-A-N.parquet   raw metrics of run R, attempt A
    data/mutransfer.duckdb.d/chunks/S/R/result-A.json      result journal of each attempt
    data/mutransfer.duckdb.d/chunks/S/R/CANCEL             cancel marker the worker polls

`StoreFiles` is the base of every part of the store (queue, runners, sweeps, metrics,
records): each part reads and writes through `db.connect(self.path)`, one short transaction
per operation, and finds run folders under `self.root`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import duckdb

from experiments.store.chunks import run_dir
from experiments.store.db import held


class StoreFiles:
    """The store's paths: `path` (the DuckDB file) and `root` (`<path>.d`, chunks and logs)."""

    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(db_path).expanduser().resolve()
        self.root = self.path.with_name(self.path.name + ".d")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        (self.root / "chunks").mkdir(parents=True, exist_ok=True)

    def run_dir(self, sweep_id: int, run_id: int) -> Path:
        """Folder of one run's chunks, result journal and cancel marker."""
        return run_dir(self.root, int(sweep_id), int(run_id))

    def batch(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A block in which this thread's store operations share one connection (`db.held`).

        Cheaper for a burst of small operations; other processes wait until it ends.
        """
        return held(self.path)
