"""Step time of mucore's `muon` (MuonAdamW over µP groups) against bare torch Muon + AdamW.

Both train the same MLP (Linear(64, w) -> (depth-1) x hidden Linear(w, w) -> Readout) on the
same batch: mucore's optimizer from `mucore.build_optimizer(model, setup, "muon", lr)`, the
bare one as the torch docs write it (torch.optim.Muon over the 2-D hidden weights,
torch.optim.AdamW over the rest, two objects stepped one after the other). Repetitions are
interleaved (mucore, bare, mucore, ...) in one process so machine load hits both alike. Prints
the median time per step of each, the median of the per-repetition ratios and the ratio of
the fastest repetitions (the least disturbed by other load on a shared machine).

    .venv/bin/python bench/bench_muon_overhead.py [--width 512] [--depth 3] [--batch 64] [--steps 10] [--reps 9] [--cpu-time]
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

D_IN, N_OUT, BASE = 64, 10, 64


class Net(nn.Module):
    """Linear(64, w) -> ReLU -> (depth-1) x [Linear(w, w) -> ReLU] -> Readout(w, 10)."""

    def __init__(self, width: int, depth: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(D_IN, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.readout = mucore.Readout(width, N_OUT)

    def forward(self, x: Tensor) -> Tensor:  # (B, 64) -> (B, 10)
        h = torch.relu(self.inp(x))
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.readout(h)


class _Pair:
    """Two torch optimizers stepped together (the bare setup)."""

    def __init__(self, *opts: torch.optim.Optimizer) -> None:
        self.opts = opts

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.opts:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.opts:
            o.step()


def _model(width: int, depth: int) -> tuple[nn.Module, mucore.MuSetup]:
    torch.manual_seed(0)
    model = Net(width, depth)
    shapes = mucore.infer_base_shapes(lambda w: Net(w, depth), BASE)
    return model, mucore.parametrize(model, shapes, "mup", seed=0)


def _bare(model: nn.Module, lr: float) -> _Pair:
    hidden = [p for n, p in model.named_parameters() if n.startswith("hidden.") and p.ndim == 2]
    ids = {id(p) for p in hidden}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return _Pair(torch.optim.Muon(hidden, lr=lr, weight_decay=0.0),
                 torch.optim.AdamW(rest, lr=lr, weight_decay=0.0))


def time_steps(model: nn.Module, opt: torch.optim.Optimizer | _Pair,
               batch: tuple[Tensor, Tensor], steps: int,
               clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per full step (zero_grad, forward, backward, optimizer step)."""
    x, y = batch
    t0 = clock()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return (clock() - t0) / steps


def main() -> int:
    """Interleave the two, print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--cpu-time", action="store_true",
                        help="time this process's CPU time (steady on a shared machine; run "
                        "with OMP_NUM_THREADS=1) instead of the wall clock")
    args = parser.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(args.batch, D_IN, generator=g),
             torch.randint(0, N_OUT, (args.batch,), generator=g))
    ours_model, setup = _model(args.width, args.depth)
    ours = mucore.build_optimizer(ours_model, setup, "muon", 0.01)
    bare_model, _ = _model(args.width, args.depth)
    bare = _bare(bare_model, 0.01)
    runs: dict[str, tuple[nn.Module, Callable[[], float]]] = {}
    runs["mucore"] = (ours_model, lambda: time_steps(ours_model, ours, batch, args.steps, clock))
    runs["bare"] = (bare_model, lambda: time_steps(bare_model, bare, batch, args.steps, clock))
    for _, fn in runs.values():
        fn()  # warm-up (allocations, momentum buffers)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.reps):
        for name, (_, fn) in runs.items():
            times[name].append(fn())
    ratios = [a / b for a, b in zip(times["mucore"], times["bare"], strict=True)]
    print("$ " + shlex.join([sys.executable, *sys.argv]))
    print(f"torch threads {torch.get_num_threads()}, width {args.width}, depth {args.depth}, "
          f"batch {args.batch}, {args.steps} steps x {args.reps} reps, "
          f"{'CPU time' if args.cpu_time else 'wall clock'}")
    for name, ts in times.items():
        print(f"{name:7s} median {statistics.median(ts) * 1e3:.2f} ms/step, "
              f"fastest {min(ts) * 1e3:.2f}")
    print(f"ratio mucore / bare: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); fastest over fastest "
          f"{min(times['mucore']) / min(times['bare']):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
