"""Overhead of CompleteP on a GPT training step: the zoo's `gpt` at
(width 256, depth 8) parametrized by mucore under `completep` against base shapes at (64, 2)
(residual branches x 1/m_L = 1/4, Readout multiplier, InputScale, per-role and per-depth Adam
groups with their own eps) against the same architecture in plain torch (no ResidualBranch, no
InputScale, an nn.Linear head, PyTorch's default init, torch.optim.Adam with one group).

Both run at the same width and depth on the same batch; repetitions are interleaved (and their
order alternated) in one process so machine load drifts hit both alike. Prints the median time
per step of each and the median of the per-repetition ratios (target: <= 1.05).

    .venv/bin/python bench/bench_completep_overhead.py [--width 256] [--depth 8] [--base-depth 2]
        [--batch 8] [--seq 64] [--steps 3] [--reps 9] [--threads 2] [--device cpu] [--clock cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, no install

import torch  # noqa: E402
from bench_mucore_overhead import (  # noqa: E402  (same folder)
    add_lm_args,
    compare_step_times,
    start_bench,
    token_batch,
)
from torch import nn  # noqa: E402

import mucore  # noqa: E402
from experiments.models import GPTConfig, depth_model_factory  # noqa: E402
from experiments.tasks import TaskConfig, task_info  # noqa: E402


def plain_copy(model: nn.Module, width: int, vocab: int) -> nn.Module:
    """The same GPT in plain torch: residual branches unscaled (nn.Identity), no InputScale,
    an nn.Linear head. Built fresh (never parametrized), so its init is PyTorch's default."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, mucore.ResidualBranch | mucore.InputScale):
                setattr(module, name, nn.Identity())
    model.readout = nn.Linear(width, vocab, bias=False)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    add_lm_args(ap, width=256, depth=8, reps=9)
    ap.add_argument("--base-width", type=int, default=64)
    ap.add_argument("--base-depth", type=int, default=2)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall time, or this process's CPU time (CPU only: other jobs sharing "
                    "the cores do not inflate it)")
    args = ap.parse_args()
    dev = start_bench(args)
    print(
        f"torch {torch.__version__}, device {dev}, threads {torch.get_num_threads()}, "
        f"width {args.width} (base {args.base_width}), depth {args.depth} (base "
        f"{args.base_depth}), batch {args.batch}x{args.seq} tokens, steps/rep {args.steps}, "
        f"reps {args.reps}, clock {args.clock}"
    )

    info = task_info(TaskConfig(name="bytes", seq_len=args.seq))
    factory = depth_model_factory(GPTConfig(), info)
    shapes = mucore.infer_base_shapes(factory, args.base_width, base_depth=args.base_depth)
    cp_model = factory(args.width, args.depth).to(dev)
    setup = mucore.parametrize(cp_model, shapes, "completep", mucore.HParams(), seed=0)
    cp_opt = mucore.build_optimizer(cp_model, setup, "adam", 1e-3)
    plain_model = plain_copy(factory(args.width, args.depth), args.width, info.n_outputs).to(dev)
    plain_opt = torch.optim.Adam(plain_model.parameters(), lr=1e-3)
    n_params = sum(p.numel() for p in cp_model.parameters())
    print(
        f"params {n_params / 1e6:.2f} M; branch multiplier {setup.branch_mult():g}; completep "
        f"param groups: {len(cp_opt.param_groups)}; plain: {len(plain_opt.param_groups)}"
    )

    batch = token_batch(info.n_outputs, args.batch, args.seq, dev)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    compare_step_times((cp_model, cp_opt), (plain_model, plain_opt), batch, args.reps,
                       args.steps, warmup=2, ms_digits=1, clock=clock)


if __name__ == "__main__":
    main()
