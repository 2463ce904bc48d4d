"""Optimizer groups: weight-decay modes, eps scaling, relative schedules, and the describe table
agreeing with the groups the optimizer really holds."""

from __future__ import annotations

import pytest
import torch
from mucore_toys import ToyMLP, ToyTransformer

import mucore

BASE, M = 32, 8
LR, WD = 0.1, 0.05


@pytest.fixture
def wide():
    shapes = mucore.infer_base_shapes(ToyMLP, BASE)
    model = ToyMLP(BASE * M)
    return model, mucore.parametrize(model, shapes, "mup", seed=0)


def _zero_grad_step_factors(model, opt) -> dict[str, float]:
    """One AdamW step on zero gradients: the only change is decay, p <- p * (1 - lr_g * wd_g)."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    factors = {}
    for n, p in model.named_parameters():
        nz = before[n] != 0
        if nz.any():
            ratio = p.detach()[nz] / before[n][nz]
            assert torch.allclose(ratio, ratio[0].expand_as(ratio)), n  # a uniform shrink
            factors[n] = ratio[0].item()
    return factors


def test_coupled_weight_decay_shrinks_every_group_by_lr_times_wd(wide):
    model, setup = wide
    opt = mucore.build_optimizer(model, setup, "adamw", LR, weight_decay=WD, wd_mode="coupled")
    hidden = next(g for g in opt.param_groups if g["role"] == "hidden")
    assert hidden["lr"] == pytest.approx(LR / M) and hidden["weight_decay"] == pytest.approx(WD * M)
    factors = _zero_grad_step_factors(model, opt)
    for name in ("inp.weight", "hid.weight", "readout.weight"):
        assert factors[name] == pytest.approx(1 - LR * WD, abs=1e-6), name
    # Vectors are not decayed unless asked (norm gains stay at 1).
    assert factors["norm.weight"] == 1.0


def test_independent_weight_decay_shrinks_by_wd_regardless_of_lr(wide):
    model, setup = wide
    opt = mucore.build_optimizer(
        model, setup, "adamw", LR, weight_decay=WD, wd_mode="independent", decay_vectors=True
    )
    factors = _zero_grad_step_factors(model, opt)
    for name in ("inp.weight", "hid.weight", "readout.weight", "norm.weight"):
        assert factors[name] == pytest.approx(1 - WD, abs=1e-6), name


def test_bad_optimizer_arguments():
    shapes = mucore.infer_base_shapes(ToyMLP, BASE)
    model = ToyMLP(BASE)
    setup = mucore.parametrize(model, shapes, "mup")
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'"):
        mucore.build_optimizer(model, setup, "adagrad", LR)
    with pytest.raises(ValueError, match="learning rate must be"):
        mucore.build_optimizer(model, setup, "adam", 0.0)
    with pytest.raises(ValueError, match="wd_mode"):
        mucore.build_optimizer(model, setup, "adamw", LR, weight_decay=0.1, wd_mode="decoupled")


def test_scale_eps_divides_hidden_eps_by_m(wide):
    model, setup = wide
    opt = mucore.build_optimizer(model, setup, "adam", LR, eps=1e-6, scale_eps=True)
    eps = {g["role"]: g["eps"] for g in opt.param_groups}
    assert eps["hidden"] == pytest.approx(1e-6 / M)
    assert eps["input"] == eps["output"] == eps["vector"] == 1e-6
    plain = mucore.build_optimizer(model, setup, "adam", LR, eps=1e-6)
    assert {g["eps"] for g in plain.param_groups} == {1e-6}


def test_relative_schedule_keeps_group_ratios(wide):
    model, setup = wide
    opt = mucore.build_optimizer(model, setup, "adam", LR)
    sched = mucore.relative_schedule(opt, mucore.warmup_cosine(warmup_steps=3, total_steps=10))
    initial = [g["lr"] for g in opt.param_groups]
    seen_factors = set()
    for _ in range(8):
        opt.step()
        sched.step()
        factors = [g["lr"] / lr0 for g, lr0 in zip(opt.param_groups, initial, strict=True)]
        assert max(factors) - min(factors) < 1e-12  # every group scaled by the same factor
        seen_factors.add(round(factors[0], 6))
        lrs = {g["role"]: g["lr"] for g in opt.param_groups}
        assert lrs["hidden"] / lrs["input"] == pytest.approx(1 / M)
    assert len(seen_factors) > 4  # the schedule really moved the LR


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("param", ["mup", "sp"])
def test_describe_rows_match_optimizer_groups(optimizer, param):
    shapes = mucore.infer_base_shapes(ToyTransformer, BASE)
    model = ToyTransformer(BASE * M)
    own = {n: p.detach().clone() for n, p in model.named_parameters()}
    setup = mucore.parametrize(model, shapes, param, mucore.HParams(output_mult=2.0), seed=0)
    rows = mucore.describe(setup, optimizer)
    opt = mucore.build_optimizer(model, setup, optimizer, LR)
    group_of = {n: g for g in opt.param_groups for n in g["param_names"]}
    params = dict(model.named_parameters())
    assert [r.name for r in rows] == list(params)
    for row in rows:
        g = group_of[row.name]
        assert g["role"] == row.role
        assert g["lr"] == pytest.approx(LR * row.lr_mult), row.name
        assert row.shape == list(params[row.name].shape)
        p = params[row.name]
        if row.init == "normal":
            assert p.std().item() == pytest.approx(row.init_std, rel=0.1), row.name
        elif row.init == "own":  # vector-like: parametrize kept the model's values
            assert row.role == "vector" and row.init_std == 0.0
            assert torch.equal(p, own[row.name]), row.name
        else:
            assert row.init == "zeros" and torch.count_nonzero(p) == 0
    by_name = {r.name: r for r in rows}
    assert by_name["readout.weight"].forward_mult == model.readout.forward_mult
    expected_hidden = 1 / M if (param, optimizer) == ("mup", "adam") else 1.0
    assert by_name["attn.qkv.weight"].lr_mult == pytest.approx(expected_hidden)
