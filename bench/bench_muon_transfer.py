"""LR transfer with Muon on the digits MLP: µP's rule against the uncorrected "match_rms_adamw".

    python bench/bench_muon_transfer.py [--variants original,uncorrected] [--steps 200]
        [--model mlp|gpt] [--widths 64,128,256] [--workers N]

For each variant, `sweep run` on a µP spec (the digits MLP, or with `--model gpt` the byte-level
GPT; widths 64, 128, 256, seeds 0 and 1, a log2 LR grid)
with `optimizer: {name: muon, ...}`, then `analyze --json`; prints the optimal log2 LR per width
and the drift per width doubling. Variants:

- original: torch's default adjustment, hidden LR width-constant (µP's rule);
- rms: "match_rms_adamw" with the hidden LR / sqrt(m) (µP's rule);
- uncorrected: "match_rms_adamw" without it (`hidden_lr_correction: false`, the diagnostic);
- lion: Lion under µP (Adam's table);
- adam: the control, Adam under µP on the same model, grid and steps (a drift Adam shares is
  the model's at this scale, not the optimizer rule's).

The acceptance: µP with Muon drifts at most 0.25 log2 per doubling; the uncorrected variant
drifts visibly. Each variant is its own sweep (the optimizer block is per spec).
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
VARIANTS: dict[str, dict[str, Any]] = {
    "original": {"name": "muon"},
    "rms": {"name": "muon", "adjust_lr_fn": "match_rms_adamw"},
    "uncorrected": {"name": "muon", "adjust_lr_fn": "match_rms_adamw",
                    "hidden_lr_correction": False},
    "lion": {"name": "lion", "betas": [0.9, 0.99]},
    "adam": {"name": "adam"},  # the control: µP's Adam on the same model and grid
}


# The byte-level GPT of the batch/horizon preset (pre-LN, head dim 16, 2 blocks), seq 32.
MODELS: dict[str, dict[str, Any]] = {
    "mlp": {"model": {"kind": "mlp", "depth": 3}, "task": {"name": "digits"}, "batch_size": 64},
    "gpt": {"model": {"kind": "gpt", "depth": 2, "head_dim": 16, "head_mode": "fixed_dim",
                      "mlp_ratio": 4},
            "task": {"name": "bytes", "seq_len": 32}, "batch_size": 16},
}


def spec_for(optimizer: dict[str, Any], steps: int, model: str = "mlp",
             widths: tuple[int, ...] = (64, 128, 256)) -> dict[str, Any]:
    """The µP spec of one variant on the digits MLP or the byte GPT."""
    return {"name": f"muon-transfer-{optimizer.get('adjust_lr_fn', optimizer['name'])}",
            **MODELS[model],
            "widths": list(widths), "base_width": widths[0], "parametrizations": ["mup"],
            "optimizer": optimizer, "lr_grid": {"log2_min": -12, "log2_max": -2, "step": 1},
            "seeds": [0, 1], "steps": steps, "log_every": 20, "device": "cpu"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "experiments", *args]
    print("$ " + shlex.join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def run_variant(name: str, steps: int, scratch: Path, workers: int | None,
                model: str = "mlp", widths: tuple[int, ...] = (64, 128, 256)) -> dict[str, Any]:
    """Sweep and analyse one variant; returns the analysis' µP section."""
    spec_path, db = scratch / f"{name}.yaml", scratch / f"{name}.duckdb"
    spec_path.write_text(yaml.safe_dump(spec_for(VARIANTS[name], steps, model, widths)))
    extra = ["--workers", str(workers)] if workers else []
    t0 = time.perf_counter()
    proc = _cli("sweep", "run", str(spec_path), "--db", str(db), *extra)
    if proc.returncode != 0:
        raise SystemExit(f"sweep run failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    sweep_id = proc.stdout.strip().splitlines()[-1]
    out = scratch / f"{name}.json"
    proc = _cli("analyze", sweep_id, "--db", str(db), "--json", str(out))
    if not out.exists():
        raise SystemExit(f"analyze failed: {proc.stderr[-2000:]}")
    doc = json.loads(out.read_text())
    mup = doc["parametrizations"]["mup"]
    print(f"{name}: trained and analysed in {time.perf_counter() - t0:.0f} s", flush=True)
    return {"verdict": doc["verdict"], **mup}


def main() -> int:
    """Run the chosen variants and print optima and drifts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", default="original,uncorrected",
                        help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--model", choices=tuple(MODELS), default="mlp",
                        help="the digits MLP or the byte-level GPT (seq 32, batch 16)")
    parser.add_argument("--widths", default="64,128,256", help="the width ladder, base first")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-muon-"))
    rows = []
    for name in args.variants.split(","):
        widths = tuple(int(w) for w in args.widths.split(","))
        mup = run_variant(name, args.steps, scratch, args.workers, args.model, widths)
        optima = ", ".join(f"w{w['width']}: {w['opt_log2_lr']:+.2f}"
                           if w.get("opt_log2_lr") is not None else f"w{w['width']}: n/a"
                           for w in mup["widths"])
        ci = mup.get("drift_ci")
        ci_text = "n/a" if not ci else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"
        rows.append(f"{name:12s} drift {mup['drift_slope']:+.3f} log2 LR per width doubling "
                    f"(95% CI {ci_text}); optima {optima}; verdict {mup['verdict']}")
    print(f"scratch: {scratch}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
