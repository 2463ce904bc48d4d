"""Job functions for the engine tests (called by real worker processes by dotted path)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def count_job(payload: dict[str, Any], reporter: Any) -> dict[str, Any]:
    """Report `points` metric rows (value = step), sleeping `sleep_s` between them."""
    points = int(payload.get("points", 10))
    for step in range(1, points + 1):
        reporter.metrics(step, {"train_loss": float(step), "aux": -float(step)})
        reporter.progress(step, points)
        if reporter.cancelled():
            return {"state": "cancelled", "steps_done": step}
        time.sleep(float(payload.get("sleep_s", 0.0)))
    if payload.get("pid_file"):
        Path(payload["pid_file"]).write_text(str(os.getpid()))
    return {
        "state": payload.get("state", "done"),
        "final_train_loss": float(payload.get("loss", 1.0)),
        "final_val_loss": float(payload.get("loss", 1.0)) + 0.1,
        "steps_done": points,
        "wall_s": 0.0,
        "device": "cpu",
        "samples_per_s": 1.0,
    }


def slow_job(payload: dict[str, Any], reporter: Any) -> dict[str, Any]:
    """Write the worker pid, report a few points (flushed), then work for a long time."""
    Path(payload["pid_file"]).write_text(str(os.getpid()))
    for step in range(1, 6):
        reporter.metrics(step, {"train_loss": float(step)})
    reporter.writer.flush()  # make the pre-kill metrics durable now
    Path(payload["pid_file"] + ".flushed").write_text("1")
    for _ in range(600):
        if reporter.cancelled():
            return {"state": "cancelled"}
        time.sleep(0.1)
    return {"state": "done", "final_train_loss": 1.0}


def failing_job(payload: dict[str, Any], reporter: Any) -> dict[str, Any]:
    """Raise after one metric point."""
    reporter.metrics(1, {"train_loss": 1.0})
    raise RuntimeError("boom: this job always fails")


def die_once_job(payload: dict[str, Any], reporter: Any) -> dict[str, Any]:
    """Report two points, then kill -9 its own process on the first attempt; finish on the next.

    A marker file (payload["marker"]) remembers the first attempt across processes.
    """
    reporter.metrics(1, {"train_loss": 1.0})
    marker = Path(payload["marker"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        reporter.metrics(2, {"train_loss": 2.0})
        reporter.writer.flush()  # durable before the kill
        os.kill(os.getpid(), 9)
    return {"state": "done", "final_train_loss": 0.5, "steps_done": 1}
