"""Overhead of mucore on a training step: a µP MLP (Readout, InputScale, per-role Adam groups)
against the same MLP in plain torch (nn.Linear head, torch.optim.Adam with one group).

Both run at the same width on the same batch; repetitions are interleaved (mup, plain, mup, ...)
in one process so machine load drifts hit both alike. Prints the median time per step of each
and the median of the per-repetition ratios.

    .venv/bin/python bench/bench_mucore_overhead.py [--width 1024] [--depth 3] [--batch 64] [--steps 20] [--reps 9]
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
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402

import mucore  # noqa: E402

D_IN, N_OUT = 64, 10


class Net(nn.Module):
    """Linear(64, w) -> [InputScale] -> ReLU -> (depth-1) x [Linear(w, w) -> ReLU] -> head."""

    def __init__(self, width: int, depth: int, mup_layers: bool) -> None:
        super().__init__()
        self.inp = nn.Linear(D_IN, width)
        self.input_scale = mucore.InputScale() if mup_layers else nn.Identity()
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.readout = mucore.Readout(width, N_OUT) if mup_layers else nn.Linear(width, N_OUT)

    def forward(self, x: Tensor) -> Tensor:  # (B, 64) -> (B, 10)
        h = torch.relu(self.input_scale(self.inp(x)))
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.readout(h)


def time_steps(
    model: nn.Module, opt: torch.optim.Optimizer, batch: tuple[Tensor, Tensor], steps: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds per training step (forward, backward, optimizer step), averaged over `steps`.

    Logits (..., C) and targets (...) are flattened, so classifiers and LMs time alike.
    `clock` is wall time by default; `time.process_time` counts only this process's CPU time,
    which other jobs on a shared CPU machine do not inflate (CPU runs only).
    """
    x, y = batch
    if x.is_cuda:
        torch.cuda.synchronize()
    t0 = clock()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x).flatten(0, -2), y.flatten()).backward()
        opt.step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return (clock() - t0) / steps


Pair = tuple[nn.Module, torch.optim.Optimizer]


def compare_step_times(mup: Pair, plain: Pair, batch: tuple[Tensor, Tensor], reps: int,
                       steps: int, warmup: int, ms_digits: int = 2,
                       clock: Callable[[], float] = time.perf_counter) -> None:
    """Time µP and plain torch side by side, `reps` times, and print the median ratio.

    The two alternate which goes first each rep, so a drift within a rep (this machine is
    shared) does not favour one side. `clock`: see `time_steps`.
    """
    for model, opt in (mup, plain):  # warm-up (allocations)
        time_steps(model, opt, batch, warmup)
    mup_t, plain_t, ratios = [], [], []
    for rep in range(reps):
        order = [("mup", *mup), ("plain", *plain)]
        if rep % 2:
            order.reverse()
        got = {name: time_steps(m, o, batch, steps, clock) for name, m, o in order}
        mup_t.append(got["mup"])
        plain_t.append(got["plain"])
        ratios.append(got["mup"] / got["plain"])
    print(
        f"median step time: mucore {statistics.median(mup_t) * 1e3:.{ms_digits}f} ms, "
        f"plain torch {statistics.median(plain_t) * 1e3:.{ms_digits}f} ms"
    )
    print(f"per-rep ratios: {' '.join(f'{r:.3f}' for r in ratios)}")
    print(f"median ratio mucore / plain: {statistics.median(ratios):.3f}")
    # On a shared machine other load only ever adds time: the fastest rep of each side is the
    # least disturbed measurement, so its ratio is a second, noise-robust estimate.
    print(f"fastest-rep ratio mucore / plain: {min(mup_t) / min(plain_t):.3f}")


def add_lm_args(ap: argparse.ArgumentParser, *, width: int, depth: int, reps: int) -> None:
    """The flags the language-model overhead benches (LLaMA, CompleteP GPT) share."""
    ap.add_argument("--width", type=int, default=width)
    ap.add_argument("--depth", type=int, default=depth)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--reps", type=int, default=reps)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def start_bench(args: argparse.Namespace) -> torch.device:
    """Print the command line, fix threads and seed; the device `--device` names."""
    print("command:", shlex.join([".venv/bin/python", *sys.argv]))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return torch.device(args.device)


def token_batch(n_vocab: int, batch: int, seq: int, dev: torch.device) -> tuple[Tensor, Tensor]:
    """A fixed random next-token batch: inputs (batch, seq) and targets shifted by one."""
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, n_vocab, (batch, seq + 1), generator=g)
    return tokens[:, :-1].to(dev), tokens[:, 1:].to(dev)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print("command:", shlex.join([".venv/bin/python", *sys.argv]))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, width {args.width}, "
        f"depth {args.depth}, batch {args.batch}, steps/rep {args.steps}, reps {args.reps}"
    )

    shapes = mucore.infer_base_shapes(lambda w: Net(w, args.depth, True), base_width=64)
    mup_model = Net(args.width, args.depth, True)
    setup = mucore.parametrize(mup_model, shapes, "mup", mucore.HParams(), seed=0)
    mup_opt = mucore.build_optimizer(mup_model, setup, "adam", 1e-3)
    plain_model = Net(args.width, args.depth, False)
    plain_opt = torch.optim.Adam(plain_model.parameters(), lr=1e-3)
    print(f"mucore param groups: {len(mup_opt.param_groups)}; plain: {len(plain_opt.param_groups)}")

    g = torch.Generator().manual_seed(0)
    batch = (
        torch.randn(args.batch, D_IN, generator=g),
        torch.randint(0, N_OUT, (args.batch,), generator=g),
    )
    compare_step_times((mup_model, mup_opt), (plain_model, plain_opt), batch, args.reps,
                       args.steps, warmup=3)


if __name__ == "__main__":
    main()
