"""The run queue on a real DuckDB file: sweeps in, claims out, each run finished exactly once."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

import duckdb
import pytest

from experiments.store import (
    MAX_ATTEMPTS,
    TERMINAL_STATES,
    PendingCounts,
    RunnerInfo,
    RunRow,
    RunState,
    Store,
    SweepRecord,
    sweep_state,
)
from experiments.store.db import connect

Rows = Callable[..., list[RunRow]]


def states(store: Store, sweep_id: int) -> dict[str, str]:
    frame = store.runs_frame(sweep_id)
    return dict(zip(frame["run_key"], frame["state"], strict=True))


def test_terminal_states_are_every_state_but_queued_and_running() -> None:
    assert set(TERMINAL_STATES) == set(RunState) - {RunState.QUEUED, RunState.RUNNING}
    assert sweep_state({"done": 3, "failed": 1, "running": 1}) == RunState.RUNNING
    assert sweep_state({"done": 3, "cancelled": 1, "failed": 1}) == RunState.FAILED
    assert sweep_state({}) == "done"


def test_get_sweep_returns_a_typed_record_with_the_hash_given(store: Store, make_rows: Rows) -> None:
    spec = {"name": "demo", "widths": [64, 128]}
    sid = store.create_sweep("demo", spec, make_rows(4), spec_hash="f" * 64)
    sweep = store.get_sweep(sid)
    assert isinstance(sweep, SweepRecord)
    assert (sweep.id, sweep.name, sweep.spec, sweep.spec_hash) == (sid, "demo", spec, "f" * 64)
    assert isinstance(sweep.created, datetime)
    assert sweep.to_dict()["created"] == sweep.created.isoformat()
    with pytest.raises(dataclasses.FrozenInstanceError):
        sweep.name = "other"  # type: ignore[misc]
    assert store.get_sweep(sid + 1) is None
    assert store.get_sweep(store.create_sweep("engine", {}, [])).spec_hash == ""  # type: ignore[union-attr]
    summary = store.list_sweeps(sid)[0]
    assert (summary.state, summary.counts, summary.steps_total) == ("queued", {"queued": 4}, 40)
    assert type(summary.state) is str  # plain text leaves the store (YAML cannot dump an enum)


def test_run_row_needs_its_job_function() -> None:
    with pytest.raises(TypeError, match="job_fn"):
        RunRow("k", 64, "mup", 0.01, 0)  # type: ignore[call-arg]


def test_create_sweep_failing_half_way_writes_nothing(store: Store, make_rows: Rows) -> None:
    bad = make_rows(2)
    bad[1].lr = "not a number"  # type: ignore[assignment]  # fails after the sweep row is in
    with pytest.raises(ValueError):
        store.create_sweep("bad", {}, bad)
    assert store.list_sweeps() == []
    with pytest.raises(ValueError, match="unique"):
        store.create_sweep("dup", {}, make_rows(1) + make_rows(1))
    sid = store.create_sweep("good", {}, make_rows(2))  # the store still works
    assert store.list_sweeps(sid)[0].counts == {"queued": 2}


def test_claim_hands_out_each_queued_run_once_in_order(store: Store, make_rows: Rows) -> None:
    sid1 = store.create_sweep("one", {}, make_rows(3))
    sid2 = store.create_sweep("two", {}, make_rows(2))
    assert store.claim(0, "a") == []
    first = store.claim(2, "a", sid2)
    assert [c.sweep_id for c in first] == [sid2, sid2]
    rest = store.claim(10, "b")
    assert [c.sweep_id for c in rest] == [sid1] * 3
    assert store.claim(10, "c") == []
    assert all(c.attempt == 1 for c in first + rest)
    assert rest[0].payload == {"loss": 1.0} and rest[0].job_fn.endswith(":count_job")
    assert rest[0].directory == store.root / "chunks" / str(sid1) / str(rest[0].run_id)
    assert store.pending() == PendingCounts(queued=0, running=5)
    assert store.pending(sid1).to_dict() == {"queued": 0, "running": 3}


def test_finish_keeps_only_the_live_attempt(store: Store, make_rows: Rows) -> None:
    sid = store.create_sweep("finish", {}, make_rows(3))
    a, b, c = store.claim(3, "owner")
    assert not store.finish(a.run_id, a.attempt + 1, {"state": "done"})  # no such attempt
    assert store.finish(a.run_id, a.attempt, {"state": "done", "final_train_loss": math.nan,
                                              "final_val_loss": 0.5, "steps_done": 7})
    assert not store.finish(a.run_id, a.attempt, {"state": "failed"})  # finished once only
    assert store.finish(b.run_id, b.attempt, {"state": RunState.DIVERGED})
    assert store.finish(c.run_id, c.attempt, {"state": "exploded"})  # unknown -> failed
    frame = store.runs_frame(sid).set_index("run_key")
    assert frame["state"].to_dict() == {"r0": "done", "r1": "diverged", "r2": "failed"}
    assert math.isnan(frame.loc["r0", "final_train_loss"])  # NaN is stored as NULL
    assert (frame.loc["r0", "final_val_loss"], frame.loc["r0", "steps_done"]) == (0.5, 7)


def test_fail_requeues_while_attempts_remain(store: Store, make_rows: Rows) -> None:
    sid = store.create_sweep("retry", {}, make_rows(1))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        [claim] = store.claim(1, "owner")
        assert claim.attempt == attempt
        store.fail(claim.run_id, claim.attempt, "lost its node", requeue=True)
    assert states(store, sid) == {"r0": "failed"}  # the last attempt is not re-queued
    assert store.claim(1, "owner") == []


def test_cancel_marks_runs_and_retry_requeues_them(store: Store, make_rows: Rows) -> None:
    sid = store.create_sweep("cancel", {}, make_rows(3))
    running = store.claim(1, "owner")[0]
    done = store.claim(1, "owner")[0]
    store.finish(done.run_id, done.attempt, {"state": "done"})
    assert store.cancel_sweep(sid) == 2  # the queued and the running run, not the done one
    assert store.is_cancelled(sid, running.run_id) and not store.is_cancelled(sid, done.run_id)
    assert not store.finish(running.run_id, running.attempt, {"state": "done"})  # too late
    assert states(store, sid) == {"r0": "cancelled", "r1": "done", "r2": "cancelled"}
    assert store.cancel_run(done.run_id) == 0
    assert store.retry_failed(sid) == 2
    assert not store.is_cancelled(sid, running.run_id)  # the marker went with the cancel
    assert store.pending(sid) == PendingCounts(queued=2, running=0)


def test_orphans_of_dead_runners_are_requeued_and_live_ones_kept(
    store: Store, make_rows: Rows
) -> None:
    sid = store.create_sweep("orphans", {}, make_rows(2))
    store.register_runner("live")
    mine = store.claim(1, "live")[0]
    store.claim(1, "dead-runner")
    [runner] = store.live_runners()
    assert runner == RunnerInfo(token="live", pid=os.getpid(), host=runner.host)
    assert runner.to_dict()["pid"] == os.getpid()
    assert store.recover_orphans(sid) == 1
    assert states(store, sid) == {"r0": "running", "r1": "queued"}
    assert store.runs_frame(sid).set_index("run_key").loc["r1", "error"].startswith("runner died")
    assert store.finish(mine.run_id, mine.attempt, {"state": "done"})
    store.unregister_runner("live")
    assert store.live_runners() == []


def test_runs_state_only_takes_enum_values(store: Store, make_rows: Rows) -> None:
    sid = store.create_sweep("check", {}, make_rows(1))
    with connect(store.path) as con:
        for state in RunState:  # every state is allowed ...
            con.execute("UPDATE runs SET state = ?", [state.value])
        with pytest.raises(duckdb.ConstraintException, match="CHECK"):  # ... and nothing else
            con.execute("UPDATE runs SET state = 'paused'")
    assert states(store, sid) == {"r0": "cancelled"}


def test_claim_rolls_back_when_it_fails_half_way(
    store: Store, make_rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = store.create_sweep("claim", {}, make_rows(2))
    calls: list[Any] = []
    real = duckdb.DuckDBPyConnection.execute

    def second_update_fails(con: duckdb.DuckDBPyConnection, sql: str, *args: Any) -> Any:
        if sql.lstrip().startswith("UPDATE runs SET state"):
            calls.append(sql)
            if len(calls) == 2:
                raise duckdb.IOException("disk full")
        return real(con, sql, *args)

    monkeypatch.setattr(duckdb.DuckDBPyConnection, "execute", second_update_fails)
    with pytest.raises(duckdb.IOException):
        store.claim(2, "owner")
    monkeypatch.undo()
    assert states(store, sid) == {"r0": "queued", "r1": "queued"}  # the first update undone
