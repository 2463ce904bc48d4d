"""Adaptive vs grid LR search on a preset: runs, training FLOPs, optima and verdict side by side.

    python bench/bench_adaptive.py --preset mlp [--db DIR] [--workers N] [--engine]
    python bench/bench_adaptive.py --preset gpt-small [--db DIR]

The grid sweep of the preset is trained once (through `sweep run`; reused from `--db DIR` when
a finished sweep of the same spec is there). The adaptive search is then replayed against the
grid's own results (`experiments.sweep.adaptive.replay`): it may only ask for runs of the same grid,
and each answer is the loss the grid sweep measured for that run, so the comparison isolates
the search (same seeds, same training, same analysis). With `--engine`, the adaptive spec is
also run through the real engine (`sweep run`) and its run set compared with the replay's.

Acceptance: same verdict, every per-width optimum within 0.25 log2 of the grid's,
at most 50% of the grid's runs and at most 50% of its training FLOPs (the bounds checked on
the mlp preset, reported on gpt-small). Exit 1 if a check fails.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments.analysis.report import analyze  # noqa: E402
from experiments.spec.sweep import SweepSpec, load_spec, run_key, spec_hash  # noqa: E402
from experiments.store import Store  # noqa: E402
from experiments.sweep.adaptive import RunOutcome, replay  # noqa: E402
from experiments.sweep.planning import outcomes_of  # noqa: E402

CONFIGS = ROOT / "experiments" / "configs"
# gpt-bytes sized down for a 2-core CPU: narrower ladder, shorter sequences, fewer steps.
GPT_SMALL = {"widths": [32, 64, 128, 256], "base_width": 32, "steps": 150, "batch_size": 16,
             "log_every": 10, "task": {"name": "bytes", "seq_len": 32}}
MAX_OPT_GAP = 0.25
MAX_FRACTION = 0.5


def preset_spec(name: str) -> SweepSpec:
    """The preset's spec (grid search), sized down for `gpt-small`."""
    if name == "mlp":
        return load_spec(CONFIGS / "mlp-digits-transfer.yaml")
    data = load_spec(CONFIGS / "gpt-bytes.yaml").model_dump(mode="json")
    data.update(GPT_SMALL, name="gpt-bytes-small")
    return SweepSpec.model_validate(data)


def sweep_run(spec: SweepSpec, db: Path, workers: int | None) -> int:
    """Train `spec` with `sweep run` into `db` (or reuse a finished sweep of the same spec)."""
    if db.exists():
        store = Store(db)
        for s in store.list_sweeps():
            if s.spec_hash == spec_hash(spec) and s.state == "done":
                print(f"reusing sweep {s.id} in {db}", flush=True)
                return s.id
    path = db.with_suffix(f".{spec.search.kind}.yaml")
    path.write_text(spec.to_yaml())
    cmd = [sys.executable, "-m", "experiments", "sweep", "run", str(path), "--db", str(db)]
    cmd += ["--workers", str(workers)] if workers else []
    print("$ " + shlex.join(cmd), flush=True)
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    print(out.stderr.strip().splitlines()[-1], flush=True)
    return int(out.stdout.split()[-1])


def flops(spec: SweepSpec, frame: pd.DataFrame) -> tuple[float, float]:
    """(budgeted, spent) training FLOPs of the runs in `frame`: steps x FLOPs per step of the
    run's width (`experiments.spec.estimate`); spent counts a diverged run's steps up to its stop."""
    per_step = {w.width: w.flops_per_step for w in spec.estimate().widths}
    fps = frame["width"].map(per_step).astype(float)
    return float((fps * spec.steps).sum()), float((fps * frame["steps_done"]).sum())


def optima(frame: pd.DataFrame) -> tuple[str, dict[tuple[str, int], float | None]]:
    """The verdict (with its reason) and the per-(parametrization, width) LR optimum (log2)."""
    report = analyze(frame)
    out = {}
    for param, drift in report.lr.items():
        for w in drift.widths:
            out[(param, w.width)] = w.opt_log2
    return f"{report.verdict} ({report.reason})", out


