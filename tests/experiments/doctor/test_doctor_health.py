"""The doctor's health checks on small user-style models: a norm gain the model's own init
zeroes is dead and blamed on the model (mucore kept it), an unused parameter is a warning, a
zero gain mucore's parametrize made is blamed on mucore, and a model whose logits do not fit
the task's targets is refused naming --task."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import mucore
import mucore.init as mucore_init
from experiments.doctor.diagnose import dynamic_findings
from experiments.doctor.dynamic import Trial
from experiments.doctor.health import probe_task
from experiments.errors import UserError

WIDTHS = [32, 64, 128]
D_IN, N_OUT = 12, 5


class NormMLP(nn.Module):
    """Linear(12, w) -> LayerNorm -> ReLU -> Linear(w, w) -> ReLU -> Readout(w, 5)."""

    def __init__(self, width: int, zero_gain: bool = False, unused: bool = False) -> None:
        super().__init__()
        self.inp = nn.Linear(D_IN, width)
        self.norm = nn.LayerNorm(width)
        if zero_gain:  # the user's own init kills the layer
            nn.init.zeros_(self.norm.weight)
        self.fc = nn.Linear(width, width)
        self.head = mucore.Readout(width, N_OUT)
        if unused:  # declared, never used in forward
            self.spare = nn.Parameter(torch.ones(width))

    def forward(self, x: Tensor) -> Tensor:  # (B, 12) -> (B, 5)
        h = torch.relu(self.norm(self.inp(x)))
        return self.head(torch.relu(self.fc(h)))


def trial(**kw: bool) -> Trial:
    def factory(w: int) -> nn.Module:
        return NormMLP(w, **kw)

    g = torch.Generator().manual_seed(1)
    batch = torch.randn(32, D_IN, generator=g), torch.randint(0, N_OUT, (32,), generator=g)
    return Trial(factory, mucore.infer_base_shapes(factory, WIDTHS[0], WIDTHS[1]),
                 mucore.get_parametrization("mup"), WIDTHS, batch, F.cross_entropy, steps=10)


def _checks(t: Trial) -> dict[str, mucore.Finding]:
    return {f.check: f for f in dynamic_findings(t, "mup")}


def test_a_healthy_model_with_a_norm_passes_both_health_checks():
    checks = _checks(trial())
    assert checks["init_kept"].status == "pass" and checks["dead"].status == "pass"


def test_a_gain_the_model_zeroes_itself_is_dead_and_not_blamed_on_mucore():
    checks = _checks(trial(zero_gain=True))
    dead = checks["dead"]
    assert dead.status == "fail" and "'norm.weight'" in dead.message
    assert "they start at zero" in dead.message and "mucore" not in dead.fix
    assert checks["init_kept"].status == "pass"  # mucore kept the model's own (zero) init


def test_an_unused_parameter_is_a_warning():
    dead = _checks(trial(unused=True))["dead"]
    assert dead.status == "warn" and "'spare'" in dead.message
    assert dead.evidence["frozen"] == ["spare"]


def test_a_gain_parametrize_zeroes_is_blamed_on_mucore(monkeypatch):
    reinit = mucore_init._reinit

    def zeroing(model: nn.Module, ctx: object, seed: int) -> None:
        reinit(model, ctx, seed)
        with torch.no_grad():
            model.get_parameter("norm.weight").zero_()

    monkeypatch.setattr(mucore_init, "_reinit", zeroing)
    checks = _checks(trial())
    assert checks["init_kept"].status == "fail"
    assert checks["init_kept"].evidence["changed"][0]["param"] == "norm.weight"
    assert "mucore.parametrize set them to zero" in checks["dead"].message
    assert "mucore" in checks["dead"].fix


def test_logits_that_do_not_fit_the_targets_are_refused_naming_the_task():
    g = torch.Generator().manual_seed(0)
    batch = torch.randn(2, D_IN, generator=g), torch.randint(0, 7, (2, 3), generator=g)
    with pytest.raises(UserError, match=r"outputs \(2, 5\) but task 'toy' has targets "
                       r"\(2, 3\).*--task"):
        probe_task(NormMLP, batch, F.cross_entropy, 32, "norm_mlp", "toy")
