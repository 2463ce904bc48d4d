"""The job queue: the `runs` table as queued work that runners claim, run and finish.

Runs are queued with their sweep (`SweepTable.create_sweep`). A run goes queued -> running
(`claim`, attempts + 1) -> a terminal state (`finish`, `fail`, `cancel_*`). Every write that
changes a running run is guarded by its live attempt, so a late result of an attempt that was
re-queued or cancelled meanwhile changes nothing: each run is finished exactly once. Users cancel (a CANCEL marker the worker polls) and retry; a runner
re-queues the runs of dead runners (`recover_orphans`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.states import (
    ACTIVE_STATES,
    RETRYABLE_STATES,
    TERMINAL_STATES,
    RunState,
    sql_states,
)
from experiments.store.db import transaction, utc_now
from experiments.store.runners import RunnerRegistry

MAX_ATTEMPTS = 3
_QUEUED, _RUNNING = RunState.QUEUED, RunState.RUNNING


@dataclass
class Claim:
    """A run handed to a worker (the executor may rewrite `payload`, e.g. its device)."""

    run_id: int
    sweep_id: int
    attempt: int
    job_fn: str
    payload: dict[str, Any]
    directory: Path


@dataclass(frozen=True)
class PendingCounts:
    """Runs still to do: `queued` (waiting for a runner) and `running` (claimed)."""

    queued: int
    running: int

    def to_dict(self) -> dict[str, int]:
        """The counts as a JSON-ready dict."""
        return asdict(self)


def _finite(x: Any) -> float | None:
    """`x` (a result value) as a float when it is a finite number, else None (NaN/inf losses
    are stored NULL)."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