def compare(spec: SweepSpec, store: Store, sid: int) -> dict[str, Any]:
    """Replay the adaptive search against grid sweep `sid`; print and return the comparison."""
    grid_frame = store.runs_frame(sid)
    stored = outcomes_of(store, sid)
    adaptive = spec.model_copy(update={"search": spec.search.model_copy(
        update={"kind": "adaptive"})})
    chosen, plan, rounds = replay(adaptive, lambda run: stored.get(run_key(run),
                                                                   RunOutcome("failed")))
    ada_frame = grid_frame[grid_frame["run_key"].isin(chosen)]
    g_verdict, g_opt = optima(grid_frame)
    a_verdict, a_opt = optima(ada_frame)
    g_flops, g_spent = flops(spec, grid_frame)
    a_flops, a_spent = flops(spec, ada_frame)
    print(f"\n{spec.name}: grid {len(grid_frame)} runs, adaptive {len(ada_frame)} runs "
          f"({len(ada_frame) / len(grid_frame):.1%}) in {rounds} planning rounds")
    print(f"training FLOPs (budget): grid {g_flops:.3g}, adaptive {a_flops:.3g} "
          f"({a_flops / g_flops:.1%}); spent (diverged runs stop early): {g_spent:.3g} vs "
          f"{a_spent:.3g} ({a_spent / g_spent:.1%})")
    print(f"verdict, grid: {g_verdict}\nverdict, adaptive: {a_verdict}")
    print("| param | width | grid opt log2 LR | adaptive opt | gap | adaptive LRs trained |")
    print("|---|---|---|---|---|---|")
    gaps = []
    for (param, width), g in sorted(g_opt.items()):
        a = a_opt.get((param, width))
        gap = abs(a - g) if a is not None and g is not None else float("inf")
        gaps.append(gap)
        n_lr = ada_frame.query("parametrization == @param and width == @width")["lr"].nunique()
        print(f"| {param} | {width} | {g:.3f} | {a:.3f} | {gap:.3f} | {n_lr} |")
    for w in plan.warnings:
        print(f"warning: {w}")
    return {"same_verdict": g_verdict.split()[0] == a_verdict.split()[0], "max_gap": max(gaps),
            "runs": len(ada_frame) / len(grid_frame), "flops": a_flops / g_flops,
            "chosen": set(chosen)}


def main() -> int:
    """Run the comparison; exit 1 when an acceptance bound fails."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("mlp", "gpt-small"), default="mlp")
    parser.add_argument("--db", type=Path, default=Path("/tmp/bench-adaptive"),
                        help="folder for the stores (a finished grid sweep there is reused)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--engine", action="store_true",
                        help="also run the adaptive spec through the real engine")
    args = parser.parse_args()
    args.db.mkdir(parents=True, exist_ok=True)
    spec = preset_spec(args.preset)
    db = args.db / f"{args.preset}-grid.duckdb"
    sid = sweep_run(spec, db, args.workers)
    result = compare(spec, Store(db), sid)
    # The 50% bounds are for the mlp preset (5 widths, half-step grid, 2 seeds); the
    # sized-down gpt ladder (4 widths, step-1 grid) is reported, its full width alone is 25%.
    bounds = result["runs"] <= MAX_FRACTION and result["flops"] <= MAX_FRACTION
    ok = (result["same_verdict"] and result["max_gap"] <= MAX_OPT_GAP
          and (bounds or args.preset != "mlp"))
    if args.engine:
        ada = spec.model_copy(update={"search": spec.search.model_copy(
            update={"kind": "adaptive"})})
        edb = args.db / f"{args.preset}-adaptive.duckdb"
        esid = sweep_run(ada, edb, args.workers)
        keys = set(Store(edb).runs_frame(esid)["run_key"])
        same = keys == result["chosen"]
        print(f"engine: {len(keys)} runs; same run set as the replay: {same}")
        ok = ok and same
    checked = "runs and FLOPs <= 50%" if args.preset == "mlp" else (
        f"runs and FLOPs <= 50% reported only: {'yes' if bounds else 'no'}")
    print(f"\nacceptance (same verdict, gap <= {MAX_OPT_GAP}, {checked}): "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
