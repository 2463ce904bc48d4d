"""The experiment store: one DuckDB file plus a folder of raw metric chunks beside it.

Layout for `data/mutransfer.duckdb`:
    data/mutransfer.duckdb                         sweeps, runs (the job queue), metrics, ...
    data/mutransfer.duckdb.d/chunks/S/R/part-A-N.parquet   raw metrics of run R, attempt A
    data/mutransfer.duckdb.d/chunks/S/R/result-A.json      result journal of each attempt
    data/mutransfer.duckdb.d/chunks/S/R/CANCEL             cancel marker the worker polls

Every method opens the database for one short transaction (see `db.connect`), so the
dashboard, a CLI sweep and the background runner share the file without lock errors. Workers
never open it: they write chunks, and `ingest()` batches new chunks into the metrics table in
one Arrow-speed `INSERT ... SELECT FROM read_parquet` (idempotent: ingested paths are
recorded in the same transaction). `rebuild_metrics()` re-creates the metrics table from the
chunks.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.store.chunks import run_dir
from experiments.store.db import connect, held
from experiments.store.schema import ensure_schema

TERMINAL_STATES = ("done", "diverged", "failed", "cancelled")
RUN_STATES = ("queued", "running", "done", "diverged", "failed", "cancelled")
DEFAULT_JOB_FN = "experiments.train:run_job"
MAX_ATTEMPTS = 3
# A runner whose heartbeat is older than this is presumed dead (it beats every ~2 s).
RUNNER_STALE_S = 20.0


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class RunRow:
    """One run to queue.

    Attributes:
        run_key: unique within the sweep, e.g. "mup/w256/lr-7.0/s0".
        width, parametrization, lr, seed: the run's coordinates (indexed columns).
        hparams: its global µP knobs (init_std, output_mult, ...).
        payload: the job's input (a RunConfig dump for training runs).
        steps_total: steps for progress (default: payload["steps"]).
        job_fn: "module:function" the worker calls with (payload, reporter).
    """

    run_key: str
    width: int
    parametrization: str
    lr: float
    seed: int
    hparams: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    steps_total: int | None = None
    job_fn: str = DEFAULT_JOB_FN


@dataclass
class SweepSummary:
    """A sweep and its progress."""

    id: int
    name: str
    state: str
    counts: dict[str, int]
    created: datetime
    steps_done: int
    steps_total: int
    eta_s: float | None
    spec_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "counts": self.counts,
            "created": self.created.isoformat(),
            "steps_done": self.steps_done,
            "steps_total": self.steps_total,
            "eta_s": self.eta_s,
        }


@dataclass
class Claim:
    """A run handed to a worker."""

    run_id: int
    sweep_id: int
    attempt: int
    job_fn: str
    payload: dict[str, Any]
    directory: Path


def sweep_state(counts: dict[str, int]) -> str:
    """Sweep state from its run counts: running > queued > failed > cancelled > done."""
    if counts.get("running"):
        return "running"
    if counts.get("queued"):
        return "queued"
    if counts.get("failed"):
        return "failed"
    if counts.get("cancelled"):
        return "cancelled"
    return "done"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """The DuckDB store (see module docstring for the layout and locking design)."""

    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(db_path).expanduser().resolve()
        self.root = self.path.with_name(self.path.name + ".d")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        (self.root / "chunks").mkdir(parents=True, exist_ok=True)
        with connect(self.path) as con:
            self._version = ensure_schema(con)

    # ---- schema -------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The store's schema version."""
        with connect(self.path) as con:
            row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    # ---- sweeps -------------------------------------------------------------------------
    def create_sweep(self, name: str, spec: dict[str, Any], runs: list[RunRow],
                     spec_hash: str = "") -> int:
        """Insert a sweep and its runs (queued) in one transaction; returns the sweep id.

        `spec_hash` is `experiments.spec.spec_hash` of the spec ("" for engine-level sweeps
        without one); the store keeps it as given.
        """
        keys = [r.run_key for r in runs]
        if len(set(keys)) != len(keys):
            raise ValueError("run keys must be unique within a sweep")
        now = _now()
        with connect(self.path) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                sid = int(con.execute("SELECT nextval('sweep_ids')").fetchone()[0])  # type: ignore[index]
                con.execute(
                    "INSERT INTO sweeps VALUES (?, ?, ?, ?, ?)",
                    [sid, name, json.dumps(spec), spec_hash, now],
                )
                first = int(
                    con.execute(
                        "SELECT nextval('run_ids') FROM range(?)", [max(1, len(runs))]
                    ).fetchall()[0][0]
                ) if runs else 0
                frame = pd.DataFrame(
                    {
                        "run_id": [first + i for i in range(len(runs))],
                        "sweep_id": [sid] * len(runs),
                        "run_key": keys,
                        "width": [int(r.width) for r in runs],
                        "parametrization": [r.parametrization for r in runs],
                        "lr": [float(r.lr) for r in runs],
                        "seed": [int(r.seed) for r in runs],
                        "hparams": [json.dumps(r.hparams) for r in runs],
                        "payload": [json.dumps(r.payload) for r in runs],
                        "job_fn": [r.job_fn for r in runs],
                        "steps_total": [
                            int(r.steps_total if r.steps_total is not None else r.payload.get("steps", 0))
                            for r in runs
                        ],
                    }
                )
                if runs:
                    con.register("new_runs", frame)
                    con.execute(
                        """INSERT INTO runs (run_id, sweep_id, run_key, width, parametrization, lr,
                               seed, hparams, payload, job_fn, state, attempts, steps_done,
                               steps_total, queued_at)
                           SELECT run_id, sweep_id, run_key, width, parametrization, lr, seed,
                               hparams, payload, job_fn, 'queued', 0, 0, steps_total, ?
                           FROM new_runs""",
                        [now],
                    )
                    con.unregister("new_runs")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return sid

    def get_sweep(self, sweep_id: int) -> dict[str, Any] | None:
        """The sweep's id, name, spec (dict), spec_hash and created time, or None."""
        with connect(self.path) as con:
            row = con.execute(
                "SELECT id, name, spec, spec_hash, created FROM sweeps WHERE id = ?", [sweep_id]
            ).fetchone()
        if row is None:
            return None
        return {
            "id": int(row[0]),
            "name": row[1],
            "spec": json.loads(row[2]),
            "spec_hash": row[3],
            "created": row[4],
        }

    def list_sweeps(self, sweep_id: int | None = None) -> list[SweepSummary]:
        """Every sweep (newest first) with run counts, progress and ETA."""
        where = "WHERE s.id = ?" if sweep_id is not None else ""
        params = [sweep_id] if sweep_id is not None else []
        with connect(self.path) as con:
            rows = con.execute(
                f"""SELECT s.id, s.name, s.created, s.spec_hash, r.state, count(r.run_id),
                           -- A finished run is complete work however early it stopped (a
                           -- diverged run ends at the blow-up), so progress reaches 100%.
                           coalesce(sum(CASE WHEN r.state IN ('done', 'diverged', 'failed',
                                                             'cancelled')
                                             THEN r.steps_total ELSE r.steps_done END), 0),
                           coalesce(sum(r.steps_total), 0),
                           min(r.started_at)
                    FROM sweeps s LEFT JOIN runs r ON r.sweep_id = s.id {where}
                    GROUP BY s.id, s.name, s.created, s.spec_hash, r.state
                    ORDER BY s.id DESC""",
                params,
            ).fetchall()
        by_id: dict[int, dict[str, Any]] = {}
        for sid, name, created, shash, state, n, done, total, started in rows:
            d = by_id.setdefault(
                int(sid),
                {"name": name, "created": created, "hash": shash, "counts": {}, "done": 0,
                 "total": 0, "started": None},
            )
            if state is not None:
                d["counts"][state] = int(n)
            d["done"] += int(done)
            d["total"] += int(total)
            if started is not None and (d["started"] is None or started < d["started"]):
                d["started"] = started
        out = []
        for sid, d in by_id.items():
            state = sweep_state(d["counts"])
            eta = None
            if state in ("running", "queued") and d["started"] is not None and d["done"] > 0:
                elapsed = max(1e-6, (_now() - d["started"]).total_seconds())
                eta = (d["total"] - d["done"]) / (d["done"] / elapsed)
            out.append(
                SweepSummary(sid, d["name"], state, d["counts"], d["created"], d["done"],
                             d["total"], eta, d["hash"])
            )
        return out

    # ---- runs ---------------------------------------------------------------------------
    def runs_frame(self, sweep_id: int) -> pd.DataFrame:
        """One row per run of the sweep (the analysis and dashboard input)."""
        with connect(self.path) as con:
            frame = con.execute(
                """SELECT run_id, sweep_id, run_key, width, parametrization, lr, log2(lr) AS log2_lr,
                          seed,
                          CAST(json_extract(hparams, '$.init_std') AS DOUBLE) AS init_std,
                          CAST(json_extract(hparams, '$.output_mult') AS DOUBLE) AS output_mult,
                          state, final_train_loss, final_val_loss, steps_done, steps_total,
                          error, device, wall_s, samples_per_s, attempts, started_at,
                          finished_at, peak_mem_bytes
                   FROM runs WHERE sweep_id = ? ORDER BY run_id""",
                [sweep_id],
            ).df()
        return frame

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
            query = f"""SELECT run_id, step, name, value FROM (
                            SELECT *, row_number() OVER w AS i, count(*) OVER p AS n
                            FROM ({base})
                            WINDOW w AS (PARTITION BY run_id, name ORDER BY step),
                                   p AS (PARTITION BY run_id, name))
                        WHERE (i - 1) % greatest(1, CAST(ceil(n / ?) AS BIGINT)) = 0 OR i = n
                        ORDER BY run_id, name, step"""
            params.append(float(max_points))
        else:
            query = base + " ORDER BY m.run_id, m.name, m.step"
        with connect(self.path) as con:
            return con.execute(query, params).df()

    def run_payload(self, run_id: int) -> dict[str, Any]:
        """The job payload of one run."""
        with connect(self.path) as con:
            row = con.execute("SELECT payload FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id}")
        return dict(json.loads(row[0]))

    # ---- queue: claim, progress, results --------------------------------------------------
    def claim(self, n: int, owner: str, sweep_id: int | None = None) -> list[Claim]:
        """Atomically move up to `n` queued runs to running for `owner` (attempts + 1)."""
        if n <= 0:
            return []
        where = "state = 'queued'" + (" AND sweep_id = ?" if sweep_id is not None else "")
        params: list[Any] = [sweep_id] if sweep_id is not None else []
        with connect(self.path) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                rows = con.execute(
                    f"""SELECT run_id, sweep_id, attempts, job_fn, payload FROM runs
                        WHERE {where} ORDER BY sweep_id, run_id LIMIT ?""",
                    [*params, n],
                ).fetchall()
                now = _now()
                for run_id, _, attempts, _, _ in rows:
                    con.execute(
                        """UPDATE runs SET state = 'running', attempts = ?, owner = ?,
                               started_at = ?, steps_done = 0, error = NULL
                           WHERE run_id = ?""",
                        [attempts + 1, owner, now, run_id],
                    )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return [
            Claim(int(r), int(s), int(a) + 1, fn, json.loads(p), run_dir(self.root, int(s), int(r)))
            for r, s, a, fn, p in rows
        ]

    def update_progress(self, steps: dict[int, int]) -> None:
        """Record steps done for running runs (batched by the runner)."""
        if not steps:
            return
        frame = pd.DataFrame({"run_id": list(steps), "steps": list(steps.values())})
        with connect(self.path) as con:
            con.register("prog", frame)
            con.execute(
                """UPDATE runs SET steps_done = prog.steps FROM prog
                   WHERE runs.run_id = prog.run_id AND runs.state = 'running'"""
            )
            con.unregister("prog")

    def finish(self, run_id: int, attempt: int, result: dict[str, Any]) -> bool:
        """Store a finished attempt's result; ignored (False) unless it is the live attempt.

        The guard on (attempt, state='running') makes a stale result from a re-queued or
        cancelled attempt harmless: each run is finished exactly once.
        """
        state = str(result.get("state", "done"))
        if state not in ("done", "diverged", "cancelled", "failed"):
            state = "failed"
        with connect(self.path) as con:
            row = con.execute(
                """UPDATE runs SET state = ?, finished_at = ?, final_train_loss = ?,
                       final_val_loss = ?, wall_s = ?, samples_per_s = ?, device = ?,
                       peak_mem_bytes = ?, error = ?, result = ?,
                       steps_done = coalesce(?, steps_done)
                   WHERE run_id = ? AND attempts = ? AND state = 'running'
                   RETURNING run_id""",
                [
                    state,
                    _now(),
                    _finite(result.get("final_train_loss")),
                    _finite(result.get("final_val_loss")),
                    result.get("wall_s"),
                    result.get("samples_per_s"),
                    result.get("device"),
                    result.get("peak_mem_bytes"),
                    result.get("error"),
                    json.dumps(result, default=str),
                    result.get("steps_done"),
                    run_id,
                    attempt,
                ],
            ).fetchall()
        return bool(row)

    def fail(self, run_id: int, attempt: int, error: str, requeue: bool = False) -> None:
        """Mark the live attempt failed (or back to queued when `requeue` and attempts remain)."""
        with connect(self.path) as con:
            con.execute(
                """UPDATE runs SET state = CASE WHEN ? AND attempts < ? THEN 'queued' ELSE 'failed' END,
                       error = ?, finished_at = ?, owner = NULL
                   WHERE run_id = ? AND attempts = ? AND state = 'running'""",
                [requeue, MAX_ATTEMPTS, error[-4000:], _now(), run_id, attempt],
            )

    # ---- cancel / retry / resume ----------------------------------------------------------
    def cancel_sweep(self, sweep_id: int) -> int:
        """Cancel every queued or running run of the sweep; returns how many."""
        return self._cancel("sweep_id = ?", [sweep_id])

    def cancel_run(self, run_id: int) -> int:
        """Cancel one run if it is queued or running."""
        return self._cancel("run_id = ?", [run_id])

    def _cancel(self, cond: str, params: list[Any]) -> int:
        with connect(self.path) as con:
            rows = con.execute(
                f"""UPDATE runs SET state = 'cancelled', finished_at = ?
                    WHERE {cond} AND state IN ('queued', 'running')
                    RETURNING run_id, sweep_id""",
                [_now(), *params],
            ).fetchall()
        for run_id, sweep_id in rows:
            d = run_dir(self.root, int(sweep_id), int(run_id))
            d.mkdir(parents=True, exist_ok=True)
            (d / "CANCEL").touch()
        return len(rows)

    def is_cancelled(self, sweep_id: int, run_id: int) -> bool:
        """Whether the run's cancel marker exists (what workers poll; no DB access)."""
        return (run_dir(self.root, sweep_id, run_id) / "CANCEL").exists()

    def retry_failed(self, sweep_id: int) -> int:
        """Re-queue the sweep's failed (and cancelled) runs; returns how many."""
        with connect(self.path) as con:
            rows = con.execute(
                """UPDATE runs SET state = 'queued', error = NULL, owner = NULL
                   WHERE sweep_id = ? AND state IN ('failed', 'cancelled')
                   RETURNING run_id""",
                [sweep_id],
            ).fetchall()
        for (run_id,) in rows:
            marker = run_dir(self.root, sweep_id, int(run_id)) / "CANCEL"
            marker.unlink(missing_ok=True)
        return len(rows)

    def resume(self, sweep_id: int | None = None) -> int:
        """Re-queue runs left `running` by dead runners; returns how many."""
        return self.recover_orphans(sweep_id)

    # ---- runners ------------------------------------------------------------------------
    def register_runner(self, token: str) -> None:
        """Record a live runner (pid, host, heartbeat)."""
        now = _now()
        with connect(self.path) as con:
            con.execute(
                "INSERT OR REPLACE INTO runners VALUES (?, ?, ?, ?, ?)",
                [token, os.getpid(), socket.gethostname(), now, now],
            )

    def heartbeat(self, token: str) -> None:
        """Refresh a runner's heartbeat."""
        with connect(self.path) as con:
            con.execute("UPDATE runners SET heartbeat = ? WHERE token = ?", [_now(), token])

    def unregister_runner(self, token: str) -> None:
        """Remove a runner that exits cleanly."""
        with connect(self.path) as con:
            con.execute("DELETE FROM runners WHERE token = ?", [token])

    def live_runners(self) -> list[dict[str, Any]]:
        """Runners with a fresh heartbeat whose pid is alive (same host)."""
        with connect(self.path) as con:
            rows = con.execute("SELECT token, pid, host, heartbeat FROM runners").fetchall()
        out = []
        for token, pid, host, beat in rows:
            fresh = (_now() - beat).total_seconds() < RUNNER_STALE_S
            alive = pid_alive(int(pid)) if host == socket.gethostname() else fresh
            if fresh and alive:
                out.append({"token": token, "pid": int(pid), "host": host})
        return out

    def recover_orphans(self, sweep_id: int | None = None) -> int:
        """Re-queue `running` runs whose runner is gone (killed runner or server).

        A run goes back to `queued` while it has attempts left (MAX_ATTEMPTS), else `failed`;
        its attempt counter makes any late result of the old attempt harmless.
        """
        live = {r["token"] for r in self.live_runners()}
        cond = "state = 'running'" + (" AND sweep_id = ?" if sweep_id is not None else "")
        params: list[Any] = [sweep_id] if sweep_id is not None else []
        with connect(self.path) as con:
            rows = con.execute(
                f"SELECT run_id, owner FROM runs WHERE {cond}", params
            ).fetchall()
            orphans = [int(r) for r, owner in rows if owner not in live]
            if orphans:
                marks = ", ".join("?" for _ in orphans)
                con.execute(
                    f"""UPDATE runs SET
                           state = CASE WHEN attempts < ? THEN 'queued' ELSE 'failed' END,
                           error = 'runner died while the run was in progress', owner = NULL
                        WHERE run_id IN ({marks})""",
                    [MAX_ATTEMPTS, *orphans],
                )
            con.execute(
                "DELETE FROM runners WHERE token NOT IN (SELECT unnest(?::VARCHAR[]))",
                [sorted(live)],
            )
        return len(orphans)

    def pending(self, sweep_id: int | None = None) -> dict[str, int]:
        """Counts of queued and running runs (all sweeps, or one)."""
        cond = "WHERE sweep_id = ?" if sweep_id is not None else ""
        params = [sweep_id] if sweep_id is not None else []
        with connect(self.path) as con:
            rows = con.execute(
                f"""SELECT state, count(*) FROM runs {cond} GROUP BY state""", params
            ).fetchall()
        counts = {s: int(n) for s, n in rows}
        return {"queued": counts.get("queued", 0), "running": counts.get("running", 0)}

    # ---- metrics ingest -----------------------------------------------------------------
    def _chunk_files(self, directories: list[Path] | None = None) -> list[str]:
        if directories is None:
            return sorted(str(p) for p in (self.root / "chunks").glob("*/*/part-*.parquet"))
        return sorted(str(p) for d in directories for p in Path(d).glob("part-*.parquet"))

    def batch(self) -> AbstractContextManager[Any]:
        """A block in which this thread's store operations share one connection (`db.held`).

        Cheaper for a burst of small operations; other processes wait until it ends.
        """
        return held(self.path)

    def ingest(self, directories: list[Path] | None = None) -> int:
        """Batch not-yet-ingested chunks into the metrics table; returns rows added.

        Args:
            directories: only these run folders (`run_dir`, e.g. the runs in flight), so the
                cost follows the live runs, not the store's history; None scans every run.
        """
        files = self._chunk_files(directories)
        if not files:
            return 0
        with connect(self.path) as con:
            done = {
                r[0]
                for r in con.execute(
                    "SELECT path FROM ingested_chunks WHERE path IN (SELECT unnest(?::VARCHAR[]))",
                    [files],
                ).fetchall()
            }
            new = [f for f in files if f not in done]
            if not new:
                return 0
            # Rows may land in any order (every metrics query sorts): lets DuckDB decode and
            # insert the chunks in parallel (~1.5x faster, bench/bench_ingest.py).
            con.execute("SET preserve_insertion_order = false")
            con.execute("BEGIN TRANSACTION")
            try:
                # Row counts from the Parquet footers: no second decode of the data pages.
                counts = con.execute(
                    "SELECT file_name, num_rows FROM parquet_file_metadata(?)", [new]
                ).fetchall()
                con.execute(
                    """INSERT INTO metrics SELECT run_id, attempt, step, name, value
                       FROM read_parquet(?)""",
                    [new],
                )
                seen = {f: int(n) for f, n in counts}
                con.execute(
                    "INSERT INTO ingested_chunks SELECT * FROM (SELECT unnest(?::VARCHAR[]) AS path, unnest(?::BIGINT[]) AS rows)",
                    [new, [seen.get(f, 0) for f in new]],
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            finally:
                con.execute("RESET preserve_insertion_order")
        return sum(seen.values())

    def rebuild_metrics(self) -> int:
        """Drop the metrics table's rows and re-ingest every chunk (disaster recovery)."""
        with connect(self.path) as con:
            con.execute("BEGIN TRANSACTION")
            con.execute("DELETE FROM metrics")
            con.execute("DELETE FROM ingested_chunks")
            con.execute("COMMIT")
        return self.ingest()

    def metric_count(self) -> int:
        """Rows in the metrics table."""
        with connect(self.path) as con:
            return int(con.execute("SELECT count(*) FROM metrics").fetchone()[0])  # type: ignore[index]

    # ---- coord checks and exports -------------------------------------------------------
    def record_coord_check(self, result: dict[str, Any]) -> int:
        """Store a coordinate-check result (the coord-check --json dict); returns its id."""
        args = result.get("args", {}) if isinstance(result.get("args"), dict) else {}
        with connect(self.path) as con:
            cid = int(con.execute("SELECT nextval('aux_ids')").fetchone()[0])  # type: ignore[index]
            con.execute(
                "INSERT INTO coord_checks VALUES (?, ?, ?, ?, ?, ?)",
                [cid, _now(), args.get("model"), result.get("param"), result.get("verdict"),
                 json.dumps(result, default=str)],
            )
        return cid

    def list_coord_checks(self) -> list[dict[str, Any]]:
        """Stored coordinate checks, newest first (without the full result)."""
        with connect(self.path) as con:
            rows = con.execute(
                "SELECT id, created, model, param, verdict FROM coord_checks ORDER BY id DESC"
            ).fetchall()
        return [dict(zip(("id", "created", "model", "param", "verdict"), r, strict=True)) for r in rows]

    def record_export(self, sweep_id: int, bundle: dict[str, Any], path: str | None) -> int:
        """Record an exported HP bundle; returns its id."""
        with connect(self.path) as con:
            eid = int(con.execute("SELECT nextval('aux_ids')").fetchone()[0])  # type: ignore[index]
            con.execute(
                "INSERT INTO exports VALUES (?, ?, ?, ?, ?)",
                [eid, sweep_id, _now(), path, json.dumps(bundle, default=str)],
            )
        return eid

    def list_exports(self, sweep_id: int | None = None) -> list[dict[str, Any]]:
        """Recorded exports (id, sweep_id, created, path), newest first."""
        cond = "WHERE sweep_id = ?" if sweep_id is not None else ""
        params = [sweep_id] if sweep_id is not None else []
        with connect(self.path) as con:
            rows = con.execute(
                f"SELECT id, sweep_id, created, path FROM exports {cond} ORDER BY id DESC", params
            ).fetchall()
        return [dict(zip(("id", "sweep_id", "created", "path"), r, strict=True)) for r in rows]

    def record_verification(self, sweep_id: int | None, result: dict[str, Any],
                            bundle_hash: str | None = None) -> int:
        """Store a verification report (the `verify --json` dict) beside its sweep; returns its id."""
        with connect(self.path) as con:
            vid = int(con.execute("SELECT nextval('aux_ids')").fetchone()[0])  # type: ignore[index]
            con.execute(
                "INSERT INTO verifications VALUES (?, ?, ?, ?, ?, ?, ?)",
                [vid, sweep_id, _now(), bundle_hash, result.get("target_width"),
                 result.get("within_one_step"), json.dumps(result, default=str)],
            )
        return vid

    def list_verifications(self, sweep_id: int | None = None) -> list[dict[str, Any]]:
        """Recorded verifications, newest first: id, sweep_id, created, bundle_hash,
        target_width, within_one_step and the full `result` dict."""
        cond = "WHERE sweep_id = ?" if sweep_id is not None else ""
        params = [sweep_id] if sweep_id is not None else []
        with connect(self.path) as con:
            rows = con.execute(
                "SELECT id, sweep_id, created, bundle_hash, target_width, within_one_step, result "
                f"FROM verifications {cond} ORDER BY id DESC", params,
            ).fetchall()
        keys = ("id", "sweep_id", "created", "bundle_hash", "target_width", "within_one_step",
                "result")
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        for row in out:
            row["result"] = json.loads(row["result"])
        return out


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def wait_for(predicate: Any, timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `predicate()` until true or timeout (tests and CLIs)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
