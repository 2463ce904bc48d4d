"""At the base width µP and SP are the same model, bit for bit (TP5 Table 8 reduces to SP at
m = 1): same init, same outputs, same parameters after identical optimizer steps."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from mucore_toys import ToyMLP, ToyTransformer, lm_batch, lm_loss, mlp_batch
from torch import Tensor, nn

import mucore

BASE = 32
HP = mucore.HParams(init_std=0.8, output_mult=2.0, input_mult=1.5, attn_mult=1.3)
OPTIMIZERS = [
    ("adam", {}),
    ("adamw", {"weight_decay": 0.1}),
    ("sgd", {"momentum": 0.9}),
]
CASES: list[tuple[type[nn.Module], Callable[[], tuple[Tensor, Tensor]], Callable]] = [
    (ToyMLP, mlp_batch, F.cross_entropy),
    (ToyTransformer, lm_batch, lm_loss),
]


def _train(
    factory: type[nn.Module],
    width: int,
    param: str,
    opt_name: str,
    kwargs: dict,
    batch: tuple[Tensor, Tensor],
    loss_fn: Callable,
    steps: int = 4,
) -> tuple[nn.Module, list[Tensor]]:
    shapes = mucore.infer_base_shapes(factory, BASE)
    model = factory(width)
    setup = mucore.parametrize(model, shapes, param, HP, seed=3)
    opt = mucore.build_optimizer(model, setup, opt_name, 0.05, **kwargs)
    outputs = []
    x, y = batch
    for _ in range(steps):
        opt.zero_grad()
        out = model(x)
        outputs.append(out.detach().clone())
        loss_fn(out, y).backward()
        opt.step()
    return model, outputs


@pytest.mark.parametrize("opt_name,kwargs", OPTIMIZERS, ids=[o for o, _ in OPTIMIZERS])
@pytest.mark.parametrize("factory,make_batch,loss_fn", CASES, ids=["mlp", "transformer"])
def test_mup_equals_sp_bit_for_bit_at_base_width(factory, make_batch, loss_fn, opt_name, kwargs):
    batch = make_batch()
    mup_model, mup_out = _train(factory, BASE, "mup", opt_name, kwargs, batch, loss_fn)
    sp_model, sp_out = _train(factory, BASE, "sp", opt_name, kwargs, batch, loss_fn)
    for a, b in zip(mup_out, sp_out, strict=True):
        assert torch.equal(a, b)
    # Training moved the weights (the comparison is not between two untouched inits).
    assert not torch.equal(mup_out[0], mup_out[-1])
    sp_params = dict(sp_model.named_parameters())
    for name, p in mup_model.named_parameters():
        assert torch.equal(p, sp_params[name]), name


@pytest.mark.parametrize("factory,make_batch,loss_fn", CASES, ids=["mlp", "transformer"])
def test_mup_and_sp_differ_away_from_base_width(factory, make_batch, loss_fn):
    # Guards the test above against a vacuous pass (e.g. µP rules never applied).
    batch = make_batch()
    _, mup_out = _train(factory, 4 * BASE, "mup", "adam", {}, batch, loss_fn, steps=2)
    _, sp_out = _train(factory, 4 * BASE, "sp", "adam", {}, batch, loss_fn, steps=2)
    assert not torch.allclose(mup_out[0], sp_out[0])
    assert not torch.allclose(mup_out[1], sp_out[1])


def test_attention_scale_rules():
    # µP: alpha_attn * sqrt(d0) / d; SP: alpha_attn / sqrt(d); equal (bitwise) at d == d0.
    assert mucore.attention_scale(64, 16, attn_mult=2.0) == pytest.approx(2.0 * 4 / 64)
    assert mucore.attention_scale(64, 16, attn_mult=2.0, use_mup=False) == pytest.approx(2.0 / 8)
    assert mucore.attention_scale(24, 24) == mucore.attention_scale(24, 24, use_mup=False)
    model = ToyTransformer(4 * BASE)  # d_head 64, base d_head 16
    mucore.parametrize(model, mucore.infer_base_shapes(ToyTransformer, BASE), "mup", HP)
    assert model.attn.scale == pytest.approx(1.3 * 4 / 64)
