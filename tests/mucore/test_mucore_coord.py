"""Coordinate check (TP5 Appendix D): µP keeps every activation width-independent during the
first steps; SP under Adam does not, and the check names the layers that blow up."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch.nn.functional as F
from mucore_toys import ToyMLP, mlp_batch

import mucore
from mucore.roles import Role

WIDTHS = [64, 128, 256, 512, 1024]
ZERO_READOUT = mucore.HParams(zero_readout=True)


@pytest.fixture(scope="module")
def shapes() -> mucore.BaseShapes:
    return mucore.infer_base_shapes(ToyMLP, 64)


def _check(shapes, param, optimizer, lr, hparams=ZERO_READOUT, **kw) -> mucore.CoordCheckResult:
    return mucore.coord_check(
        ToyMLP, shapes, WIDTHS, mlp_batch(32), F.cross_entropy, param, hparams, optimizer, lr, **kw
    )


@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-2), ("sgd", 1.0)])
def test_mup_passes(shapes, optimizer, lr):
    result = _check(shapes, "mup", optimizer, lr)
    assert result.verdict == "pass", result.offenders
    modules = {"inp", "input_scale", "act1", "hid", "norm", "act2", "readout"}
    assert {s.module for s in result.slopes} == modules
    assert len(result.slopes) == len(modules) * 5
    assert all(abs(s.slope) <= 0.15 for s in result.slopes)
    assert result.max_abs_slope == max(abs(s.slope) for s in result.slopes)
    assert len(result.records) == len(WIDTHS) * len(modules) * 5
    # Zero readout: the output is exactly 0 at step 1 (slope 0), non-zero once trained.
    assert all(r.value == 0.0 for r in result.records if r.module == "readout" and r.step == 1)
    assert all(r.value > 0.0 for r in result.records if r.module == "readout" and r.step == 2)
    # The activations did move during the 5 steps (the check is not of a frozen model).
    act = {(r.width, r.step): r.value for r in result.records if r.module == "hid"}
    assert abs(act[(1024, 5)] / act[(1024, 1)] - 1) > 0.05


def test_sp_adam_fails_naming_the_readout(shapes):
    result = _check(shapes, "sp", "adam", 1e-2)
    assert result.verdict == "fail"
    assert "readout" in result.offenders
    # SP's logits grow ~ linearly in width after one Adam step.
    assert result.slope("readout", 2) > 0.7
    assert result.offenders[0] == max(result.offenders, key=result.worst_slope)


def test_sp_sgd_fails_too(shapes):
    result = _check(shapes, "sp", "sgd", 1.0)
    assert result.verdict == "fail" and "readout" in result.offenders


def test_a_broken_rule_is_caught(shapes):
    # µP with the hidden Adam LR left at lr instead of lr / m: the hidden layer's output grows.
    hidden = mucore.MUP.rules[Role.HIDDEN]
    broken = dataclasses.replace(
        mucore.MUP,
        name="mup-no-hidden-lr",
        rules={
            **mucore.MUP.rules,
            Role.HIDDEN: dataclasses.replace(hidden, lr_exp={**hidden.lr_exp, "adam": 0.0}),
        },
    )
    result = _check(shapes, broken, "adam", 1e-2)
    assert result.verdict == "fail"
    assert "hid" in result.offenders and result.slope("hid", 5) > 0.3
    assert result.param == "mup-no-hidden-lr"


def test_nonzero_readout_shrinks_like_inverse_sqrt_m_at_init(shapes):
    # Table 8 form: readout init std constant, input x alpha_out / m -> output ~ 1/sqrt(m).
    result = _check(shapes, "mup", "adam", 1e-2, hparams=mucore.HParams())
    assert result.slope("readout", 1) == pytest.approx(-0.5, abs=0.1)
    assert result.offenders == ["readout"]


def test_log2_slope_rules():
    assert mucore.log2_slope([64, 128, 256], [1.0, 2.0, 4.0]) == pytest.approx(1.0)
    assert mucore.log2_slope([64, 256], [3.0, 1.5]) == pytest.approx(-0.5)
    assert mucore.log2_slope([64, 128], [0.0, 0.0]) == 0.0
    assert mucore.log2_slope([64, 128], [0.0, 1.0]) == math.inf
    assert mucore.log2_slope([64, 128], [1.0, math.nan]) == math.inf


def test_bad_inputs(shapes):
    batch = mlp_batch(8)
    with pytest.raises(ValueError, match="widths must increase: got 64 after 128"):
        mucore.coord_check(ToyMLP, shapes, [128, 64], batch, F.cross_entropy)
    with pytest.raises(ValueError, match="at least two widths"):
        mucore.coord_check(ToyMLP, shapes, [64], batch, F.cross_entropy)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        mucore.coord_check(ToyMLP, shapes, [64, 128], batch, F.cross_entropy, steps=0)


def test_to_dict_is_the_json_contract(shapes):
    result = mucore.coord_check(
        ToyMLP, shapes, [64, 128], mlp_batch(8), F.cross_entropy, "mup", ZERO_READOUT, steps=2
    )
    d = json.loads(json.dumps(result.to_dict()))
    assert d["param"] == "mup" and d["verdict"] == result.verdict
    assert d["max_abs_slope"] == pytest.approx(result.max_abs_slope)
    assert set(d["modules"][0]) == {"module", "step", "slope"}
    assert set(d["records"][0]) == {"width", "module", "step", "value"}
    assert len(d["modules"]) == 7 * 2 and d["offenders"] == []
