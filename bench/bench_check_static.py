"""Time of the static µP doctor, `mucore.check`, on a ~100M-parameter model built on the meta
device (no memory, no weights drawn): the zoo GPT (12 blocks) at width 832, parametrized in µP,
with a µP AdamW (weight decay, scaled eps) and a relative warm-up/cosine schedule, which the
check steps on a copy. Prints the parameter count and the median, min and max wall time of
`check(model)` and of `check(model, optimizer, scheduler)` over several repetitions.

    .venv/bin/python bench/bench_check_static.py [--width 832] [--depth 12] [--reps 7]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, no install

import torch  # noqa: E402

import mucore  # noqa: E402
from experiments.models import GPTConfig, model_factory  # noqa: E402
from experiments.tasks import TaskConfig, task_info  # noqa: E402


def _timed(fn: Callable[[], mucore.Diagnosis], reps: int) -> list[float]:
    """Wall time of `reps` calls; the diagnosis must be healthy (a bench of a failing check
    would time the wrong path)."""
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        diagnosis = fn()
        out.append(time.perf_counter() - t0)
        assert diagnosis.verdict == "healthy", diagnosis.failed()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    info = task_info(TaskConfig(name="synthetic-lm", seq_len=64))
    factory = model_factory(GPTConfig(depth=args.depth, head_dim=64), info)
    shapes = mucore.infer_base_shapes(factory, 64)
    with torch.device("meta"):
        model = factory(args.width)
    setup = mucore.parametrize(model, shapes, "mup", reinit=False)
    opt = mucore.build_optimizer(model, setup, "adamw", 1e-3, weight_decay=0.1, scale_eps=True)
    sched = mucore.relative_schedule(opt, mucore.warmup_cosine(100, 1000))
    n_params = sum(p.numel() for p in model.parameters())
    model_only = _timed(lambda: mucore.check(model), args.reps)
    full = _timed(lambda: mucore.check(model, opt, sched), args.reps)
    print(f"command: .venv/bin/python bench/bench_check_static.py {shlex.join(sys.argv[1:])}")
    print(f"model: zoo gpt, depth {args.depth}, width {args.width}, {n_params / 1e6:.1f} M "
          f"parameters ({len(list(model.parameters()))} tensors), meta device; torch "
          f"{torch.__version__}")
    for label, times in (("check(model)", model_only), ("check(model, opt, sched)", full)):
        print(f"{label:<26} median {statistics.median(times) * 1e3:7.1f} ms "
              f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f}, {args.reps} reps)")


if __name__ == "__main__":
    main()
