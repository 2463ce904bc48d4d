"""The executor interface: where claimed runs execute (local processes today, Ray next).

The runner loop (`experiments.runner.loop`) owns the store; an executor only runs claims and
reports events. Events are tuples:
    ("progress", run_id, attempt, step)
    ("result", run_id, attempt, result_dict)
    ("error", run_id, attempt, error_text)          # the job raised: the run failed
    ("lost", run_id, attempt, reason)               # the worker died under it
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass
from typing import Any, Protocol

from experiments.runner.worker import worker_main
from experiments.store.store import Claim


class Executor(Protocol):
    """Runs claims somewhere and reports events."""

    def free_slots(self) -> int:
        """How many more claims it can take now."""
        ...

    def submit(self, claim: Claim) -> None:
        """Start a claim."""
        ...

    def poll(self, timeout_s: float) -> list[tuple[Any, ...]]:
        """Events since the last poll (waits up to `timeout_s` for the first)."""
        ...

    def busy(self) -> int:
        """Claims in flight."""
        ...

    def shutdown(self) -> None:
        """Stop every worker (in-flight claims are abandoned)."""
        ...


def default_workers() -> tuple[int, int]:
    """(workers, torch threads per worker): one per GPU, else cores split so w x t <= cores."""
    try:
        import torch

        gpus = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no torch / broken CUDA means CPU
        gpus = 0
    if gpus:
        return gpus, max(1, (os.cpu_count() or 1) // gpus)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores), 1


def worker_device(slot: int, n_gpus: int) -> str | None:
    """The device local worker `slot` is pinned to: cuda:(slot % n_gpus), or None without GPUs.

    Workers past the GPU count wrap around, so with more workers than GPUs each GPU is shared
    by the same number of workers (give or take one).
    """
    if slot < 0:
        raise ValueError(f"worker slot must be >= 0, got {slot}")
    return f"cuda:{slot % n_gpus}" if n_gpus > 0 else None


def assign_device(requested: str, worker: str | None) -> str:
    """The device a run asking for `requested` trains on in a worker pinned to `worker`.

    "auto" and a bare "cuda" follow the worker's GPU (otherwise every worker would pile onto
    cuda:0); "cpu" and an explicit "cuda:N" are the spec's choice and are kept. A worker with
    no GPU changes nothing.
    """
    if worker is not None and requested in ("auto", "cuda"):
        return worker
    return requested


@dataclass
class _Slot:
    process: Any
    inbox: Any
    device: str | None
    claim: Claim | None = None


class LocalExecutor:
    """N long-lived worker processes (spawned: torch imported once each), one job per worker.

    With GPUs, worker i is pinned to cuda:(i % GPUs) (`worker_device`), and runs whose spec
    says "auto" or "cuda" train there (`assign_device`); by default there is one worker per
    GPU, so each GPU runs one job at a time.
    """

    def __init__(self, workers: int | None = None, threads: int | None = None) -> None:
        n_default, t_default = default_workers()
        self.n = workers or n_default
        self.threads = threads or t_default
        self.ctx = mp.get_context("spawn")
        self.outbox = self.ctx.Queue()
        try:
            import torch

            gpus = torch.cuda.device_count()
        except Exception:  # noqa: BLE001
            gpus = 0
        self.slots = [self._spawn(i, worker_device(i, gpus)) for i in range(self.n)]

    def _spawn(self, i: int, device: str | None) -> _Slot:
        inbox = self.ctx.Queue()
        proc = self.ctx.Process(
            target=worker_main, args=(i, inbox, self.outbox, self.threads, device), daemon=True
        )
        proc.start()
        return _Slot(proc, inbox, device)

    def free_slots(self) -> int:
        return sum(1 for s in self.slots if s.claim is None and s.process.is_alive())

    def busy(self) -> int:
        return sum(1 for s in self.slots if s.claim is not None)

    def submit(self, claim: Claim) -> None:
        for s in self.slots:
            if s.claim is None and s.process.is_alive():
                requested = str(claim.payload.get("device", "auto"))
                device = assign_device(requested, s.device)
                if device != requested:
                    claim.payload = {**claim.payload, "device": device}
                s.claim = claim
                s.inbox.put(claim)
                return
        raise RuntimeError("no free worker")

    def poll(self, timeout_s: float) -> list[tuple[Any, ...]]:
        events: list[tuple[Any, ...]] = []
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                wait = max(0.0, deadline - time.monotonic()) if not events else 0.0
                ev = self.outbox.get(timeout=wait) if wait > 0 else self.outbox.get_nowait()
            except queue.Empty:
                break
            if ev[0] == "ready":
                continue
            if ev[0] in ("result", "error"):
                for s in self.slots:
                    if s.claim and s.claim.run_id == ev[1] and s.claim.attempt == ev[2]:
                        s.claim = None
            events.append(ev)
        # A worker that died (kill -9, OOM) loses its claim; replace it.
        for i, s in enumerate(self.slots):
            if not s.process.is_alive():
                code = s.process.exitcode
                if s.claim is not None:
                    events.append(("lost", s.claim.run_id, s.claim.attempt,
                                   f"worker died (exit code {code})"))
                self.slots[i] = self._spawn(i, s.device)
        return events

    def shutdown(self) -> None:
        for s in self.slots:
            if s.process.is_alive():
                s.inbox.put(None)
        deadline = time.monotonic() + 5
        for s in self.slots:
            s.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if s.process.is_alive():
                s.process.kill()
