"""Ray executor vs local worker processes: the quick preset's runs, wall time for each.

    .venv/bin/python bench/bench_ray.py [--spec experiments/configs/quick.yaml] [--workers 2]
                                        [--steps N] [--max-runs N]

Both sides train the same expanded runs (`experiments.train:run_job`, one torch thread per
worker, metrics dropped) on `--workers` CPUs: "local" with a pool of that many reusable worker
processes, "ray" with a private local Ray instance of that many CPUs, start-up and shutdown
included (that is what a user waits for). Prints the wall time of each, their ratio, and
whether the final losses match run for run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMMAND = ".venv/bin/python bench/bench_ray.py " + " ".join(sys.argv[1:])
ENTRY = "bench.bench_ray:train_entry"


def train_entry(job: dict[str, Any]) -> dict[str, Any]:
    """One run, as a worker trains it: single torch thread, no metrics kept."""
    import torch

    from experiments.train import NullReporter, run_job

    torch.set_num_threads(1)
    return run_job(job["payload"], NullReporter())


def payloads(spec_path: Path, steps: int | None, max_runs: int | None) -> list[dict[str, Any]]:
    """The spec's runs as RunConfig JSON payloads (optionally fewer steps / fewer runs)."""
    import yaml

    from experiments.spec.sweep import SweepSpec

    data = yaml.safe_load(spec_path.read_text())
    if steps is not None:
        data["steps"] = steps
    data["device"] = "cpu"
    runs = [r.model_dump(mode="json") for r in SweepSpec.model_validate(data).expand()]
    return runs[:max_runs] if max_runs else runs


def run_local(jobs: list[dict[str, Any]], workers: int) -> tuple[float, list[dict[str, Any]]]:
    """Wall time and results on a pool of `workers` reusable processes."""
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        results = pool.map(train_entry, jobs, chunksize=1)
    return time.perf_counter() - t0, results


def run_ray(jobs: list[dict[str, Any]], workers: int) -> tuple[float, list[dict[str, Any]]]:
    """Wall time (Ray start-up and shutdown included) and results on a local Ray instance."""
    from experiments.runner.ray_executor import RayExecutor

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    t0 = time.perf_counter()
    executor = RayExecutor(
        ENTRY, address="local", num_cpus=workers, temp_dir=Path(tempfile.mkdtemp(prefix="bray-"))
    )
    executor.start()
    results: dict[str, Any] = {}
    pending = list(enumerate(jobs))
    while pending or executor._in_flight:
        while pending and executor.free_slots:
            i, job = pending.pop(0)
            executor.submit(str(i), job, device="cpu")
        for outcome in executor.poll(0.05):
            if outcome.kind != "finished":
                raise RuntimeError(f"run {outcome.job_id} {outcome.kind}: {outcome.error}")
            results[outcome.job_id] = outcome.value
    executor.shutdown()
    return time.perf_counter() - t0, [results[str(i)] for i in range(len(jobs))]


def main() -> None:
    """Parse flags, time both executors, print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", type=Path, default=ROOT / "experiments/configs/quick.yaml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="override the spec's steps")
    parser.add_argument("--max-runs", type=int, default=None, help="first N runs only")
    args = parser.parse_args()
    print(COMMAND, flush=True)
    jobs = [{"payload": p} for p in payloads(args.spec, args.steps, args.max_runs)]
    print(f"{len(jobs)} runs x {jobs[0]['payload']['steps']} steps, {args.workers} workers")
    local_s, local_res = run_local(jobs, args.workers)
    print(f"local: {local_s:.1f} s")
    ray_s, ray_res = run_ray(jobs, args.workers)
    print(f"ray:   {ray_s:.1f} s (Ray start-up and shutdown included)")
    same = all(
        a["final_train_loss"] == b["final_train_loss"]
        for a, b in zip(local_res, ray_res, strict=True)
    )
    print(f"ratio ray/local: {ray_s / local_s:.2f}x; identical final losses: {same}")


if __name__ == "__main__":
    main()
