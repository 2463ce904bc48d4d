"""Time the quick-demo preset end to end through the CLI (`sweep run`), on this machine.

    python bench/bench_quick.py [--workers N] [--keep]

Prints the exact command first, then the wall time, the sweep's run counts and the spec's own
estimate, so the number can be compared with the 120 s target of the quick demo.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "experiments" / "configs" / "quick.yaml"
TARGET_S = 120.0


def main() -> int:
    """Run the benchmark; exit 1 when the sweep fails."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=None, help="passed to `sweep run`")
    parser.add_argument("--keep", action="store_true", help="keep the scratch store")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-quick-"))
    db = scratch / "store.duckdb"
    cmd = [sys.executable, "-m", "experiments", "sweep", "run", str(QUICK), "--db", str(db)]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    print("$ " + shlex.join(cmd), flush=True)
    print(f"machine: {os.cpu_count()} CPUs visible", flush=True)

    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        print(f"FAILED (exit {proc.returncode}) after {wall:.1f} s")
        return 1
    sweep_id = proc.stdout.strip().splitlines()[-1]
    status = subprocess.run(
        [sys.executable, "-m", "experiments", "sweep", "status", sweep_id, "--json", "--db", str(db)],
        cwd=ROOT, capture_output=True, text=True,
    )
    counts = json.loads(status.stdout)[0]["counts"] if status.returncode == 0 else {}

    sys.path.insert(0, str(ROOT))
    from experiments.spec.sweep import load_spec

    spec = load_spec(QUICK)
    plan = spec.estimate()
    from experiments.store import Store

    devices = sorted(set(Store(db).runs_frame(int(sweep_id))["device"].dropna()))
    print(f"runs: {plan.n_runs}  steps: {plan.total_steps}  counts: {counts}")
    print(f"device(s): {', '.join(devices) or 'unknown'}")
    print(f"estimate (1 worker): {plan.est_compute_s:.0f} s")
    print(f"wall: {wall:.1f} s  ({'within' if wall <= TARGET_S else 'OVER'} the {TARGET_S:.0f} s target)")
    if not args.keep:
        for p in sorted(scratch.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        scratch.rmdir()
    else:
        print(f"store kept at {db}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