class RunQueue(RunnerRegistry):
    """Queue, claim, finish, cancel and recover runs."""

    def run_payload(self, run_id: int) -> dict[str, Any]:
        """The job payload of one run.

        Raises:
            KeyError: no such run.
        """
        with self._connect() as con:
            row = con.execute("SELECT payload FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id}")
        return dict(json.loads(row[0]))

    def claim(self, n: int, owner: str, sweep_id: int | None = None) -> list[Claim]:
        """Atomically move up to `n` queued runs to running for `owner` (attempts + 1)."""
        if n <= 0:
            return []
        where = f"state = '{_QUEUED}'" + (" AND sweep_id = ?" if sweep_id is not None else "")
        params: list[Any] = [sweep_id] if sweep_id is not None else []
        with self._connect() as con, transaction(con):
            rows = con.execute(
                f"""SELECT run_id, sweep_id, attempts, job_fn, payload FROM runs
                    WHERE {where} ORDER BY sweep_id, run_id LIMIT ?""",
                [*params, n],
            ).fetchall()
            now = utc_now()
            for run_id, _, attempts, _, _ in rows:
                con.execute(
                    f"""UPDATE runs SET state = '{_RUNNING}', attempts = ?, owner = ?,
                           started_at = ?, steps_done = 0, error = NULL, device = NULL
                       WHERE run_id = ?""",
                    [attempts + 1, owner, now, run_id],
                )
        return [
            Claim(int(r), int(s), int(a) + 1, fn, json.loads(p), self.run_dir(s, r))
            for r, s, a, fn, p in rows
        ]

    def update_progress(self, steps: dict[int, int],
                        devices: dict[int, str] | None = None) -> None:
        """Record steps done, and where each started run trains (`devices`), for running runs
        (batched by the runner); the finished result's device replaces the latter."""
        devices = devices or {}
        ids = sorted(set(steps) | set(devices))
        if not ids:
            return
        frame = pd.DataFrame({"run_id": ids,
                              "steps": pd.array([steps.get(i) for i in ids], dtype="Int64"),
                              "device": pd.array([devices.get(i) for i in ids], dtype="string")})
        with self._connect() as con:
            con.register("prog", frame)
            con.execute(
                f"""UPDATE runs SET steps_done = coalesce(prog.steps, runs.steps_done),
                           device = coalesce(prog.device, runs.device) FROM prog
                    WHERE runs.run_id = prog.run_id AND runs.state = '{_RUNNING}'"""
            )
            con.unregister("prog")

    def finish(self, run_id: int, attempt: int, result: dict[str, Any]) -> bool:
        """Store a finished attempt's result; ignored (False) unless it is the live attempt.

        The result's `state` must be terminal (anything else is stored as failed). The guard
        on (attempt, state = running) makes a stale result from a re-queued or cancelled
        attempt harmless: each run is finished exactly once.
        """
        raw = str(result.get("state", RunState.DONE))
        state = RunState(raw) if raw in TERMINAL_STATES else RunState.FAILED
        with self._connect() as con:
            row = con.execute(
                f"""UPDATE runs SET state = ?, finished_at = ?, final_train_loss = ?,
                       final_val_loss = ?, wall_s = ?, samples_per_s = ?, device = ?,
                       peak_mem_bytes = ?, error = ?, result = ?,
                       steps_done = coalesce(?, steps_done)
                   WHERE run_id = ? AND attempts = ? AND state = '{_RUNNING}'
                   RETURNING run_id""",
                [
                    state.value,
                    utc_now(),
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
        with self._connect() as con:
            con.execute(
                f"""UPDATE runs SET
                       state = CASE WHEN ? AND attempts < ? THEN '{_QUEUED}'
                                    ELSE '{RunState.FAILED}' END,
                       error = ?, finished_at = ?, owner = NULL
                   WHERE run_id = ? AND attempts = ? AND state = '{_RUNNING}'""",
                [requeue, MAX_ATTEMPTS, error[-4000:], utc_now(), run_id, attempt],
            )

    def cancel_sweep(self, sweep_id: int) -> int:
        """Cancel every queued or running run of the sweep; returns how many."""
        return self._cancel("sweep_id = ?", [sweep_id])

    def cancel_run(self, run_id: int) -> int:
        """Cancel one run if it is queued or running."""
        return self._cancel("run_id = ?", [run_id])

    def _cancel(self, cond: str, params: list[Any]) -> int:
        with self._connect() as con:
            rows = con.execute(
                f"""UPDATE runs SET state = '{RunState.CANCELLED}', finished_at = ?
                    WHERE {cond} AND state IN ({sql_states(ACTIVE_STATES)})
                    RETURNING run_id, sweep_id""",
                [utc_now(), *params],
            ).fetchall()
        # The marker is what a worker polls: it never opens the database.
        for run_id, sweep_id in rows:
            d = self.run_dir(sweep_id, run_id)
            d.mkdir(parents=True, exist_ok=True)
            (d / "CANCEL").touch()
        return len(rows)

    def is_cancelled(self, sweep_id: int, run_id: int) -> bool:
        """Whether the run's cancel marker exists (what workers poll; no DB access)."""
        return (self.run_dir(sweep_id, run_id) / "CANCEL").exists()

    def retry_failed(self, sweep_id: int) -> int:
        """Re-queue the sweep's failed (and cancelled) runs; returns how many."""
        with self._connect() as con:
            rows = con.execute(
                f"""UPDATE runs SET state = '{_QUEUED}', error = NULL, owner = NULL
                    WHERE sweep_id = ? AND state IN ({sql_states(RETRYABLE_STATES)})
                    RETURNING run_id""",
                [sweep_id],
            ).fetchall()
        for (run_id,) in rows:
            (self.run_dir(sweep_id, run_id) / "CANCEL").unlink(missing_ok=True)
        return len(rows)

    def resume(self, sweep_id: int | None = None) -> int:
        """Re-queue runs left `running` by dead runners; returns how many."""
        return self.recover_orphans(sweep_id)

    def recover_orphans(self, sweep_id: int | None = None) -> int:
        """Re-queue `running` runs whose runner is gone (killed runner or server).

        A run goes back to `queued` while it has attempts left (MAX_ATTEMPTS), else `failed`;
        its attempt counter makes any late result of the old attempt harmless.
        """
        live = {r.token for r in self.live_runners()}
        cond = f"state = '{_RUNNING}'" + (" AND sweep_id = ?" if sweep_id is not None else "")
        params: list[Any] = [sweep_id] if sweep_id is not None else []
        with self._connect() as con, transaction(con):
            rows = con.execute(f"SELECT run_id, owner FROM runs WHERE {cond}", params).fetchall()
            orphans = [int(r) for r, owner in rows if owner not in live]
            if orphans:
                con.execute(
                    f"""UPDATE runs SET
                           state = CASE WHEN attempts < ? THEN '{_QUEUED}'
                                        ELSE '{RunState.FAILED}' END,
                           error = 'runner died while the run was in progress', owner = NULL
                        WHERE run_id IN (SELECT unnest(?::BIGINT[]))""",
                    [MAX_ATTEMPTS, orphans],
                )
            con.execute(
                "DELETE FROM runners WHERE token NOT IN (SELECT unnest(?::VARCHAR[]))",
                [sorted(live)],
            )
        return len(orphans)

    def pending(self, sweep_id: int | None = None) -> PendingCounts:
        """Counts of queued and running runs (all sweeps, or one)."""
        cond = "WHERE sweep_id = ?" if sweep_id is not None else ""
        params = [sweep_id] if sweep_id is not None else []
        with self._connect() as con:
            rows = con.execute(
                f"SELECT state, count(*) FROM runs {cond} GROUP BY state", params
            ).fetchall()
        counts = {str(s): int(n) for s, n in rows}
        return PendingCounts(counts.get(_QUEUED, 0), counts.get(_RUNNING, 0))
