"""The sweeps table: a sweep is created with its runs queued, then read back as its stored
spec (`SweepRecord`) or with its progress (`SweepSummary`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from experiments.states import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    RunState,
    sql_states,
    sweep_state,
)
from experiments.store.db import transaction, utc_now
from experiments.store.layout import StoreFiles


@dataclass
class RunRow:
    """One run to queue.

    Attributes:
        run_key: unique within the sweep, e.g. "mup/w256/lr-7.0/s0".
        width, parametrization, lr, seed: the run's coordinates (indexed columns).
        job_fn: "module:function" the worker calls with (payload, reporter), e.g.
            `experiments.sweep.submit.TRAIN_JOB`; the store never picks one.
        hparams: its global µP knobs (init_std, output_mult, ...).
        payload: the job's input (a RunConfig dump for training runs).
        steps_total: steps for progress (default: payload["steps"]).
    """

    run_key: str
    width: int
    parametrization: str
    lr: float
    seed: int
    hparams: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    steps_total: int | None = None
    # Last, so positional rows read as coordinates; required all the same.
    job_fn: str = field(kw_only=True)


@dataclass(frozen=True)
class SweepRecord:
    """A stored sweep.

    Attributes:
        id: the sweep id.
        name: its name (the spec's `name`).
        spec: the spec as stored (a dict; `experiments.spec.sweep` validates it).
        spec_hash: `experiments.spec.sweep.spec_hash` of the spec, "" for engine-level sweeps.
        created: when it was created (naive UTC).
    """

    id: int
    name: str
    spec: dict[str, Any]
    spec_hash: str
    created: datetime

    def to_dict(self) -> dict[str, Any]:
        """The sweep as a JSON-ready dict (created as ISO text)."""
        return {"id": self.id, "name": self.name, "spec": self.spec,
                "spec_hash": self.spec_hash, "created": self.created.isoformat()}


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
        """The summary as a JSON-ready dict (what `sweep status --json` prints)."""
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
class _Tally:
    """One sweep's counts while its (sweep, state) rows are folded together."""

    name: str
    created: datetime
    spec_hash: str
    counts: dict[str, int] = field(default_factory=dict)
    done: int = 0
    total: int = 0
    started: datetime | None = None

    def summary(self, sweep_id: int) -> SweepSummary:
        state = sweep_state(self.counts)
        eta = None
        if state in ACTIVE_STATES and self.started is not None and self.done > 0:
            elapsed = max(1e-6, (utc_now() - self.started).total_seconds())
            eta = (self.total - self.done) / (self.done / elapsed)
        # Plain text out of the store: YAML and other serialisers do not know the enum.
        return SweepSummary(sweep_id, self.name, state.value, self.counts, self.created,
                            self.done, self.total, eta, self.spec_hash)


def _new_runs(runs: list[RunRow], sweep_id: int, first_run_id: int) -> pd.DataFrame:
    """The rows to insert for `runs`, with consecutive run ids from `first_run_id`."""
    return pd.DataFrame(
        {
            "run_id": [first_run_id + i for i in range(len(runs))],
            "sweep_id": [sweep_id] * len(runs),
            "run_key": [r.run_key for r in runs],
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


# Queue the rows registered as `new_runs` (a `_new_runs` frame); the one parameter: queued_at.
_INSERT_NEW_RUNS = f"""
    INSERT INTO runs (run_id, sweep_id, run_key, width, parametrization, lr, seed, hparams,
        payload, job_fn, state, attempts, steps_done, steps_total, queued_at)
    SELECT run_id, sweep_id, run_key, width, parametrization, lr, seed, hparams, payload,
        job_fn, '{RunState.QUEUED}', 0, 0, steps_total, ?
    FROM new_runs"""

# One row per (sweep, run state). A finished run is complete work however early it stopped (a
# diverged run ends at the blow-up), so progress reaches 100%.
_SUMMARY_SQL = f"""
    SELECT s.id, s.name, s.created, s.spec_hash, r.state, count(r.run_id),
           coalesce(sum(CASE WHEN r.state IN ({sql_states(TERMINAL_STATES)})
                             THEN r.steps_total ELSE r.steps_done END), 0),
           coalesce(sum(r.steps_total), 0),
           min(r.started_at)
    FROM sweeps s LEFT JOIN runs r ON r.sweep_id = s.id {{where}}
    GROUP BY s.id, s.name, s.created, s.spec_hash, r.state
    ORDER BY s.id DESC"""


class SweepTable(StoreFiles):
    """The `sweeps` table: create a sweep with its runs, read it back, list progress."""

    def create_sweep(self, name: str, spec: dict[str, Any], runs: list[RunRow],
                     spec_hash: str = "") -> int:
        """Insert a sweep and its runs (queued) in one transaction; returns the sweep id.

        `spec_hash` is `experiments.spec.sweep.spec_hash` of the spec ("" for engine-level sweeps
        without one); the store keeps it as given.

        Raises:
            ValueError: two runs share a run key.
        """
        keys = [r.run_key for r in runs]
        if len(set(keys)) != len(keys):
            raise ValueError("run keys must be unique within a sweep")
        now = utc_now()
        with self._connect() as con, transaction(con):
            sid = int(con.execute("SELECT nextval('sweep_ids')").fetchone()[0])  # type: ignore[index]
            con.execute("INSERT INTO sweeps VALUES (?, ?, ?, ?, ?)",
                        [sid, name, json.dumps(spec), spec_hash, now])
            if not runs:
                return sid
            first = int(con.execute("SELECT nextval('run_ids') FROM range(?)",
                                    [len(runs)]).fetchall()[0][0])
            con.register("new_runs", _new_runs(runs, sid, first))
            con.execute(_INSERT_NEW_RUNS, [now])
            con.unregister("new_runs")
        return sid

    def add_runs(self, sweep_id: int, runs: list[RunRow]) -> int:
        """Queue more runs of an existing sweep (an adaptive search's next points).

        Idempotent: runs whose key the sweep already has are skipped (the run keys are unique
        per sweep), inside the same transaction, so two runners planning from the same stored
        results add each run once. Returns how many were added.
        """
        with self._connect() as con, transaction(con):
            have = {str(k) for (k,) in con.execute(
                "SELECT run_key FROM runs WHERE sweep_id = ?", [sweep_id]).fetchall()}
            new, seen = [], set(have)
            for r in runs:
                if r.run_key not in seen:
                    seen.add(r.run_key)
                    new.append(r)
            if not new:
                return 0
            first = int(con.execute("SELECT nextval('run_ids') FROM range(?)",
                                    [len(new)]).fetchall()[0][0])
            con.register("new_runs", _new_runs(new, sweep_id, first))
            con.execute(_INSERT_NEW_RUNS, [utc_now()])
            con.unregister("new_runs")
        return len(new)

    def sweep_job_fn(self, sweep_id: int) -> str | None:
        """The job the sweep's first run executes ("module:function"), or None without runs:
        what runs added later (an adaptive search's) execute too."""
        with self._connect() as con:
            row = con.execute("SELECT job_fn FROM runs WHERE sweep_id = ? ORDER BY run_id LIMIT 1",
                              [sweep_id]).fetchone()
        return None if row is None else str(row[0])

    def get_sweep(self, sweep_id: int) -> SweepRecord | None:
        """The stored sweep, or None when there is no such id."""
        with self._connect() as con:
            row = con.execute(
                "SELECT id, name, spec, spec_hash, created FROM sweeps WHERE id = ?", [sweep_id]
            ).fetchone()
        if row is None:
            return None
        return SweepRecord(int(row[0]), str(row[1]), dict(json.loads(row[2])), str(row[3]), row[4])

    def list_sweeps(self, sweep_id: int | None = None) -> list[SweepSummary]:
        """Every sweep (newest first), or only `sweep_id`, with run counts, progress and ETA."""
        where = "WHERE s.id = ?" if sweep_id is not None else ""
        params = [sweep_id] if sweep_id is not None else []
        with self._connect() as con:
            rows = con.execute(_SUMMARY_SQL.format(where=where), params).fetchall()
        tallies: dict[int, _Tally] = {}
        for sid, name, created, shash, state, n, done, total, started in rows:
            t = tallies.setdefault(int(sid), _Tally(name, created, shash))
            if state is not None:
                t.counts[state] = int(n)
            t.done += int(done)
            t.total += int(total)
            if started is not None and (t.started is None or started < t.started):
                t.started = started
        return [t.summary(sid) for sid, t in tallies.items()]
