"""Adapts `RayExecutor` (one Ray task per run) to the runner's `Executor` interface.

Inside the Ray task, `run_claim_in_ray` runs the job exactly as a local worker does: same job
function, metrics to the same atomic Parquet chunks (on storage shared with the driver), the
same CANCEL marker; progress through a small file in the run folder. A lost task (its worker
process or node died) becomes a "requeue" event: the run goes back to the queue while it has
attempts left (MAX_ATTEMPTS), then fails.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from experiments.runner.ray_executor import RayExecutor
from experiments.runner.worker import ProgressThrottle, resolve_job
from experiments.states import RunState
from experiments.store.chunks import ChunkWriter, atomic_write_bytes, write_result_journal
from experiments.store.queue import Claim


def progress_path(claim: Claim) -> Path:
    """Where a Ray task leaves its latest step count for the driver (one small file)."""
    return claim.directory / f"progress-{claim.attempt}"


class _FileReporter:
    """Reporter for a Ray task: chunks, cancel marker, and a progress file the driver polls.

    Progress goes through the run folder (shared storage, like the chunks) rather than a Ray
    channel, so it needs nothing from the cluster beyond what metrics already need.
    """

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.writer = ChunkWriter(claim.directory, claim.run_id, claim.attempt)
        self._throttle = ProgressThrottle()

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.writer.add(step, values)

    def progress(self, step: int, total: int) -> None:
        """Write the step count atomically (rate-limited like a local worker's reports)."""
        if self._throttle.due(step, total):
            atomic_write_bytes(progress_path(self.claim), str(int(step)).encode())

    def cancelled(self) -> bool:
        return (self.claim.directory / "CANCEL").exists()


def run_claim_in_ray(claim: Claim) -> tuple[str, Any]:
    """Ray task body: ("result", dict) or ("error", text)."""
    import torch

    torch.set_num_threads(1)
    reporter = _FileReporter(claim)
    try:
        result = dict(resolve_job(claim.job_fn)(claim.payload, reporter))
        reporter.writer.flush()
        write_result_journal(claim.directory, claim.attempt, result)
        return ("result", result)
    except Exception as exc:  # noqa: BLE001 - the job's failure is the run's
        reporter.writer.flush()
        return ("error", f"{type(exc).__name__}: {exc}\n" + traceback.format_exc()[-4000:])


class RayRunnerExecutor:
    """The runner's Executor over Ray tasks."""

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        self.ray = RayExecutor(
            "experiments.runner.ray_adapter:run_claim_in_ray",
            address or "auto",
            num_cpus=workers,
            max_in_flight=workers,
        )
        self.ray.start()
        self.claims: dict[str, Claim] = {}
        self._reported: dict[str, int] = {}  # last step sent per job, so unchanged files stay quiet

    def free_slots(self) -> int:
        return int(self.ray.free_slots)

    def busy(self) -> int:
        return len(self.claims)

    def submit(self, claim: Claim) -> None:
        job_id = f"{claim.run_id}-{claim.attempt}"
        self.claims[job_id] = claim
        self.ray.submit(job_id, claim, device=str(claim.payload.get("device", "auto")))

    def _progress_events(self) -> list[tuple[Any, ...]]:
        """("progress", ...) for every in-flight claim whose progress file moved on."""
        events: list[tuple[Any, ...]] = []
        for job_id, claim in self.claims.items():
            try:
                step = int(progress_path(claim).read_text())
            except (OSError, ValueError):
                continue  # not started yet, or the rename has not landed
            if step != self._reported.get(job_id):
                self._reported[job_id] = step
                events.append(("progress", claim.run_id, claim.attempt, step))
        return events

    def poll(self, timeout_s: float) -> list[tuple[Any, ...]]:
        events: list[tuple[Any, ...]] = self._progress_events()
        for outcome in self.ray.poll(0.0 if events else timeout_s):
            self._reported.pop(outcome.job_id, None)
            claim = self.claims.pop(outcome.job_id, None)
            if claim is None:
                continue
            if outcome.kind == "finished":
                kind, value = outcome.value
                events.append((kind, claim.run_id, claim.attempt, value))
            elif outcome.kind == "cancelled":
                events.append(("result", claim.run_id, claim.attempt, {"state": RunState.CANCELLED}))
            else:
                # Its Ray worker or node died: back to the queue while it has attempts left
                # (the runner's policy, MAX_ATTEMPTS), since on a cluster that is usually the
                # node's fault, not the run's.
                reason = outcome.error or "Ray task lost (worker or node died)"
                events.append(("requeue", claim.run_id, claim.attempt, reason))
        return events

    def shutdown(self) -> None:
        self.ray.shutdown()
