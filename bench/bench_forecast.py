"""Leave-one-out check of the best-loss forecast on the presets.

    python bench/bench_forecast.py digits [--full] [--db PATH] [--workers N]
    python bench/bench_forecast.py gpt [--full] [--db PATH] [--workers N]

Trains the preset's sweep (`sweep run`; skipped when `--db` holds it already), then per
parametrization fits L(w) = L_inf + A * w^-alpha on every width but the widest
(`experiments.analysis.forecast`, the loss `analyze` reads by default: validation where the task
has it) and compares the forecast at the widest width with its measured best loss. The
acceptance: µP's measured loss inside the 95% interval, or within max(2 seed standard
deviations, 1% of the loss) of it.

Without `--full` the sweep is shrunk so that a 2-core CPU finishes it in minutes (the changes
are printed, and `CPU_SCALE` lists them): the digits MLP keeps its five widths and two seeds on
a whole-step LR grid; the byte GPT, whose preset has four widths (one too few for a
leave-one-out fit on four), gets five narrower widths, shorter sequences and fewer steps.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PRESETS = {"digits": ROOT / "experiments" / "configs" / "mlp-digits-transfer.yaml",
           "gpt": ROOT / "experiments" / "configs" / "gpt-bytes.yaml"}
CPU_SCALE: dict[str, dict[str, Any]] = {
    "digits": {"lr_grid": {"log2_min": -13, "log2_max": -3, "step": 1}, "device": "cpu"},
    "gpt": {"widths": [16, 32, 64, 128, 256], "base_width": 16,
            "task": {"name": "bytes", "seq_len": 32}, "steps": 200, "batch_size": 16,
            "lr_grid": {"log2_min": -12, "log2_max": -4, "step": 1}, "seeds": [0, 1],
            "device": "cpu"},
}


def train(spec: dict[str, Any], db: Path, workers: int | None) -> int:
    """Run the sweep through the CLI; returns its id."""
    path = Path(tempfile.mkdtemp(prefix="bench-forecast-")) / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    cmd = [sys.executable, "-m", "experiments", "sweep", "run", str(path), "--db", str(db),
           *(["--workers", str(workers)] if workers else [])]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sweep run failed: {proc.stderr[-2000:]}")
    print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)
    return int(proc.stdout.strip().splitlines()[-1])


def leave_one_out(runs: Any) -> list[str]:
    """Markdown rows: per parametrization, the forecast at the widest width vs its measurement."""
    from experiments.analysis import analyze

    widest = int(runs["width"].max())
    full = analyze(runs, loss="auto")
    held = analyze(runs[runs["width"] < widest], loss="auto", target_width=widest)
    rows = [f"loss: {full.loss_reason}", "",
            "| param | forecast at widest [95%] | measured | seed sd | verdict | fit |",
            "|---|---|---|---|---|---|"]
    for param, f in held.forecast.items():
        best = {p.width: p for p in full.forecast[param].points}.get(widest)
        measured = "n/a" if best is None else f"{best.loss:.4f}"
        sd = "n/a" if best is None or best.seed_sd is None else f"{best.seed_sd:.4f}"
        at = f.point_at(widest)
        if at is None or best is None or at.ci_low is None or at.ci_high is None:
            rows.append(f"| {param} | refused: {f.refused} | {measured} | {sd} | - | - |")
            continue
        slack = max(2 * (best.seed_sd or 0.0), 0.01 * best.loss)
        inside = at.ci_low <= best.loss <= at.ci_high
        near = at.ci_low - slack <= best.loss <= at.ci_high + slack
        verdict = "inside" if inside else ("within tolerance" if near else "outside")
        assert f.params is not None
        fit = (f"alpha {f.params['alpha']:.2f}, L_inf {f.params['L_inf']:.4f}, "
               f"R^2 {f.fit_quality['r2']:.3f}")
        rows.append(f"| {param} | {at.loss:.4f} [{at.ci_low:.4f}, {at.ci_high:.4f}] | "
                    f"{measured} | {sd} | {verdict} (error {100 * (at.loss - best.loss) / best.loss:+.1f}%) | {fit} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("--full", action="store_true", help="the preset as written")
    parser.add_argument("--db", type=Path, default=None, help="a store holding the sweep")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    from experiments.store import Store

    spec = yaml.safe_load(PRESETS[args.preset].read_text())
    if not args.full:
        print(f"CPU scale: {CPU_SCALE[args.preset]}")
        spec.update(CPU_SCALE[args.preset])
    db = args.db or Path(tempfile.mkdtemp(prefix="bench-forecast-")) / "store.duckdb"
    store = Store(db) if db.exists() else None
    sweeps = [] if store is None else [s for s in store.list_sweeps() if s.name == spec["name"]]
    sid = sweeps[-1].id if sweeps else train(spec, db, args.workers)
    runs = Store(db).runs_frame(sid)
    print(f"store {db}, sweep {sid}: {len(runs)} runs, widths "
          f"{sorted(int(w) for w in runs['width'].unique())}")
    print("\n".join(leave_one_out(runs)))


if __name__ == "__main__":
    main()
