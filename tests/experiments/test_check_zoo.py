"""`mucore.check` on every zoo model, SP and µP: no false alarm (SP is reported as SP), and a
plain Adam over a µP zoo model is caught."""

from __future__ import annotations

import pytest
import torch

import mucore
from experiments.coordcheck.check import DEFAULT_TASKS, default_model_config
from experiments.models import LlamaConfig, ModelConfig, model_factory
from experiments.tasks import task_info

ZOO: dict[str, ModelConfig] = {
    "mlp": default_model_config("mlp"),
    "gpt": default_model_config("gpt"),
    "cnn": default_model_config("cnn"),
    "llama": default_model_config("llama"),
    "llama-tied": LlamaConfig(tie_embeddings=True),
}


def _model(name: str, param: str) -> tuple[torch.nn.Module, mucore.MuSetup]:
    cfg = ZOO[name]
    factory = model_factory(cfg, task_info(DEFAULT_TASKS[cfg.kind]))
    shapes = mucore.infer_base_shapes(factory, 64)
    model = factory(256)
    return model, mucore.parametrize(model, shapes, param)


@pytest.mark.parametrize("param", ["sp", "mup"])
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_models_are_healthy(name, param):
    model, setup = _model(name, param)
    opt = mucore.build_optimizer(model, setup, "adamw", 1e-2, weight_decay=0.1)
    d = mucore.check(model, opt, mucore.relative_schedule(opt, mucore.warmup_cosine(2, 10)))
    assert d.verdict == "healthy", d.failed()
    assert {f.status for f in d.findings} <= ({"pass", "warn"} if param == "mup" else {"pass"})
    assert ("SP" in d.finding("parametrization").message) == (param == "sp")


@pytest.mark.parametrize("name", list(ZOO))
def test_plain_adam_on_a_mup_zoo_model_is_caught(name):
    model, _ = _model(name, "mup")
    d = mucore.check(model, torch.optim.Adam(model.parameters(), lr=1e-3))
    assert [f.check for f in d.failed()] == ["optimizer"]
