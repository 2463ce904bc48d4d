"""Training one run with Muon and Lion: the worker builds mucore's optimizer from the spec's
block (Muon's adjustment, momentum and decay included), learns, and is deterministic."""

from __future__ import annotations

import math
from typing import Any

import pytest
from test_train import RecordingReporter, make_run

import mucore
from experiments import train as train_module
from experiments.train import train_run

OPTIMIZERS = [{"name": "muon"},
              {"name": "muon", "adjust_lr_fn": "match_rms_adamw", "weight_decay": 0.1,
               "muon_momentum": 0.9},
              {"name": "lion", "betas": [0.9, 0.99], "weight_decay": 0.1}]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=["muon", "muon-rms", "lion"])
def test_muon_and_lion_runs_learn_and_repeat(optimizer: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []
    real = mucore.build_optimizer

    def spy(*args: Any, **kwargs: Any) -> Any:
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(train_module.mucore, "build_optimizer", spy)
    lr = 2.0**-9 if optimizer["name"] == "lion" else 2.0**-6
    a, b = RecordingReporter(), RecordingReporter()
    ra = train_run(make_run(optimizer=optimizer, lr=lr), a)
    rb = train_run(make_run(optimizer=optimizer, lr=lr), b)
    assert ra.state == "done" and ra.final_train_loss is not None
    assert math.isfinite(ra.final_train_loss) and ra.final_train_loss < ra.initial_loss
    assert rb.final_train_loss == pytest.approx(ra.final_train_loss, rel=1e-5)
    opt = built[0]
    if optimizer["name"] == "muon":
        assert isinstance(opt, mucore.MuonAdamW)
        assert opt.adjust_lr_fn == optimizer.get("adjust_lr_fn", "original")
        hidden = [g for g in opt.param_groups if g["update"] == "muon"]
        assert hidden and all(g["momentum"] == optimizer.get("muon_momentum", 0.95)
                              for g in hidden)
    else:
        assert isinstance(opt, mucore.Lion) and opt.param_groups[0]["betas"] == (0.9, 0.99)
