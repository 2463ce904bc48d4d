"""Batch-size transfer on the byte corpus: how the optimal Adam LR moves with the batch.

    python bench/bench_batch_transfer.py [--steps 320] [--rule none|sqrt|power:X]
        [--axis batch|horizon] [--workers N] [--db PATH]

Runs `sweep run` on the batch ladder of experiments/configs/batch-horizon-gpt.yaml alone (its
horizon ladder dropped: one horizon, `--steps` steps at the base batch 8, so every batch rung
sees the same tokens), then fits, from `Store.runs_frame`, the optimal log2 LR at each batch
(seed-mean loss curve, `experiments.analysis.curves.curve_optimum`) and the least-squares slope
of optimal log2 LR against log2 batch, with a 95% interval from the per-seed optima (Student t,
n - 2 degrees of freedom). No scaling rule is applied, so this is the raw drift; the SDE rule
for Adam (Malladi et al., 2022) predicts a slope of 0.5 (the acceptance band is [0.3, 0.7]).
With `--rule sqrt` the ladder is swept under the SDE rule instead (the acceptance asks
|slope| <= 0.2 there). `--axis horizon` sweeps the preset's horizon ladder at the base batch
instead (`--horizons`, default 100 200 400 800 steps) and reports the slope of optimal log2 LR
against log2 horizon. Either way the engine's own `analyze --json` section of the axis is
printed too: its drift, the fitted LR exponent with its 95% interval and each candidate rule's
regret at the largest rung (`experiments.analysis.exponent`). `--axis crossed` trains the
preset as it ships (batch x horizon) and prints the batch section at each horizon.
With `--db` pointing at a store that holds the sweep, the training is skipped.
"""

from __future__ import annotations

import argparse
import math
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the engine's modules import
PRESET = ROOT / "experiments" / "configs" / "batch-horizon-gpt.yaml"


def _rule(text: str) -> str | dict[str, float]:
    """`none`, `sqrt`, or `power:X` as the spec's scaling value."""
    if text.startswith("power:"):
        return {"power": float(text.split(":", 1)[1])}
    return text


def _spec(steps: int, rule: str = "none", axis: str = "batch",
          horizons: list[int] | None = None) -> dict[str, Any]:
    """The preset's batch ladder at one horizon (`steps` at the base batch), or its horizon
    ladder (`horizons`) at the base batch; swept under `rule` along the axis."""
    data = yaml.safe_load(PRESET.read_text())
    drop = ("horizons", "base_horizon") if axis == "batch" else ("batch_sizes", "base_batch_size")
    for key in drop:
        data.pop(key, None)
    data.update({"name": f"bench-{axis}-transfer", "steps": steps})
    if axis == "crossed":  # the preset as it ships
        return yaml.safe_load(PRESET.read_text())
    if axis == "horizon":
        data.update({"horizons": horizons, "base_horizon": horizons[0], "steps": horizons[0]})
    if rule != "none":
        data["scaling"] = {axis: _rule(rule)}
    return data


def _train(spec_path: Path, db: Path, workers: int | None) -> None:
    cmd = [sys.executable, "-m", "experiments", "sweep", "run", str(spec_path), "--db", str(db)]
    cmd += ["--workers", str(workers)] if workers else []
    print("$ " + shlex.join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        raise SystemExit(f"sweep run failed (exit {proc.returncode})")
    print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)


def _optimum(frame: Any) -> float | None:
    """The refined optimal log2 LR of one curve (loss per log2 LR; diverged runs are +inf)."""
    from experiments.analysis.curves import curve_optimum

    curve = frame.groupby("log2_lr")["final_train_loss"].mean().sort_index()
    ys = np.where(np.isfinite(curve.to_numpy(dtype=float)), curve.to_numpy(dtype=float), np.inf)
    opt = curve_optimum(curve.index.to_numpy(dtype=float), ys)
    return None if opt is None else float(opt.opt_log2)


