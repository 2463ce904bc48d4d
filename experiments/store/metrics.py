"""Metrics and run tables for analysis: chunk ingest, and the frames the analysis and UI read.

Workers never open the database: they write Parquet chunks (`experiments.store.chunks`), and
`ingest` batches new chunks into the metrics table with one Arrow-speed `INSERT ... SELECT FROM
read_parquet`, idempotent because the ingested paths are recorded in the same transaction.
A chunk that cannot be read does not stop the others: it is quarantined (moved aside and
recorded, `experiments.store.quarantine`), shown in its run's `note` and in `sweep status`, and
the rest is ingested. `rebuild_metrics` re-creates the metrics table from the chunks alone
(disaster recovery).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from experiments.analysis.axes import payload_columns
from experiments.spec.run import GLOBAL_KNOBS
from experiments.store.db import transaction
from experiments.store.layout import StoreFiles
from experiments.store.quarantine import (
    QuarantinedChunk,
    list_quarantined,
    quarantine,
    skipped_paths,
    unreadable,
)
from experiments.store.schema import QUARANTINE_VERSION

# Every global knob becomes a column of `runs_frame`, so the analysis can tell apart runs that
# differ in any of them (knob names are Python identifiers, safe as SQL names).
_KNOB_COLUMNS = ",\n".join(
    f"CAST(json_extract(hparams, '$.{k}') AS DOUBLE) AS {k}" for k in GLOBAL_KNOBS
)


def _ladder_columns() -> str:
    """Each ladder axis's value and base (`experiments.analysis.axes`; depth: the model's block
    count, NULL for a model without one, and the base depth, NULL for a width-only sweep; batch
    and horizon: the rung and the base, NULL outside those ladders), read from the stored
    RunConfig payload: no column to migrate, so stores written before a ladder existed read the
    same. Built per query, so an axis registered later is read too."""
    return "".join(f",\n           CAST(json_extract(payload, '{path}') AS INTEGER) AS {column}"
                   for column, path in payload_columns())


# `steps`: what the run trains (a batch ladder's rungs train fewer steps at the same examples).
# `scaling`: the run's batch and horizon rules as JSON (NULL: both `none`, left out of payloads).
_RUNS_SQL = """
    SELECT run_id, sweep_id, run_key, width{ladders}, parametrization, lr,
           CAST(json_extract(payload, '$.steps') AS INTEGER) AS steps,
           log2(lr) AS log2_lr, seed,
           {knobs},
           state, final_train_loss, final_val_loss, steps_done, steps_total, error, device,
           json_extract_string(payload, '$.device') AS planned_device,
           json_extract_string(payload, '$.optimizer.name') AS optimizer,
           CAST(json_extract(payload, '$.scaling') AS VARCHAR) AS scaling, wall_s, samples_per_s, attempts, started_at, finished_at, peak_mem_bytes
    FROM runs WHERE sweep_id = ? ORDER BY run_id"""
# Every (run, name) series thinned to about `?` points: every k-th row, the last one kept.
_THIN_SQL = """
    SELECT run_id, step, name, value FROM (
        SELECT *, row_number() OVER w AS i, count(*) OVER p AS n
        FROM ({base})
        WINDOW w AS (PARTITION BY run_id, name ORDER BY step),
               p AS (PARTITION BY run_id, name))
    WHERE (i - 1) % greatest(1, CAST(ceil(n / ?) AS BIGINT)) = 0 OR i = n
    ORDER BY run_id, name, step"""


def _insert_chunks(con: duckdb.DuckDBPyConnection, files: list[str]) -> int:
    """Insert the rows of chunk `files` and record them as ingested; returns rows added.

    Runs inside the caller's transaction, so the rows and the record land together.
    """
    # Row counts from the Parquet footers: no second decode of the data pages.
    counts = con.execute(
        "SELECT file_name, num_rows FROM parquet_file_metadata(?)", [files]
    ).fetchall()
    con.execute(
        "INSERT INTO metrics SELECT run_id, attempt, step, name, value FROM read_parquet(?)",
        [files],
    )
    seen = {f: int(n) for f, n in counts}
    con.execute(
        """INSERT INTO ingested_chunks
           SELECT * FROM (SELECT unnest(?::VARCHAR[]) AS path, unnest(?::BIGINT[]) AS rows)""",
        [files, [seen.get(f, 0) for f in files]],
    )
    # A chunk repaired and moved back from quarantine: ingested now, so no longer quarantined.
    con.execute("DELETE FROM quarantined_chunks WHERE path IN (SELECT unnest(?::VARCHAR[]))",
                [files])
    return sum(seen.values())


def _insert_batch(con: duckdb.DuckDBPyConnection, files: list[str]) -> int:
    """`_insert_chunks` as one transaction, with DuckDB free to insert in any order."""
    # Rows may land in any order (every metrics query sorts): lets DuckDB decode and insert
    # the chunks in parallel (~1.5x faster, bench/bench_ingest.py).
    con.execute("SET preserve_insertion_order = false")
    try:
        with transaction(con):
            return _insert_chunks(con, files)
    finally:
        con.execute("RESET preserve_insertion_order")


class MetricsTable(StoreFiles):
    """The `metrics` table (fed from chunks) and the run/metric frames read from the store."""

    def _chunk_files(self, directories: list[Path] | None = None) -> list[str]:
        if directories is None:
            return sorted(str(p) for p in (self.root / "chunks").glob("*/*/part-*.parquet"))
        return sorted(str(p) for d in directories for p in Path(d).glob("part-*.parquet"))

    def ingest(self, directories: list[Path] | None = None) -> int:
        """Batch not-yet-ingested chunks into the metrics table; returns rows added.

        When the batch fails, its unreadable chunks are quarantined (moved to
        `<store>.d/quarantine/`, recorded, shown on their runs) and the rest is ingested. A
        store opened read-only ingests nothing (returns 0).

        Args:
            directories: only these run folders (`run_dir`, e.g. the runs in flight), so the
                cost follows the live runs, not the store's history; None scans every run.

        Raises:
            duckdb.Error: the batch failed although every chunk reads alone (a store fault).
        """
        if self.read_only:
            return 0
        files = self._chunk_files(directories)
        if not files:
            return 0
        with self._connect() as con:
            done = {
                r[0]
                for r in con.execute(
                    "SELECT path FROM ingested_chunks WHERE path IN (SELECT unnest(?::VARCHAR[]))",
                    [files],
                ).fetchall()
            } | skipped_paths(con, files)
            new = [f for f in files if f not in done]
            if not new:
                return 0
            try:
                return _insert_batch(con, new)
            except duckdb.Error as exc:
                failure = exc
            bad = unreadable(con, new)
            # Neither quarantined nor gone meanwhile (another runner quarantined it).
            good = [f for f in new if f not in bad and Path(f).exists()]
            if len(good) == len(new):
                raise failure  # every chunk reads alone: not a chunk's fault
            if bad:
                quarantine(con, self.root, bad)
            return _insert_batch(con, good) if good else 0

    def quarantined(self, sweep_id: int | None = None) -> list[QuarantinedChunk]:
        """Metric chunks moved aside because they could not be read (one sweep's, or all)."""
        if self._version < QUARANTINE_VERSION:
            return []  # a store opened read-only before its migration: none were recorded
        with self._connect() as con:
            return list_quarantined(con, sweep_id)

    def rebuild_metrics(self) -> int:
        """Re-create the metrics table from every chunk (disaster recovery); returns its rows.

        A chunk that cannot be read is quarantined first (as `ingest` does: moved aside,
        recorded, shown on its run), so one bad file does not block the recovery of the
        others; then one transaction replaces the table with the readable chunks' rows (if it
        fails, the table keeps its old rows).
        """
        files = self._chunk_files()
        with self._connect() as con:
            bad = unreadable(con, files) if files else {}
            if bad:
                quarantine(con, self.root, bad)
            good = [f for f in files if f not in bad]
            with transaction(con):
                con.execute("DELETE FROM metrics")
                con.execute("DELETE FROM ingested_chunks")
                return _insert_chunks(con, good) if good else 0

    def metric_count(self) -> int:
        """Rows in the metrics table."""
        with self._connect() as con:
            return int(con.execute("SELECT count(*) FROM metrics").fetchone()[0])  # type: ignore[index]

    def runs_frame(self, sweep_id: int) -> pd.DataFrame:
        """One row per run of the sweep (the analysis and dashboard input).

        Columns: the run's coordinates (width, depth, base_depth, batch_size, steps,
        base_batch_size, horizon, base_horizon, parametrization, lr, log2_lr, seed; depth is
        NULL for a model without one, base_depth for a width-only sweep, base_batch_size
        without a batch ladder, horizon and base_horizon without a horizon ladder), one
        column per global knob (`experiments.spec.run.GLOBAL_KNOBS`), its state, losses and
        timings, `optimizer` and `scaling` (the rules' JSON, None for `none`), and `note`: what went wrong beside the run's own outcome (its unreadable metric
        chunks, quarantined), or None.
        """
        with self._connect() as con:
            sql = _RUNS_SQL.format(ladders=_ladder_columns(), knobs=_KNOB_COLUMNS)
            frame = con.execute(sql, [sweep_id]).df()
        notes: dict[int, list[str]] = {}
        for q in self.quarantined(sweep_id):
            if q.run_id is not None:
                notes.setdefault(q.run_id, []).append(q.note())
        frame["note"] = [("; ".join(notes[r]) if r in notes else None) for r in frame["run_id"]]
        return frame

    def latest_losses(self, sweep_id: int, name: str = "train_loss") -> pd.DataFrame:
        """The latest logged `name` of each running run's live attempt (run_id, step, loss).

        Ingests the running runs' folders first, so what a worker flushed is seen now.
        """
        with self._connect() as con:
            running = [int(r[0]) for r in con.execute(
                "SELECT run_id FROM runs WHERE sweep_id = ? AND state = 'running'", [sweep_id]
            ).fetchall()]
        if not running:
            return pd.DataFrame(columns=["run_id", "step", "loss"])
        self.ingest([d for d in (self.run_dir(sweep_id, r) for r in running) if d.exists()])
        marks = ", ".join("?" for _ in running)
        with self._connect() as con:
            return con.execute(
                f"""SELECT m.run_id, arg_max(m.step, m.step) AS step,
                          arg_max(m.value, m.step) AS loss
                   FROM metrics m JOIN runs r ON r.run_id = m.run_id AND m.attempt = r.attempts
                   WHERE m.run_id IN ({marks}) AND m.name = ? GROUP BY m.run_id""",
                [*running, name],
            ).df()

    def metrics_frame(
        self,
        sweep_id: int,
        run_ids: list[int] | None = None,
        names: list[str] | None = None,
        max_points: int | None = None,
    ) -> pd.DataFrame:
        """Long-format metrics (run_id, step, name, value) of each run's latest attempt.

        With `max_points`, every (run, name) series is thinned in SQL to about that many
        points (every k-th row, last row kept), so charts stay fast on millions of rows.
        """
        # Only this sweep's run folders: the cost follows the sweep, not the store's history.
        self.ingest(sorted((self.root / "chunks" / str(int(sweep_id))).glob("*")))
        conds = ["r.sweep_id = ?", "m.attempt = r.attempts"]
        params: list[Any] = [sweep_id]
        if run_ids is not None:
            if not run_ids:
                return pd.DataFrame(columns=["run_id", "step", "name", "value"])
            conds.append(f"m.run_id IN ({', '.join('?' for _ in run_ids)})")
            params.extend(int(r) for r in run_ids)
        if names is not None:
            conds.append(f"m.name IN ({', '.join('?' for _ in names)})")
            params.extend(names)
        base = f"""SELECT m.run_id, m.step, m.name, m.value FROM metrics m
                   JOIN runs r ON r.run_id = m.run_id WHERE {' AND '.join(conds)}"""
        if max_points:
            query = _THIN_SQL.format(base=base)
            params.append(float(max_points))
        else:
            query = base + " ORDER BY m.run_id, m.name, m.step"
        with self._connect() as con:
            return con.execute(query, params).df()
