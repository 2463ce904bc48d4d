"""Depth transfer on the byte corpus: the depth-gpt preset through the CLI.

    python bench/bench_depth_transfer.py [--cpu-scale] [--workers N] [--db PATH]

Runs `sweep run` on experiments/configs/depth-gpt.yaml (with `--cpu-scale`: a shrunk copy that
a 2-core CPU finishes in minutes: width 64 only, shorter sequences and fewer steps), then
`analyze --json`, and prints each parametrization's optimal log2 LR per depth and its drift per
depth doubling (the acceptance asks |completep drift| <= 0.25 and smaller than mup's). With
`--db` pointing at an existing store holding the sweep, the training is skipped.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "experiments" / "configs" / "depth-gpt.yaml"
# What --cpu-scale changes (everything else is the preset's).
CPU_SCALE: dict[str, Any] = {"widths": [64], "task": {"name": "bytes", "seq_len": 32},
                             "steps": 200, "batch_size": 16, "log_every": 20, "device": "cpu"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "experiments", *args]
    print("$ " + shlex.join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def _train(spec_path: Path, db: Path, workers: int | None) -> str:
    """Run the sweep; returns its id."""
    extra = ["--workers", str(workers)] if workers else []
    t0 = time.perf_counter()
    proc = _cli("sweep", "run", str(spec_path), "--db", str(db), *extra)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        raise SystemExit(f"sweep run failed (exit {proc.returncode})")
    print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)
    return proc.stdout.strip().splitlines()[-1]


def _print_depth(doc: dict[str, Any]) -> None:
    depth = doc.get("depth")
    if not depth:
        print("no depth section (was the ladder swept?)")
        return
    print(f"depth verdict: {depth['verdict']} (tolerance ±{depth['tolerance']:g}) at width "
          f"{depth.get('width')}: {depth.get('reason', '')}")
    for name, p in depth["parametrizations"].items():
        opts = ", ".join(
            f"d{d['depth']}: {d['opt_log2_lr']:+.2f}" if d["opt_log2_lr"] is not None
            else f"d{d['depth']}: n/a" for d in p["depths"])
        slope, ci = p["drift_slope"], p["drift_ci"]
        ci_text = "n/a" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"
        print(f"  {name:10s} drift {'n/a' if slope is None else f'{slope:+.3f}'} log2 LR per "
              f"depth doubling (95% CI {ci_text}); optima {opts}")
        print("             best losses " + ", ".join(
            f"d{d['depth']}: {d['best_loss']:.4f}" if d["best_loss"] is not None
            else f"d{d['depth']}: n/a" for d in p["depths"]))


def main() -> int:
    """Train (unless the store has the sweep), analyse, print the depth figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpu-scale", action="store_true", help="the shrunk CPU copy")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--db", type=Path, default=None, help="reuse (or create) this store")
    args = parser.parse_args()
    spec = yaml.safe_load(PRESET.read_text())
    if args.cpu_scale:
        spec.update(CPU_SCALE)
    scratch = Path(tempfile.mkdtemp(prefix="bench-depth-"))
    spec_path = scratch / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    db = args.db or scratch / "store.duckdb"
    sweep_id = "1" if db.exists() else _train(spec_path, db, args.workers)
    out = scratch / "analysis.json"
    proc = _cli("analyze", sweep_id, "--db", str(db), "--json", str(out))
    if not out.exists():
        print(proc.stderr, file=sys.stderr)
        return 1
    doc = json.loads(out.read_text())
    print(f"store: {db}")
    print(f"width verdict (at the base depth): {doc['verdict']}")
    _print_depth(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
