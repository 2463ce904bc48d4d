"""The critical batch meter (gradient noise scale, McCandlish et al., 2018, appendix A) on
linear regression with Gaussian inputs and noise, where B_simple is known in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from experiments.doctor.noise_scale import (
    NoiseScaleMeter,
    gradient_sq_norms,
    noise_scale_from_norms,
    noise_scale_warning,
)
from experiments.errors import UserError
from experiments.spec.run import RunConfig
from experiments.spec.sweep import parse_spec
from experiments.train import NullReporter, train_run


def test_the_two_batch_estimator_inverts_the_expected_norms_exactly() -> None:
    # E|G_B|^2 = |G|^2 + tr(Sigma) / B with |G|^2 = 2, tr(Sigma) = 30.
    est = noise_scale_from_norms(2 + 30 / 2, 2, 2 + 30 / 10, 10)
    assert (est.grad_sq, est.trace_sigma, est.b_simple) == pytest.approx((2, 30, 15), rel=1e-12)
    with pytest.raises(ValueError, match="b_small < b_big"):
        noise_scale_from_norms(1.0, 8, 1.0, 8)


def _regression_b_simple(d: int, delta_sq: float, noise_var: float) -> float:
    """Loss 0.5 (x.w - y)^2, x ~ N(0, I_d), y = x.w* + N(0, s^2), delta = w - w*:
    G = delta, Sigma = delta delta^T + (|delta|^2 + s^2) I, so
    tr(Sigma) / |G|^2 = (d + 1) + d s^2 / |delta|^2."""
    return (d + 1) + d * noise_var / delta_sq


@pytest.mark.parametrize("noise_var", [0.0, 1.0])
def test_the_meter_recovers_the_analytic_noise_scale_of_linear_regression(
        noise_var: float) -> None:
    d, b_big = 8, 32
    gen = torch.Generator().manual_seed(0)
    w_star = torch.randn(d, generator=gen)
    w_star /= w_star.norm()  # |delta|^2 = 1 at w = 0
    w = torch.nn.Parameter(torch.zeros(d))

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((x @ w - y) ** 2).mean()

    meter = NoiseScaleMeter(b_small=4, b_big=b_big)
    sums = torch.zeros(2)
    for _ in range(3000):
        x = torch.randn(b_big, d, generator=gen)
        y = x @ w_star + math.sqrt(noise_var) * torch.randn(b_big, generator=gen)
        small, big = gradient_sq_norms(loss_of, [w], x, y, 4)
        sums += torch.stack([small, big])
        meter.add(small, big)
    mean = noise_scale_from_norms(float(sums[0]) / 3000, 4, float(sums[1]) / 3000, b_big)
    expected = _regression_b_simple(d, 1.0, noise_var)  # 9, or 17 with unit noise
    assert mean.b_simple == pytest.approx(expected, rel=0.08)
    assert mean.grad_sq == pytest.approx(1.0, rel=0.08)
    # The meter's running means are the same estimate, accumulated on the device.
    assert meter.estimate().b_simple == pytest.approx(mean.b_simple, rel=1e-4)
    assert math.isnan(NoiseScaleMeter(1, 2).estimate().b_simple)  # nothing measured yet
    assert w.grad is None  # the meter never touches .grad


def test_the_warning_fires_above_the_noise_scale_only() -> None:
    warning = noise_scale_warning(64, 20.0)
    assert warning is not None and "above the gradient noise scale B_simple ~ 20" in warning
    assert noise_scale_warning(16, 20.0) is None
    assert noise_scale_warning(16, math.inf) is None and noise_scale_warning(16, -3.0) is None


class _Metrics(NullReporter):
    def __init__(self) -> None:
        self.rows: list[tuple[int, str, float]] = []

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.rows += [(step, k, v) for k, v in values.items()]


def test_a_run_records_the_noise_scale_at_its_log_points_without_changing_its_losses() -> None:
    data = {"model": {"kind": "mlp", "depth": 2}, "task": {"name": "synthetic"}, "width": 32,
            "base_width": 32, "lr": 2.0**-6, "seed": 0, "steps": 12, "batch_size": 16,
            "log_every": 4, "device": "cpu"}
    measured, plain = _Metrics(), _Metrics()
    train_run(RunConfig.model_validate({**data, "noise_scale": True}), measured)
    train_run(RunConfig.model_validate(data), plain)
    noise = [(s, v) for s, k, v in measured.rows if k == "noise_scale"]
    assert [s for s, _ in noise] == [4, 8, 12]
    assert all(math.isfinite(v) and v > 0 for _, v in noise), noise
    losses = [v for _, k, v in measured.rows if k != "noise_scale"]
    assert losses == pytest.approx([v for _, _, v in plain.rows], rel=1e-6)
    assert "noise_scale" not in RunConfig.model_validate(data).model_dump()


def test_a_spec_asking_for_the_noise_scale_with_batch_1_is_refused() -> None:
    spec = {"model": {"kind": "mlp", "depth": 2}, "task": {"name": "synthetic"},
            "widths": [32], "base_width": 32, "lrs": [0.01], "steps": 4, "batch_size": 1,
            "log_every": 2, "device": "cpu", "noise_scale": True}
    with pytest.raises(UserError, match="noise_scale: noise_scale needs two batch sizes"):
        parse_spec(spec)
    assert all(r.noise_scale for r in parse_spec({**spec, "batch_size": 8}).expand())
