"""Transfer-page render time: a stored sweep of 1,000 runs x 100 metric points vs 10 runs.

    .venv/bin/python bench/bench_transfer_page.py [--runs 1000] [--points 100] [--repeats 3]

Rows are written through the store's real paths (no training): a sweep with its run rows,
`points` train-loss metric rows per run as Parquet chunks ingested into DuckDB, and a final
result per run. The page is rendered with
AppTest (the real script, a real store) and the best of `repeats` warm renders is reported.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

COMMAND = ".venv/bin/python bench/bench_transfer_page.py " + " ".join(sys.argv[1:])


def grid(n_runs: int) -> list[tuple[str, int, float, int]]:
    """(parametrization, width, log2_lr, seed) for about `n_runs` runs over 2 x 5 widths."""
    widths = [64, 128, 256, 512, 1024]
    per_width = max(1, n_runs // (2 * len(widths)))
    seeds = 1 if per_width < 10 else 4
    n_lrs = max(1, per_width // seeds)
    lrs = np.linspace(-14, -2, n_lrs) if n_lrs > 1 else np.array([-8.0])
    cells = [(p, w, float(lr), s) for p in ("sp", "mup") for w in widths for lr in lrs for s in range(seeds)]
    return cells[:n_runs]


def final_loss(param: str, width: int, log2_lr: float, seed: int) -> float:
    """A plausible loss surface: µP optimum fixed, SP optimum drifting left with width."""
    shift = 0.0 if param == "mup" else -math.log2(width / 64)
    return 1.0 + 0.04 * (log2_lr + 8 - shift) ** 2 - 0.02 * math.log2(width) + 0.005 * seed


def populate(db_path: Path, n_runs: int, n_points: int) -> int:
    """Write one sweep with `n_runs` finished runs and `n_points` metric rows each."""
    from experiments.store import ChunkWriter, RunRow, Store
    from experiments.sweep.submit import TRAIN_JOB

    store = Store(db_path)
    cells = grid(n_runs)
    rows = [
        RunRow(run_key=f"{p}-w{w}-lr{lr:.3f}-s{s}", width=w, parametrization=p, lr=2.0**lr, seed=s,
               hparams={}, payload={"steps": n_points}, job_fn=TRAIN_JOB)
        for p, w, lr, s in cells
    ]
    sweep_id = store.create_sweep(f"bench-{n_runs}", {"name": f"bench-{n_runs}"}, rows)
    claims = {c.run_id: c for c in store.claim(len(rows), "bench")}
    runs = store.runs_frame(sweep_id)
    # Metrics go the workers' way (a Parquet chunk per run, then one ingest), results the
    # runner's way (`finish`), all in one attachment of the store.
    with store.batch():
        for run_id, (p, w, lr, s) in zip(runs["run_id"], cells, strict=True):
            claim = claims[int(run_id)]
            loss = final_loss(p, w, lr, s)
            writer = ChunkWriter(claim.directory, claim.run_id, claim.attempt)
            for step in range(n_points):
                writer.add(step, {"train_loss": loss + 2.0 / (1 + step)})
            writer.flush()
        store.ingest()
        for run_id, (p, w, lr, s) in zip(runs["run_id"], cells, strict=True):
            loss = final_loss(p, w, lr, s)
            store.finish(int(run_id), claims[int(run_id)].attempt, {
                "state": "done", "final_train_loss": loss, "final_val_loss": loss + 0.05,
                "steps_done": n_points, "wall_s": 1.0, "samples_per_s": 1000.0,
                "device": "cpu", "peak_mem_bytes": None})
    return int(sweep_id)


def render_s(db_path: Path, sweep_id: int, repeats: int) -> float:
    """Best wall time of a warm AppTest render of the Transfer page."""
    from streamlit.testing.v1 import AppTest

    os.environ["MUTRANSFER_DB_PATH"] = str(db_path)
    best = float("inf")
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=600)
    at.session_state["current_sweep_id"] = sweep_id
    at.run()
    at.switch_page("views/transfer.py")
    for _ in range(repeats + 1):  # the first render warms imports and caches
        start = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - start
        if at.exception:
            raise RuntimeError(at.exception[0].value)
        charts = len(at.get("plotly_chart"))
        if charts < 2:  # both panels must be drawn, or the timing measures an empty page
            raise RuntimeError(f"the transfer page drew {charts} charts, expected >= 2")
        best = min(best, elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"$ {COMMAND}")
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
        results = {}
        for n in (10, args.runs):
            db = Path(tmp) / f"store-{n}" / "store.duckdb"
            db.parent.mkdir()
            t0 = time.perf_counter()
            sweep_id = populate(db, n, args.points)
            write_s = time.perf_counter() - t0
            results[n] = render_s(db, sweep_id, args.repeats)
            print(f"{n:>6} runs x {args.points} points: wrote in {write_s:.2f} s, transfer page renders in {results[n]:.3f} s")
        print(f"ratio ({args.runs} runs / 10 runs): {results[args.runs] / results[10]:.2f}x")


if __name__ == "__main__":
    main()
