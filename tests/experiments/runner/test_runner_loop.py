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


# --- Who runs queued work: the runner's shutdown against a submitter ----------------------------


def submit_while(store: Store, seen: dict[str, Any], key: str) -> None:
    """What `sweep submit` does, at a chosen moment: queue a sweep, then ask for a runner."""
    seen[f"{key}_sweep"] = store.create_sweep(key, {}, scripted_rows(**{key: ["result"]}))
    seen[f"{key}_serves"] = loop.serves_every_sweep(store)


def test_a_sweep_queued_as_the_idle_runner_decides_to_stop_is_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race, driven deterministically: the runner has decided to stop (nothing queued) but
    # is still registered when a submitter queues a sweep and asks for a runner. Before, the
    # submitter saw a live runner and started none, the runner exited: the sweep stayed queued.
    db = tmp_path / "s.duckdb"
    store = Store(db)
    seen: dict[str, Any] = {}
    decide = loop._RunnerLoop.finished

    def finished_then_submit(self: loop._RunnerLoop, idle_exit_s: float) -> bool:
        stop = decide(self, idle_exit_s)
        if stop and "late_sweep" not in seen:
            submit_while(store, seen, "late")
            # The real submit path: the runner still counts, so no second one is started.
            seen["started"] = loop.ensure_background_runner(db)
        return stop

    monkeypatch.setattr(loop._RunnerLoop, "finished", finished_then_submit)
    run_pending(db, executor=ScriptedExecutor())  # a background runner: every sweep
    assert seen["late_serves"] is True and seen["started"] is None
    assert store.list_sweeps(seen["late_sweep"])[0].counts == {"done": 1}
    assert store.live_runners() == []


def test_a_sweep_queued_after_the_runner_unregistered_finds_no_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other order: the runner has left the registry, so the submitter sees no runner and
    # would start one; the leaving runner's last look at the queue takes the run as well, and
    # the claim (a transaction) hands it to exactly one of them.
    db = tmp_path / "s.duckdb"
    store = Store(db)
    seen: dict[str, Any] = {}
    unregister = Store.unregister_runner

    def unregister_then_submit(self: Store, token: str) -> None:
        unregister(self, token)
        if "after_sweep" not in seen:
            submit_while(store, seen, "after")

    monkeypatch.setattr(Store, "unregister_runner", unregister_then_submit)
    ex = ScriptedExecutor()
    run_pending(db, executor=ex)
    assert seen["after_serves"] is False  # the submitter starts a runner of its own
    assert store.list_sweeps(seen["after_sweep"])[0].counts == {"done": 1}
    assert ex.submitted == [("after", 1)]


def test_a_foreground_runner_does_not_count_as_serving_every_sweep(tmp_path: Path) -> None:
    # `sweep run` claims its own sweep's runs only: a sweep submitted meanwhile needs the
    # background runner all the same (before, any live runner counted and none was started).
    db = tmp_path / "s.duckdb"
    store = Store(db)
    sid = store.create_sweep("fg", {}, scripted_rows(fg=["result"]))
    seen: list[bool] = []

    class Watching(ScriptedExecutor):
        def poll(self, timeout_s: float) -> list[tuple[Any, ...]]:
            seen.append(loop.serves_every_sweep(store))
            return super().poll(timeout_s)

    run_pending(db, sid, executor=Watching())
    assert seen and not any(seen)
    store.register_runner("elsewhere:1:bg")  # another host's background runner (fresh beat)
    assert loop.serves_every_sweep(store)


def test_a_runner_that_cannot_start_is_reported_with_its_reason(tmp_path: Path) -> None:
    # A real runner process that exits before registering: the caller gets its last log line.
    db = tmp_path / "s.duckdb"
    store = Store(db)
    with pytest.raises(loop.RunnerStartError, match=r"exit 2\): error: --workers must be >= 1"):
        loop.ensure_background_runner(db, workers=-1)
    assert store.live_runners() == []


def test_a_corrupt_chunk_left_in_the_store_does_not_stop_a_runner_starting(
    tmp_path: Path,
) -> None:
    # Before, the runner's startup ingest read every chunk in one batch and died on this file.
    db = tmp_path / "s.duckdb"
    store = Store(db)
    old = store.create_sweep("old", {}, scripted_rows(old=["result"]))
    run_pending(db, old, executor=ScriptedExecutor())
    (run_id,) = store.runs_frame(old)["run_id"]
    bad = store.run_dir(old, int(run_id)) / "part-1-000042.parquet"
    bad.write_bytes(b"\x00" * 64)
    sid = store.create_sweep("new", {}, scripted_rows(a=["result"], b=["result"]))
    run_pending(db, executor=ScriptedExecutor())
    assert store.list_sweeps(sid)[0].counts == {"done": 2}
    (chunk,) = store.quarantined()
    assert (chunk.sweep_id, chunk.run_id, chunk.path) == (old, run_id, str(bad))
    assert not bad.exists() and Path(str(chunk.moved_to)).read_bytes() == b"\x00" * 64


class DeviceExecutor(ScriptedExecutor):
    """Says where each claim trains; its first poll only reports progress, so the run is
    seen running with its device before it finishes."""

    def __init__(self) -> None:
        super().__init__(slots=1)
        self.polls = 0

    def device_for(self, claim: Claim) -> str:
        return "cpu"

    def poll(self, timeout_s: float) -> list[tuple[Any, ...]]:
        self.polls += 1
        if self.polls == 1 and self.running:
            c = self.running[0]
            return [("progress", c.run_id, c.attempt, 1)]
        return super().poll(timeout_s)


def test_a_running_run_shows_where_it_trains_before_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "PROGRESS_FLUSH_S", 0.0)  # write progress every turn
    db = tmp_path / "s.duckdb"
    store = Store(db)
    sid = store.create_sweep("dev", {}, scripted_rows(a=["result"]))
    seen: list[tuple[str, str | None]] = []
    real = Store.update_progress

    def spy(self: Store, steps: dict[int, int], devices: dict[int, str] | None = None) -> None:
        real(self, steps, devices)
        row = self.runs_frame(sid).iloc[0]
        seen.append((row["state"], row["device"]))

    monkeypatch.setattr(Store, "update_progress", spy)
    run_pending(db, sid, executor=DeviceExecutor())
    assert ("running", "cpu") in seen, seen


def test_a_reclaimed_run_forgets_its_last_device(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    store = Store(db)
    sid = store.create_sweep("dev", {}, scripted_rows(a=["requeue", "result"]))
    (claim,) = store.claim(1, "t", sid)
    store.update_progress({}, {claim.run_id: "cuda:1"})
    assert store.runs_frame(sid).iloc[0]["device"] == "cuda:1"
    store.fail(claim.run_id, claim.attempt, "node lost", requeue=True)
    (again,) = store.claim(1, "t", sid)
    assert again.attempt == 2 and store.runs_frame(sid).iloc[0]["device"] is None
