"""Weight decay under the depth tables (docs/depth.md): with AdamW, the "coupled" mode keeps the
per-step shrink lr_g * wd_g = lr * wd in every group, so a block's hidden weight decays with
wd x m_N x m_L^(1 - alpha) (the inverse of its LR factor 1/m_N x m_L^(alpha - 1)); the
"independent" mode shrinks every group by wd per step whatever its LR. The expected numbers are
written out from those formulas at several (m_N, m_L), and checked on a real AdamW step."""

from __future__ import annotations

from typing import Literal

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import mucore

BASE_WIDTH, BASE_DEPTH, LR, WD = 16, 2, 1e-2, 0.1
ALPHA = {"completep": 1.0, "depth-mup": 0.5}


class Block(nn.Module):
    """h + b * W2 relu(W1 LN(h)), b the residual branch multiplier."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)
        self.proj = nn.Linear(width, width)
        self.branch = mucore.ResidualBranch()

    def forward(self, h: Tensor) -> Tensor:  # (B, w) -> (B, w)
        return h + self.branch(self.proj(F.relu(self.fc(self.norm(h)))))


class Net(nn.Module):
    """Linear(6, w) -> depth x Block -> LN -> Readout(w, 3)."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.inp = nn.Linear(6, width)
        self.blocks = nn.ModuleList(Block(width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.readout = mucore.Readout(width, 3)

    def forward(self, x: Tensor) -> Tensor:  # (B, 6) -> (B, 3)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h)
        return self.readout(self.norm(h))


def _optimizer(param: str, width: int, depth: int,
               wd_mode: Literal["coupled", "independent"]) -> torch.optim.Optimizer:
    shapes = mucore.infer_base_shapes(Net, BASE_WIDTH, base_depth=BASE_DEPTH)
    model = Net(width, depth)
    setup = mucore.parametrize(model, shapes, param, seed=0)
    return mucore.build_optimizer(model, setup, "adamw", LR, weight_decay=WD, wd_mode=wd_mode,
                                  decay_vectors=True)


def _by_name(opt: torch.optim.Optimizer) -> dict[str, dict]:
    return {n: g for g in opt.param_groups for n in g["param_names"]}


@pytest.mark.parametrize("param", ["completep", "depth-mup"])
@pytest.mark.parametrize(("width", "depth"), [(16, 8), (64, 2), (64, 8), (128, 16)])
def test_coupled_decay_is_the_inverse_of_the_lr_factor(param: str, width: int, depth: int) -> None:
    m_n, m_l, alpha = width / BASE_WIDTH, depth / BASE_DEPTH, ALPHA[param]
    groups = _by_name(_optimizer(param, width, depth, "coupled"))
    hidden, vector = groups["blocks.1.fc.weight"], groups["blocks.1.norm.weight"]
    assert hidden["weight_decay"] == pytest.approx(WD * m_n * m_l ** (1 - alpha))
    assert hidden["lr"] == pytest.approx(LR / m_n * m_l ** (alpha - 1))
    assert vector["weight_decay"] == pytest.approx(WD * m_l ** (1 - alpha))
    for outside in ("inp.weight", "readout.weight", "norm.weight"):  # as µP: lr and wd as given
        assert groups[outside]["weight_decay"] == pytest.approx(WD)
    for g in groups.values():
        assert g["lr"] * g["weight_decay"] == pytest.approx(LR * WD)


@pytest.mark.parametrize("param", ["completep", "depth-mup"])
def test_independent_decay_shrinks_by_wd_per_step_whatever_the_lr(param: str) -> None:
    for g in _optimizer(param, 64, 8, "independent").param_groups:
        assert g["lr"] * g["weight_decay"] == pytest.approx(WD)


@pytest.mark.parametrize(("param", "mode", "shrink"),
                         [("completep", "coupled", LR * WD), ("depth-mup", "coupled", LR * WD),
                          ("depth-mup", "independent", WD)])
def test_a_real_adamw_step_shrinks_every_weight_alike(
    param: str, mode: Literal["coupled", "independent"], shrink: float
) -> None:
    """With zero gradients AdamW's step is the decay alone: p <- (1 - lr_g wd_g) p."""
    opt = _optimizer(param, 64, 8, mode)
    params = [p for g in opt.param_groups for p in g["params"]]
    before = [p.detach().clone() for p in params]
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    for p, b in zip(params, before, strict=True):
        nonzero = b != 0
        ratio = p.detach()[nonzero] / b[nonzero]
        torch.testing.assert_close(ratio, torch.full_like(ratio, 1 - shrink))
    # and the decay really differs across groups' wd when the LR does (depth-mup, m_L = 4)
    wds = {round(g["weight_decay"], 6) for g in opt.param_groups}
    assert len(wds) > 1
