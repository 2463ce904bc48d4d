"""The runner loop against a real store and a scripted in-process executor (no processes).

Each run's payload scripts what its attempts end in, so every event kind the executors send
("result", "error", "lost", "requeue") is driven through `run_pending` deterministically.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from experiments.runner import loop, run_pending
from experiments.store import MAX_ATTEMPTS, ChunkWriter, Claim, RunRow, Store, SweepSummary


class ScriptedExecutor:
    """Finishes every submitted claim at the next poll, as its payload's `outcomes` say."""

    def __init__(self, slots: int = 2) -> None:
        self.slots = slots
        self.running: list[Claim] = []
        self.submitted: list[tuple[str, int]] = []
        self.shut_down = False

    def free_slots(self) -> int:
        return self.slots - len(self.running)

    def submit(self, claim: Claim) -> None:
        self.running.append(claim)
        self.submitted.append((claim.payload["key"], claim.attempt))

    def busy(self) -> int:
        return len(self.running)

    def poll(self, timeout_s: float) -> list[tuple[Any, ...]]:
        events: list[tuple[Any, ...]] = []
        for c in self.running:
            outcome = c.payload["outcomes"][c.attempt - 1]
            writer = ChunkWriter(c.directory, c.run_id, c.attempt)
            writer.add(1, {"train_loss": float(c.attempt)})
            writer.flush()
            events.append(("progress", c.run_id, c.attempt, 1))
            if outcome == "result":
                events.append(("result", c.run_id, c.attempt,
                               {"state": "done", "steps_done": 1, "final_train_loss": 0.5}))
            else:
                events.append((outcome, c.run_id, c.attempt, f"{outcome} at attempt {c.attempt}"))
        self.running = []
        return events

    def shutdown(self) -> None:
        self.shut_down = True


def scripted_rows(**outcomes: list[str]) -> list[RunRow]:
    return [
        RunRow(key, 64, "mup", 0.01, 0, payload={"key": key, "outcomes": script}, steps_total=1,
               job_fn="scripted:job")
        for key, script in outcomes.items()
    ]


def test_every_event_kind_ends_in_the_right_state(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    store = Store(db)
    sid = store.create_sweep("scripted", {}, scripted_rows(
        ok=["result"],
        second_try=["requeue", "result"],
        raises=["error"],
        worker_died=["lost"],
        node_keeps_dying=["requeue"] * MAX_ATTEMPTS,
    ))
    ex = ScriptedExecutor()
    run_pending(db, sid, executor=ex)
    frame = store.runs_frame(sid).set_index("run_key")
    assert frame["state"].to_dict() == {"ok": "done", "second_try": "done", "raises": "failed",
                                        "worker_died": "failed", "node_keeps_dying": "failed"}
    assert frame["attempts"].to_dict() == {"ok": 1, "second_try": 2, "raises": 1,
                                           "worker_died": 1, "node_keeps_dying": MAX_ATTEMPTS}
    assert frame.loc["raises", "error"] == "error at attempt 1"
    assert sorted(ex.submitted).count(("node_keeps_dying", 3)) == 1
    assert ex.shut_down and store.live_runners() == []  # unregistered on the way out
    # Each attempt's chunks were ingested; the frame reads the latest attempt's rows only.
    metrics = store.metrics_frame(sid).merge(frame["run_id"].reset_index(), on="run_id")
    assert metrics.set_index("run_key")["value"].to_dict()["second_try"] == 2.0
    assert store.metric_count() == len(ex.submitted)


def test_progress_callback_gets_the_sweep_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "HEARTBEAT_S", 0.0)  # beat (and report) every turn
    db = tmp_path / "s.duckdb"
    sid = Store(db).create_sweep("cb", {}, scripted_rows(a=["result"], b=["result"], c=["result"]))
    seen: list[SweepSummary] = []
    run_pending(db, sid, executor=ScriptedExecutor(slots=1), progress_cb=seen.append)
    assert seen and all(s.id == sid for s in seen)
    assert sum(seen[-1].counts.values()) == 3


def test_idle_runner_waits_then_exits(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    start = time.monotonic()
    run_pending(db, executor=ScriptedExecutor(), idle_exit_s=0.3)
    assert 0.3 <= time.monotonic() - start < 10
    start = time.monotonic()
    run_pending(db, executor=ScriptedExecutor())  # idle_exit_s=0: nothing to do, stop at once
    assert time.monotonic() - start < 3
