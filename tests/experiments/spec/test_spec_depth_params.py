"""The spec accepts the depth tables (CompleteP, depth-µP) and refuses them with SGD, by field; on a width
ladder alone (no depth sweep yet) a CompleteP run trains as µP does (m_L = 1)."""

from __future__ import annotations

from typing import Any

import pytest

from experiments.errors import UserError
from experiments.spec.run import RunConfig
from experiments.spec.sweep import PARAMETRIZATIONS, parse_spec
from experiments.train import train_run


class _Quiet:
    def metrics(self, step: int, values: dict[str, float]) -> None: ...
    def progress(self, step: int, total: int) -> None: ...
    def cancelled(self) -> bool:
        return False


SPEC: dict[str, Any] = {"widths": [32, 64], "base_width": 32, "lrs": [0.01], "steps": 5,
                        "log_every": 5}


def test_depth_tables_are_listable_and_the_default_is_unchanged() -> None:
    assert PARAMETRIZATIONS == ("sp", "mup")
    spec = parse_spec({**SPEC, "parametrizations": ["mup", "completep", "depth-mup"]})
    assert {r.parametrization for r in spec.expand()} == {"mup", "completep", "depth-mup"}
    assert parse_spec(SPEC).parametrizations == ["sp", "mup"]


def test_depth_tables_with_sgd_are_refused_at_the_field() -> None:
    with pytest.raises(UserError, match="parametrizations: parametrization completep cannot "
                                        "train with optimizer sgd.*adam or adamw"):
        parse_spec({**SPEC, "parametrizations": ["completep"], "optimizer": {"name": "sgd"}})
    parse_spec({**SPEC, "parametrizations": ["sp", "mup"], "optimizer": {"name": "sgd"}})


def test_completep_on_a_width_ladder_trains_like_mup() -> None:
    def run(param: str) -> float | None:
        cfg = RunConfig.model_validate({
            "model": {"kind": "mlp", "depth": 3, "residual": True}, "task": {"name": "synthetic"},
            "width": 64, "base_width": 32, "parametrization": param, "lr": 2.0**-8, "seed": 0,
            "steps": 5, "batch_size": 8, "log_every": 5, "device": "cpu"})
        return train_run(cfg, _Quiet()).final_train_loss

    assert run("completep") == run("mup")
