"""Overhead of µP on a LLaMA training step: the zoo's `llama` parametrized by mucore (Readout
multiplier, InputScale, per-role Adam groups) against the same model in plain torch (nn.Linear
head, no InputScale, PyTorch's default init, torch.optim.Adam with one group).

Both run at the same width on the same batch; repetitions are interleaved (and their order
alternated) in one process so machine load drifts hit both alike. Prints the median time per
step of each and the median of the per-repetition ratios (target: <= 1.05).

    .venv/bin/python bench/bench_llama_overhead.py [--width 512] [--depth 4] [--batch 8] [--seq 64]
        [--steps 3] [--reps 7] [--tied] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
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
from experiments.models import LlamaConfig, model_factory  # noqa: E402
from experiments.tasks import TaskConfig, task_info  # noqa: E402


def plain_copy(model: nn.Module, width: int, vocab: int, tied: bool) -> nn.Module:
    """The same architecture in plain torch: nn.Linear head (or the tied weight), no InputScale."""
    model.input_scale = nn.Identity()
    if not tied:
        model.readout = nn.Linear(width, vocab, bias=False)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    add_lm_args(ap, width=512, depth=4, reps=7)
    ap.add_argument("--tied", action="store_true", help="tie the embedding and the readout")
    args = ap.parse_args()
    dev = start_bench(args)
    print(
        f"torch {torch.__version__}, device {dev}, threads {torch.get_num_threads()}, "
        f"width {args.width}, depth {args.depth}, batch {args.batch}x{args.seq} tokens, "
        f"steps/rep {args.steps}, reps {args.reps}, tied {args.tied}"
    )

    info = task_info(TaskConfig(name="bytes", seq_len=args.seq))
    factory = model_factory(LlamaConfig(depth=args.depth, tie_embeddings=args.tied), info)
    shapes = mucore.infer_base_shapes(factory, base_width=64)
    mup_model = factory(args.width).to(dev)
    setup = mucore.parametrize(mup_model, shapes, "mup", mucore.HParams(), seed=0)
    mup_opt = mucore.build_optimizer(mup_model, setup, "adam", 1e-3)
    plain_model = plain_copy(factory(args.width), args.width, info.n_outputs, args.tied).to(dev)
    plain_opt = torch.optim.Adam(plain_model.parameters(), lr=1e-3)
    n_params = sum(p.numel() for p in mup_model.parameters())
    print(
        f"params {n_params / 1e6:.2f} M; mucore param groups: {len(mup_opt.param_groups)}; "
        f"plain: {len(plain_opt.param_groups)}"
    )

    batch = token_batch(info.n_outputs, args.batch, args.seq, dev)
    compare_step_times((mup_model, mup_opt), (plain_model, plain_opt), batch, args.reps,
                       args.steps, warmup=2, ms_digits=1)


if __name__ == "__main__":
    main()