def _slope(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least-squares slope of ys on xs and its 95% interval (Student t, n - 2 dof)."""
    from scipy import stats

    x, y = np.asarray(xs), np.asarray(ys)
    fit = stats.linregress(x, y)
    half = float(stats.t.ppf(0.975, len(x) - 2)) * float(fit.stderr)
    return float(fit.slope), float(fit.slope) - half, float(fit.slope) + half


def engine_section(db: Path, axis: str) -> list[str]:
    """The engine's own lines for the axis (`analyze` on the train loss, as the slope here)."""
    from experiments.analysis import analyze
    from experiments.store import Store

    store = Store(db, read_only=True)
    frame = store.runs_frame(store.list_sweeps()[0].id)
    section = analyze(frame, loss="final_train_loss").ladders.get(axis)
    return [] if section is None else section.summary_lines()


def per_horizon(db: Path) -> list[str]:
    """On the crossed preset: the engine's batch section read at each horizon (the other
    horizons' runs left out, so each is a batch ladder at fixed tokens of its own)."""
    from experiments.analysis import analyze
    from experiments.store import Store

    store = Store(db, read_only=True)
    frame = store.runs_frame(store.list_sweeps()[0].id)
    lines = []
    for horizon, runs in frame.groupby("horizon"):
        runs = runs.assign(horizon=None, base_horizon=None)
        section = analyze(runs, loss="final_train_loss").ladders["batch"]
        d = section.parametrizations["mup"]
        fit = d.exponent
        ci = "n/a" if d.drift_ci is None else f"[{d.drift_ci[0]:+.2f}, {d.drift_ci[1]:+.2f}]"
        priced = ", ".join(f"{c.rule} {c.abs:.4f}" if c.abs is not None else f"{c.rule} n/a"
                           for c in (fit.candidates if fit else []))
        noise = fit.candidates[0].noise_abs if fit and fit.candidates else None
        lines.append(f"horizon {int(horizon)}: batch slope {d.drift_slope:+.3f} (95% {ci}); "
                     f"regret at batch {fit.rung if fit else '?'}: {priced}; seed noise "
                     + ("n/a" if noise is None else f"{noise:.4f}"))
    return lines


def report(db: Path, axis: str = "batch") -> dict[str, Any]:
    """Per-rung optima and the fitted slope of the sweep in `db` (its first sweep)."""
    from experiments.store import Store

    store = Store(db, read_only=True)
    frame = store.runs_frame(store.list_sweeps()[0].id)
    frame = frame[frame["state"].isin(["done", "diverged"])].copy()
    frame.loc[frame["state"] == "diverged", "final_train_loss"] = math.inf
    rows: list[dict[str, Any]] = []
    seed_x: list[float] = []
    seed_y: list[float] = []
    for batch, rung in frame.groupby("batch_size" if axis == "batch" else "horizon"):
        opt = _optimum(rung)
        per_seed = [_optimum(s) for _, s in rung.groupby("seed")]
        rows.append({"batch": int(batch), "steps": int(rung["steps"].iloc[0]),
                     "opt_log2_lr": opt, "per_seed": per_seed,
                     "best_loss": float(rung.groupby("log2_lr")["final_train_loss"].mean().min())})
        seed_x += [math.log2(batch)] * sum(o is not None for o in per_seed)
        seed_y += [o for o in per_seed if o is not None]
    fitted = [(math.log2(r["batch"]), float(r["opt_log2_lr"])) for r in rows
              if r["opt_log2_lr"] is not None]
    mean_x, mean_y = [x for x, _ in fitted], [y for _, y in fitted]
    slope = _slope(mean_x, mean_y)[0]
    seed_slope, low, high = _slope(seed_x, seed_y)
    return {"rungs": rows, "slope": slope, "seed_slope": seed_slope, "ci95": [low, high],
            "n_seed_optima": len(seed_y)}


def main() -> None:
    """Train (unless --db holds the sweep), then print the per-batch optima and the slope."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=320, help="steps at the base batch 8")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--db", type=Path, default=None, help="a store that holds the sweep")
    ap.add_argument("--rule", default="none", help="none, sqrt or power:X along the axis")
    ap.add_argument("--axis", choices=("batch", "horizon", "crossed"), default="batch",
                    help="crossed: the whole preset (batch x horizon), the batch slope per horizon")
    ap.add_argument("--horizons", type=int, nargs="+", default=[100, 200, 400, 800])
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the preset's")
    args = ap.parse_args()
    db = args.db
    if db is None or not db.exists():
        tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
        db = db or tmp / "store.duckdb"
        spec_path = tmp / "spec.yaml"
        spec = _spec(args.steps, args.rule, args.axis, args.horizons)
        spec.update({"seeds": args.seeds} if args.seeds else {})
        spec_path.write_text(yaml.safe_dump(spec))
        _train(spec_path, db, args.workers)
    if args.axis == "crossed":
        print("\n".join(per_horizon(db)))
        return
    out = report(db, args.axis)
    for r in out["rungs"]:
        per_seed = ", ".join("edge" if o is None else f"{o:+.2f}" for o in r["per_seed"])
        opt = "edge" if r["opt_log2_lr"] is None else f"{r['opt_log2_lr']:+.2f}"
        print(f"{args.axis} {r['batch']:3d} ({r['steps']:4d} steps): opt log2 LR {opt} "
              f"(seeds {per_seed}), best loss {r['best_loss']:.4f}")
    low, high = out["ci95"]
    print(f"slope of optimal log2 LR per log2 {args.axis} under rule {args.rule}: "
          f"{out['slope']:+.3f} "
          f"(per-seed optima: {out['seed_slope']:+.3f}, 95% interval from {out['n_seed_optima']} "
          f"of them [{low:+.3f}, {high:+.3f}]);"
          + (" SDE rule 0.5: acceptance [0.3, 0.7] under none, |slope| <= 0.2 under sqrt"
             if args.axis == "batch" else ""))
    print("\n".join(engine_section(db, args.axis)))
    print(f"store: {db}")


if __name__ == "__main__":
    main()
