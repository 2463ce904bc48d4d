"""Scheduling efficiency: a sweep of many short jobs on 2 workers vs the jobs' own time / 2.

    .venv/bin/python bench/bench_scheduling.py [--workers 2] [--steps 150] [--lrs 8] [--seeds 2]

A real sweep (tiny MLPs on the synthetic task: 2 parametrizations x 2 widths x `lrs` LRs x
`seeds` seeds) goes through the real runner (`run_sweep`: the DuckDB store, local worker
processes, Parquet chunks, ingest) into a scratch store. Each run's own time is the `wall_s` it
reports (model build, training and evaluation inside the worker). The ideal sweep time with
`workers` workers is sum(wall_s) / workers; the overhead ratio is the sweep's wall time over
that ideal (target <= 1.3). Printed twice: with the runner's start-up (spawning the workers,
each importing torch once) and from the first run's start to the last run's finish.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from experiments.runner import run_sweep  # noqa: E402
from experiments.spec import SweepSpec, create_sweep  # noqa: E402
from experiments.store import Store  # noqa: E402

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
        t0 = time.perf_counter()
        summary = run_sweep(db, sweep_id, workers=args.workers)
        wall = time.perf_counter() - t0
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
    print(f"sum of runs' own time / {args.workers}: {ideal:.2f} s")
    print(f"sweep wall time incl. runner start-up: {wall:.2f} s  -> ratio {wall / ideal:.2f}")
    print(f"first start -> last finish:            {span:.2f} s  -> ratio {span / ideal:.2f}")
    verdict = "within" if wall / ideal <= TARGET else "OVER"
    print(f"overhead ratio {wall / ideal:.2f} ({verdict} the {TARGET} target, start-up included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
