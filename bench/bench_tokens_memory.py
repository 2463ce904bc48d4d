"""Memory of a "tokens" task: training on a 1 GiB token file vs a 1 MiB one, side by side.

    python bench/bench_tokens_memory.py [--big-mib 1024] [--small-mib 1] [--steps 30] [--keep]

Writes two token folders (train.bin and val.bin of uint16 ids, each file of the given size)
under a scratch folder in /tmp, then trains a small GPT for a few steps on each in a fresh
subprocess (`--child`, through `experiments.train.train_run`, the function workers call). Each
child reports its peak RSS (getrusage's ru_maxrss, and VmHWM from /proc). The task maps the
files with numpy.memmap and reads only the windows it samples, so the peaks should differ by
far less than the file sizes: the target is at most 100 MiB more for the big file. The scratch
folder is deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere, no install
VOCAB = 4096
TARGET_MIB = 100.0
CHUNK_IDS = 8 * 2**20  # ids written per chunk while generating (16 MiB of uint16)


def write_ids(path: Path, n_ids: int, seed: int) -> None:
    """`n_ids` random uint16 ids below VOCAB, written in chunks (never all in memory)."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        for start in range(0, n_ids, CHUNK_IDS):
            f.write(rng.integers(0, VOCAB, min(CHUNK_IDS, n_ids - start), dtype=np.uint16).tobytes())


def make_folder(folder: Path, mib: int) -> None:
    """A tokens folder whose train.bin and val.bin are each `mib` MiB."""
    folder.mkdir(parents=True)
    n_ids = mib * 2**20 // 2
    write_ids(folder / "train.bin", n_ids, seed=0)
    write_ids(folder / "val.bin", n_ids, seed=1)


def proc_status_bytes(key: str) -> int | None:
    """A `kB` line of /proc/self/status (VmHWM, RssFile, ...) in bytes, or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def child(folder: Path, steps: int) -> None:
    """Train one small GPT on the tokens folder; print the peak RSS as JSON."""
    import torch

    from experiments.spec.sweep import parse_spec
    from experiments.train import NullReporter, train_run

    torch.set_num_threads(1)
    spec = parse_spec({
        "name": "tokens-memory", "model": {"kind": "gpt", "depth": 2, "head_dim": 16},
        "task": {"name": "tokens", "path": str(folder), "vocab_size": VOCAB, "seq_len": 256},
        "widths": [64, 128], "base_width": 64, "parametrizations": ["mup"], "lrs": [2.0**-8],
        "seeds": [0], "steps": steps, "batch_size": 16, "log_every": steps, "device": "cpu",
    })
    run = spec.expand()[-1]  # width 128
    start = time.perf_counter()
    result = train_run(run, NullReporter())
    print(json.dumps({
        "state": str(result.state),
        "final_val_loss": result.final_val_loss,
        "wall_s": time.perf_counter() - start,
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "vm_hwm_bytes": proc_status_bytes("VmHWM"),
        "rss_file_bytes": proc_status_bytes("RssFile"),
    }))


def measure(folder: Path, steps: int, data_dir: Path) -> dict[str, float]:
    """Run `child` in a fresh interpreter and return its report."""
    env = {**os.environ, "MUTRANSFER_DATA_DIRS": str(data_dir), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(folder), "--steps", str(steps)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"child on {folder} failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    """Run the benchmark; exit 1 when the big file costs more than the target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big-mib", type=int, default=1024, help="size of each big .bin file")
    parser.add_argument("--small-mib", type=int, default=1, help="size of each small .bin file")
    parser.add_argument("--steps", type=int, default=30, help="training steps per child")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.steps)
        return 0

    print("$", shlex.join([sys.executable, *sys.argv]))
    scratch = Path(tempfile.mkdtemp(prefix="bench_tokens_", dir="/tmp"))
    try:
        t0 = time.perf_counter()
        make_folder(scratch / "small", args.small_mib)
        make_folder(scratch / "big", args.big_mib)
        print(f"generated token files in {time.perf_counter() - t0:.1f} s under {scratch}")
        rows = {name: measure(scratch / name, args.steps, scratch) for name in ("small", "big")}
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)

    mib = 2.0**20
    print(f"\n{'':>22} {'small':>12} {'big':>12} {'big - small':>12}")
    for key in ("ru_maxrss_bytes", "vm_hwm_bytes", "rss_file_bytes"):
        small, big = rows["small"][key], rows["big"][key]
        if small is None or big is None:
            continue
        print(f"{key.removesuffix('_bytes') + ' (MiB)':>22} {small / mib:>12.1f} {big / mib:>12.1f} "
              f"{(big - small) / mib:>+12.1f}")
    print(f"{'train.bin (MiB)':>22} {args.small_mib:>12} {args.big_mib:>12}")
    print(f"{'final val loss':>22} {rows['small']['final_val_loss']:>12.4f} "
          f"{rows['big']['final_val_loss']:>12.4f}")
    print(f"{'wall (s)':>22} {rows['small']['wall_s']:>12.2f} {rows['big']['wall_s']:>12.2f}")
    extra = (rows["big"]["ru_maxrss_bytes"] - rows["small"]["ru_maxrss_bytes"]) / mib
    ok = extra <= TARGET_MIB
    print(f"\npeak RSS, big - small: {extra:+.1f} MiB (target <= {TARGET_MIB:.0f} MiB): "
          f"{'OK' if ok else 'OVER'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
