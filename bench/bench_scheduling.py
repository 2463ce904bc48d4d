"""Scheduling efficiency: a sweep of many short jobs on 2 workers vs the jobs' own time / 2.

    .venv/bin/python bench/bench_scheduling.py [--workers 2] [--steps 150] [--lrs 8] [--seeds 2]

A real sweep (tiny MLPs on the synthetic task: 2 parametrizations x 2 widths x `lrs` LRs x
`seeds` seeds) goes through the real runner (`run_sweep`: the DuckDB store, local worker
processes, Parquet chunks, ingest) into a scratch store. Each run's own time is the `wall_s` it
reports (model build, training and evaluation inside the worker). The ideal sweep time with
`workers` workers is sum(wall_s) / workers; the overhead ratio is the sweep's wall time over
that ideal (target <= 1.3), with the workers already started. The runner's one-off start-up
(spawning the workers, each importing torch once) is printed beside it, and the ratio with it.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from experiments.runner import LocalExecutor, run_pending  # noqa: E402
from experiments.spec.sweep import SweepSpec  # noqa: E402
from experiments.store import Store  # noqa: E402
from experiments.sweep.submit import create_sweep  # noqa: E402

COMMAND = ".venv/bin/python bench/bench_scheduling.py " + " ".join(sys.argv[1:])
TARGET = 1.3


def bench_spec(steps: int, n_lrs: int, n_seeds: int) -> SweepSpec:
    """Many short runs: every one a few hundred milliseconds of training on one thread."""
    return SweepSpec.model_validate(
        {
            "name": "bench-scheduling",
            "model": {"kind": "mlp", "depth": 2},
            "task": {"name": "synthetic"},
            "widths": [32, 64],
            "base_width": 32,
            "parametrizations": ["sp", "mup"],
            "optimizer": {"name": "adam"},
            "lr_grid": {"log2_min": -12, "log2_max": -12 + n_lrs - 1, "step": 1},
            "seeds": list(range(n_seeds)),
            "steps": steps,
            "batch_size": 32,
            "log_every": 10,
            "device": "cpu",
        }
    )


def main() -> int:
    """Run the sweep once and print the two overhead ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lrs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()

    spec = bench_spec(args.steps, args.lrs, args.seeds)
    scratch = Path(tempfile.mkdtemp(prefix="bench-sched-"))
    try:
        db = scratch / "store.duckdb"
        store = Store(db)
        sweep_id = create_sweep(store, spec)
        # Start-up (spawning the workers, each importing torch once) is timed on its own: it
        # is paid once per runner, not per job.
        t_boot = time.perf_counter()
        executor = LocalExecutor(args.workers)
        if not executor.wait_ready():
            raise SystemExit("workers did not start within 120 s")
        boot = time.perf_counter() - t_boot
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        run_pending(db, sweep_id, executor=executor)
        wall = time.perf_counter() - t0
        summary = store.list_sweeps(sweep_id)[0]
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        runner_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        runs = store.runs_frame(sweep_id)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    n = len(runs)
    terminal = int(runs["state"].isin(["done", "diverged"]).sum())
    if terminal != n:
        print(f"FAILED: {n - terminal} of {n} runs did not finish ({summary.counts})")
        return 1
    own = float(runs["wall_s"].sum())
    ideal = own / args.workers
    span = (runs["finished_at"].max() - runs["started_at"].min()).total_seconds()
    print(f"$ {COMMAND}")
    print(f"runs: {n} ({summary.counts}), mean run time {own / n:.3f} s, workers {args.workers}")
    print(f"runner process CPU (store writes, claims, ingest): {runner_cpu:.2f} s "
          f"({runner_cpu / n * 1000:.0f} ms per run), on the same {args.workers} cores")
    print(f"sum of runs' own time / {args.workers}: {ideal:.2f} s")
    print(f"sweep wall time (workers started):      {wall:.2f} s  -> ratio {wall / ideal:.2f}")
    print(f"first start -> last finish:             {span:.2f} s  -> ratio {span / ideal:.2f}")
    print(f"runner start-up, paid once (spawn {args.workers} workers, import torch): {boot:.2f} s; "
          f"with it the ratio is {(wall + boot) / ideal:.2f}")
    verdict = "within" if wall / ideal <= TARGET else "OVER"
    print(f"overhead ratio {wall / ideal:.2f} ({verdict} the {TARGET} target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
