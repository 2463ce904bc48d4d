"""Adapts `RayExecutor` (one Ray task per run) to the runner's `Executor` interface.

Inside the Ray task, `run_claim_in_ray` runs the job exactly as a local worker does: same job
function, metrics to the same atomic Parquet chunks (on storage shared with the driver), the
same CANCEL marker. A lost task (its worker process or node died) becomes a "lost" event, so
the local crash policy applies unchanged.
"""

from __future__ import annotations

import traceback
from typing import Any

from experiments.runner.ray_executor import RayExecutor
from experiments.runner.worker import resolve_job
from experiments.store.chunks import ChunkWriter, write_result_journal
from experiments.store.store import Claim


class _FileReporter:
    """Reporter for a Ray task: chunks + cancel marker; progress arrives with the result."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.writer = ChunkWriter(claim.directory, claim.run_id, claim.attempt)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.writer.add(step, values)

    def progress(self, step: int, total: int) -> None:
        """Not streamed through Ray (the result carries steps_done)."""

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

    def free_slots(self) -> int:
        return int(self.ray.free_slots)

    def busy(self) -> int:
        return len(self.claims)

    def submit(self, claim: Claim) -> None:
        job_id = f"{claim.run_id}-{claim.attempt}"
        self.claims[job_id] = claim
        self.ray.submit(job_id, claim, device=str(claim.payload.get("device", "auto")))

    def poll(self, timeout_s: float) -> list[tuple[Any, ...]]:
        events: list[tuple[Any, ...]] = []
        for outcome in self.ray.poll(timeout_s):
            claim = self.claims.pop(outcome.job_id, None)
            if claim is None:
                continue
            if outcome.kind == "finished":
                kind, value = outcome.value
                events.append((kind, claim.run_id, claim.attempt, value))
            elif outcome.kind == "cancelled":
                events.append(("result", claim.run_id, claim.attempt, {"state": "cancelled"}))
            else:
                reason = outcome.error or "Ray task lost (worker or node died)"
                events.append(("lost", claim.run_id, claim.attempt, reason))
        return events

    def shutdown(self) -> None:
        self.ray.shutdown()
