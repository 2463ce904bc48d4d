"""Training one run: determinism, divergence, cancellation and the metrics a reporter receives."""

from __future__ import annotations

import math
from typing import Any

import pytest

from experiments.train import RunConfig, RunResult, run_job, train_run


class RecordingReporter:
    """Keeps every metric and progress call; cancels after `cancel_after` log points."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.rows: list[tuple[int, str, float]] = []
        self.progress_calls: list[tuple[int, int]] = []
        self.cancel_after = cancel_after
        self.polls = 0

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.rows.extend((step, k, v) for k, v in values.items())

    def progress(self, step: int, total: int) -> None:
        self.progress_calls.append((step, total))

    def cancelled(self) -> bool:
        self.polls += 1
        return self.cancel_after is not None and self.polls >= self.cancel_after


def make_run(**changes: Any) -> RunConfig:
    data: dict[str, Any] = {
        "model": {"kind": "mlp", "depth": 2},
        "task": {"name": "synthetic"},
        "width": 64,
        "base_width": 32,
        "parametrization": "mup",
        "lr": 2.0**-8,
        "seed": 0,
        "steps": 30,
        "batch_size": 16,
        "log_every": 10,
        "device": "cpu",
    }
    data.update(changes)
    return RunConfig.model_validate(data)


def test_same_seed_gives_identical_metrics() -> None:
    a, b = RecordingReporter(), RecordingReporter()
    ra = train_run(make_run(), a)
    rb = train_run(make_run(), b)
    assert a.rows == b.rows
    assert ra.final_train_loss == rb.final_train_loss and ra.final_val_loss == rb.final_val_loss
    c = RecordingReporter()
    train_run(make_run(seed=1), c)
    assert c.rows != a.rows


def test_a_good_lr_trains_and_reports_every_log_every() -> None:
    rep = RecordingReporter()
    result = train_run(make_run(steps=35, log_every=10), rep)
    assert result.state == "done" and result.steps_done == 35
    train_steps = [s for s, name, _ in rep.rows if name == "train_loss"]
    assert train_steps == [10, 20, 30, 35]  # every log_every, plus the last step
    assert [s for s, name, _ in rep.rows if name == "val_loss"] == [35]
    assert rep.progress_calls == [(10, 35), (20, 35), (30, 35), (35, 35)]
    losses = [v for _, name, v in rep.rows if name == "train_loss"]
    assert losses[-1] < result.initial_loss  # it learned something
    assert result.final_train_loss is not None and math.isfinite(result.final_train_loss)
    assert result.final_val_loss is not None and math.isfinite(result.final_val_loss)
    assert result.device == "cpu" and result.peak_mem_bytes is None
    assert result.samples_per_s > 0 and result.wall_s > 0


def test_final_train_loss_is_the_mean_of_the_last_tenth_of_steps() -> None:
    # log_every 1 reports every step's loss, so the tail mean can be recomputed exactly.
    rep = RecordingReporter()
    result = train_run(make_run(steps=20, log_every=1), rep)
    per_step = [v for _, name, v in rep.rows if name == "train_loss"]
    assert result.final_train_loss == pytest.approx(sum(per_step[-2:]) / 2, rel=1e-6)


def test_a_huge_lr_diverges_early() -> None:
    rep = RecordingReporter()
    result = train_run(make_run(parametrization="sp", lr=2.0**4, steps=200, log_every=5), rep)
    assert result.state == "diverged"
    assert 0 < result.steps_done < 200
    assert result.final_val_loss is None
    assert result.final_train_loss is None or math.isfinite(result.final_train_loss)


def test_cancel_stops_at_the_next_log_point() -> None:
    rep = RecordingReporter(cancel_after=2)
    result = train_run(make_run(steps=100, log_every=10), rep)
    assert result.state == "cancelled" and result.steps_done == 20
    assert result.final_val_loss is None


def test_run_job_is_json_in_json_out() -> None:
    payload = make_run(steps=10, log_every=5).model_dump(mode="json")
    out = run_job(payload, RecordingReporter())
    parsed = RunResult.model_validate(out)
    assert parsed.state == "done" and parsed.steps_done == 10
    assert set(out) >= {"state", "final_train_loss", "final_val_loss", "steps_done", "wall_s",
                        "samples_per_s", "device", "peak_mem_bytes"}


def test_lm_task_reports_tokens_per_second() -> None:
    run = make_run(model={"kind": "gpt", "depth": 1, "head_dim": 16}, task={"name": "synthetic-lm", "seq_len": 8},
                   width=32, base_width=16, steps=4, log_every=2, batch_size=4)
    result = train_run(run, RecordingReporter())
    assert result.state == "done" and result.final_val_loss is not None
    assert result.final_train_loss is not None and result.final_train_loss < 6.0  # ~ln(256)=5.5
