"""Batch and horizon scaling rules (mucore.scaling): exact values and refusals."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from mucore.parametrizations import OptimizerFamily
from mucore.scaling import (
    OptimizerSettings,
    ScalingAxis,
    get_scaling_rule,
    power_rule,
    rule_names,
    scale_settings,
)

BASE = OptimizerSettings(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)


def test_sqrt_rule_moves_lr_betas_and_eps_as_the_sde_rule_says() -> None:
    out = scale_settings(get_scaling_rule("batch", "sqrt"), "adam", BASE, 4.0)
    assert out.lr == pytest.approx(2e-3, rel=1e-12)
    assert out.betas[0] == pytest.approx(1 - 4 * 0.1, rel=1e-12)  # 0.6
    assert out.betas[1] == pytest.approx(1 - 4 * 0.001, rel=1e-12)  # 0.996
    assert out.eps == pytest.approx(0.5e-8, rel=1e-12)
    # A smaller batch (k < 1) moves every setting the other way.
    half = scale_settings(get_scaling_rule("batch", "sqrt"), "adamw", BASE, 0.25)
    assert half.lr == pytest.approx(0.5e-3, rel=1e-12)
    assert half.betas == pytest.approx((0.975, 0.99975), rel=1e-12)
    assert half.eps == pytest.approx(2e-8, rel=1e-12)


def test_linear_power_and_none_rules() -> None:
    sgd = scale_settings(get_scaling_rule("batch", "linear"), "sgd", BASE, 8.0)
    assert sgd.lr == pytest.approx(8e-3, rel=1e-12) and sgd.betas == BASE.betas
    powered = scale_settings(power_rule("batch", 0.75), "adam", BASE, 16.0)
    assert powered.lr == pytest.approx(1e-3 * 8.0, rel=1e-12)  # 16 ** 0.75
    assert (powered.betas, powered.eps) == (BASE.betas, BASE.eps)
    longer = scale_settings(power_rule(ScalingAxis.HORIZON, -0.5), OptimizerFamily.SGD, BASE, 4.0)
    assert longer.lr == pytest.approx(0.5e-3, rel=1e-12)
    for axis in ("batch", "horizon"):
        assert scale_settings(get_scaling_rule(axis, "none"), "adam", BASE, 3.0) == BASE
    assert scale_settings(get_scaling_rule("batch", "sqrt"), "adam", BASE, 1.0) == BASE


def test_a_rule_without_a_row_for_the_optimizer_is_refused_naming_both() -> None:
    with pytest.raises(ValueError, match=r"batch scaling rule 'sqrt' has no entry for "
                                         r"optimizer sgd \(sgd family\)"):
        scale_settings(get_scaling_rule("batch", "sqrt"), "sgd", BASE, 2.0)
    with pytest.raises(ValueError, match=r"'linear' has no entry for optimizer adamw"):
        scale_settings(get_scaling_rule("batch", "linear"), "adamw", BASE, 2.0)
    # Refused even at k = 1: the spec is wrong whatever the rung.
    with pytest.raises(ValueError, match="no entry"):
        scale_settings(get_scaling_rule("batch", "sqrt"), OptimizerFamily.SGD, BASE, 1.0)


def test_unknown_names_bad_ratios_and_negative_betas_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown horizon scaling rule 'sqrt'.*\['none'\]"):
        get_scaling_rule("horizon", "sqrt")
    assert rule_names("batch") == ["none", "sqrt", "linear"]
    with pytest.raises(ValueError, match="finite number > 0"):
        scale_settings(get_scaling_rule("batch", "none"), "adam", BASE, 0.0)
    with pytest.raises(ValueError, match="power must be a finite number"):
        power_rule("batch", math.inf)
    with pytest.raises(ValueError, match=r"beta1 = 1 - 16 x \(1 - 0.9\) = -0.6 < 0"):
        scale_settings(get_scaling_rule("batch", "sqrt"), "adam", BASE, 16.0)


def test_the_rule_tables_import_without_torch() -> None:
    code = "import sys, mucore.scaling; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
