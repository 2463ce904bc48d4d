"""Progress of a verification while it trains, as a small JSON file the dashboard polls.

A verification trains one run per (bracket point or SP baseline, seed) one after the other in
its own process (`experiments.bundle.verify`). `ProgressFile` is the `Reporter` each of those
runs gets: at every log point it rewrites the file (atomically, at most every `interval_s`)
with how many runs are done, the current run's step and latest loss, and the ETA from the pace
so far. `read_progress` parses it back (None while there is no file yet or it is torn).

Torch-free: the dashboard imports this module to show the job on Runs and Export.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

PROGRESS_INTERVAL_S = 0.5


class VerifyProgress(BaseModel):
    """One snapshot of a running verification.

    Attributes:
        runs_done: runs finished (each bracket point and the SP baseline train once per seed).
        runs_total: runs the verification trains in all.
        step: the current run's steps done.
        steps: steps per run.
        current: the current run in words ("µP 2^-7.04 seed 1").
        loss: the current run's latest logged train loss (None before its first log point).
        elapsed_s: seconds since the verification started training.
        eta_s: seconds left at the pace so far (None before any step is done).
    """

    runs_done: int
    runs_total: int
    step: int
    steps: int
    current: str
    loss: float | None = None
    elapsed_s: float
    eta_s: float | None = None

    @property
    def fraction(self) -> float:
        """Steps done over steps planned, 0..1."""
        total = self.runs_total * self.steps
        return min(1.0, (self.runs_done * self.steps + self.step) / total) if total else 0.0


def read_progress(path: Path | None) -> VerifyProgress | None:
    """The latest snapshot written to `path` (None: no file yet, or unreadable)."""
    if path is None or not path.exists():
        return None
    try:
        return VerifyProgress.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError):
        return None


class ProgressFile:
    """Counts a verification's runs and writes `VerifyProgress` snapshots to a file.

    Use `reporter(label)` as the `Reporter` of each run in turn; call `run_done()` after each.
    """

    def __init__(self, path: Path, runs_total: int, steps: int,
                 interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self.path = path
        self.runs_total, self.steps = runs_total, steps
        self.interval_s = interval_s
        self.runs_done = 0
        self.current = ""
        self.step = 0
        self.loss: float | None = None
        self._t0 = time.monotonic()
        self._last_write = -math.inf
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write(force=True)

    def reporter(self, label: str) -> ProgressFile:
        """Start the next run (`label` in words); this object is its reporter."""
        self.current, self.step, self.loss = label, 0, None
        self._write(force=True)
        return self

    def run_done(self) -> None:
        """The current run finished (trained, diverged or stopped)."""
        self.runs_done += 1
        self.step = 0
        self._write(force=True)

    # --- the Reporter protocol of experiments.train ---
    def metrics(self, step: int, values: dict[str, float]) -> None:
        """Keep the latest train loss."""
        if "train_loss" in values and math.isfinite(values["train_loss"]):
            self.loss = float(values["train_loss"])

    def progress(self, step: int, total: int) -> None:
        """Record the step; rewrite the file when due."""
        self.step = int(step)
        self._write()

    def cancelled(self) -> bool:
        """A verification is stopped by ending its process, never from inside."""
        return False

    def snapshot(self) -> VerifyProgress:
        """What the file holds now."""
        elapsed = time.monotonic() - self._t0
        done_steps = self.runs_done * self.steps + self.step
        left = self.runs_total * self.steps - done_steps
        eta = elapsed / done_steps * max(0, left) if done_steps else None
        return VerifyProgress(runs_done=self.runs_done, runs_total=self.runs_total,
                              step=self.step, steps=self.steps, current=self.current,
                              loss=self.loss, elapsed_s=elapsed, eta_s=eta)

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < self.interval_s:
            return
        self._last_write = now
        doc: dict[str, Any] = self.snapshot().model_dump(mode="json")
        tmp = self.path.with_name(f".tmp-{os.getpid()}-{self.path.name}")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)
