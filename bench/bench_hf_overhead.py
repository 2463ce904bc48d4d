"""Overhead of µP on a transformers LLaMA training step: `kind: hf` LlamaForCausalLM
parametrized by mucore (its head a `mucore.Readout` by `mucore.replace_readout`, the attention
scale from the table, per-role Adam groups) against the bare transformers model (its own
nn.Linear head and init, torch.optim.Adam with one group).

Both are the same architecture at the same width (head dim 16, the hf zoo's default), run on
the same batch through the same logits-only forward (`HFModel`: no key/value cache);
repetitions are interleaved (and their order alternated) in one process so machine load drifts
hit both alike. Prints the median time per step of each and the median of the per-repetition
ratios (target: <= 1.05).

    .venv/bin/python bench/bench_hf_overhead.py [--width 512] [--depth 4] [--batch 8] [--seq 64]
        [--steps 3] [--reps 7] [--warmup 2] [--cpu-time] [--device cpu]
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

import mucore  # noqa: E402
from experiments.models import HFConfig, model_factory  # noqa: E402
from experiments.models.hf import HFModel, hf_config  # noqa: E402
from experiments.tasks import TaskConfig, task_info  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    add_lm_args(ap, width=512, depth=4, reps=7)
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps of each model first")
    ap.add_argument("--cpu-time", action="store_true", help="time this process's CPU time "
                    "(time.process_time), which other jobs on a shared CPU do not inflate")
    args = ap.parse_args()
    dev = start_bench(args)
    import transformers

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, device {dev}, "
        f"threads {torch.get_num_threads()}, width {args.width}, depth {args.depth}, "
        f"batch {args.batch}x{args.seq} tokens, steps/rep {args.steps}, reps {args.reps}"
    )

    info = task_info(TaskConfig(name="bytes", seq_len=args.seq))
    cfg = HFConfig(config={"num_hidden_layers": args.depth})
    factory = model_factory(cfg, info)
    shapes = mucore.infer_base_shapes(factory, base_width=64)
    mup_model = factory(args.width).to(dev)
    setup = mucore.parametrize(mup_model, shapes, "mup", mucore.HParams(), seed=0)
    mup_opt = mucore.build_optimizer(mup_model, setup, "adam", 1e-3)
    # The bare transformers model: the same config, its own head, init and attention scale.
    bare = transformers.LlamaForCausalLM(hf_config(cfg, info, args.width))
    plain_model = HFModel(bare, "lm").to(dev)
    plain_opt = torch.optim.Adam(plain_model.parameters(), lr=1e-3)
    n_params = sum(p.numel() for p in mup_model.parameters())
    print(
        f"params {n_params / 1e6:.2f} M; mucore param groups: {len(mup_opt.param_groups)}; "
        f"plain: {len(plain_opt.param_groups)}; heads: mucore "
        f"{type(mup_model.net.lm_head).__name__}, plain {type(bare.lm_head).__name__}"
    )

    batch = token_batch(info.n_outputs, args.batch, args.seq, dev)
    clock = time.process_time if args.cpu_time and dev.type == "cpu" else time.perf_counter
    compare_step_times((mup_model, mup_opt), (plain_model, plain_opt), batch, args.reps,
                       args.steps, warmup=args.warmup, ms_digits=1, clock=clock)


if __name__ == "__main__":
    main()
