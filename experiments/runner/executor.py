"""The executor interface: where claimed runs execute (local processes, or Ray tasks).

The runner loop (`experiments.runner.loop`) owns the store; an executor only runs claims and
reports events. Events are tuples:
    ("progress", run_id, attempt, step)
    ("result", run_id, attempt, result_dict)
    ("error", run_id, attempt, error_text)          # the job raised: the run failed
    ("lost", run_id, attempt, reason)               # the worker died under it: the run failed
    ("requeue", run_id, attempt, reason)            # never started, or lost with its Ray node:
                                                    # queued again while attempts remain
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from experiments.runner.worker import worker_main
from experiments.store.queue import Claim


class Executor(Protocol):
    """Runs claims somewhere and reports events."""

    def free_slots(self) -> int:
        """How many more claims it can take now."""
        ...

    def submit(self, claim: Claim) -> None:
        """Start a claim."""
        ...

    def poll(self, timeout_s: float) -> list[tuple[Any, ...]]:
        """Events since the last poll (waits up to `timeout_s` for the first).

        Each is (kind, run_id, attempt, data): "progress" (steps done), "result" (the job's
        result dict), "error" (text), "lost" (its worker died under it: text), "requeue"
        (never started, or lost with a Ray worker or node: text).
        """
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


# Claims a worker holds at once: the one it trains and one waiting in its inbox. The waiting
# one starts the moment the first ends, so a worker never idles while the runner writes the
# last result and claims the next run (tens of milliseconds of DuckDB transactions per run,
# which short runs would otherwise pay in full; bench/bench_scheduling.py). Still one job at
# a time per worker, hence per GPU.
PREFETCH = 2


@dataclass
class _Slot:
    process: Any
    inbox: Any
    device: str | None
    # claims[0] is the one training (or about to); the rest wait in the inbox, in order.
    claims: list[Claim] = field(default_factory=list)


class LocalExecutor:
    """N long-lived worker processes (spawned: torch imported once each), one job per worker.

    Each worker is handed up to `PREFETCH` claims (one training, the next waiting). A worker
    that dies loses the run it was training ("lost": failed, as the crash policy says) and
    hands back the ones still waiting ("requeue": they never started).

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
        self.gpus = gpus
        self.slots = [self._spawn(i, worker_device(i, gpus)) for i in range(self.n)]

    def device_for(self, claim: Claim) -> str:
        """Where a submitted claim trains, as the Runs page shows it before the run ends: the
        assigned device, "auto" resolved on this machine (no GPU here: the CPU)."""
        device = str(claim.payload.get("device", "auto"))
        if device == "auto":
            return "cuda" if self.gpus > 0 else "cpu"
        return device

    def _spawn(self, i: int, device: str | None) -> _Slot:
        inbox = self.ctx.Queue()
        proc = self.ctx.Process(
            target=worker_main, args=(i, inbox, self.outbox, self.threads, device), daemon=True
        )
        proc.start()
        return _Slot(proc, inbox, device)

    def wait_ready(self, timeout_s: float = 120.0) -> bool:
        """Block until every worker has started (torch imported); False on timeout.

        Only before the first `submit` (afterwards "ready" events are consumed by `poll`).
        """
        if self.busy():
            raise RuntimeError("wait_ready must be called before any claim is submitted")
        ready: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(ready) < self.n:
            try:
                ev = self.outbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if ev[0] == "ready":
                ready.add(int(ev[1]))
        return True

    def free_slots(self) -> int:
        return sum(PREFETCH - len(s.claims) for s in self.slots if s.process.is_alive())

    def busy(self) -> int:
        return sum(len(s.claims) for s in self.slots)

    def submit(self, claim: Claim) -> None:
        # The least-loaded live worker: idle workers first, so a half-empty pool spreads out.
        live = [s for s in self.slots if s.process.is_alive() and len(s.claims) < PREFETCH]
        if not live:
            raise RuntimeError("no free worker")
        s = min(live, key=lambda slot: len(slot.claims))
        requested = str(claim.payload.get("device", "auto"))
        device = assign_device(requested, s.device)
        if device != requested:
            claim.payload = {**claim.payload, "device": device}
        s.claims.append(claim)
        s.inbox.put(claim)

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
                    s.claims = [c for c in s.claims
                                if not (c.run_id == ev[1] and c.attempt == ev[2])]
            events.append(ev)
        # A worker that died (kill -9, OOM) loses the claim it was training; the ones waiting
        # in its inbox never started and go back to the queue. Replace the worker.
        for i, s in enumerate(self.slots):
            if not s.process.is_alive():
                code = s.process.exitcode
                if s.claims:
                    lost, *waiting = s.claims
                    events.append(("lost", lost.run_id, lost.attempt,
                                   f"worker died (exit code {code})"))
                    events.extend(("requeue", c.run_id, c.attempt,
                                   "its worker died before it started") for c in waiting)
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
