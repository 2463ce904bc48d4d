"""A registered model declares the roles its shapes cannot tell (a module-level `ROLES` mapping
in its file): a fixed-size matrix that mixes the 8 rows of a digit image is refused without
it, and swept with it as vector-like (µP keeps its base LR and its own init)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mucore
from experiments.errors import UserError
from experiments.models.configs import CustomModelConfig
from experiments.models.zoo import model_factory
from experiments.spec.sweep import parse_spec
from experiments.tasks import TaskConfig, task_info

MIXER = """\
import torch
from torch import nn

import mucore

{roles}

class RowMixer(nn.Module):
    def __init__(self, width, n_out):
        super().__init__()
        self.rows = nn.Linear(8, 8, bias=False)  # mixes the 8 image rows: never grows
        self.inp = nn.Linear(8, width)
        self.head = mucore.Readout(width, n_out)

    def forward(self, x):  # (B, 1, 8, 8)
        x = self.rows(x.flatten(1, 2).transpose(1, 2))  # (B, 8 cols, 8 rows)
        return self.head(torch.relu(self.inp(x)).mean(1))


def build(width: int, *, task):
    return RowMixer(width, task.n_outputs)
"""


def _register(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, roles: str) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "row_mixer.py").write_text(MIXER.format(roles=roles))
    monkeypatch.setenv("MUTRANSFER_MODEL_DIRS", str(folder))


def _spec() -> dict[str, object]:
    return {"model": {"kind": "custom", "name": "row_mixer"}, "task": {"name": "digits"},
            "widths": [32, 64], "base_width": 32, "lrs": [1e-3], "parametrizations": ["mup"],
            "steps": 2, "log_every": 1, "device": "cpu"}


def test_a_fixed_matrix_is_refused_with_the_roles_mapping_as_the_fix(tmp_path, monkeypatch):
    _register(monkeypatch, tmp_path, "")
    with pytest.raises(UserError) as err:
        parse_spec(_spec())
    msg = str(err.value)
    assert "'rows.weight' is a matrix with no width-like dimension" in msg
    assert "ROLES = {'<parameter>': 'vector'}" in msg


def test_the_files_roles_mapping_sets_the_role(tmp_path, monkeypatch):
    _register(monkeypatch, tmp_path, 'ROLES = {"rows.weight": "vector"}')
    spec = parse_spec(_spec())  # accepted
    assert isinstance(spec.model, CustomModelConfig)
    info = task_info(TaskConfig(name="digits"))
    factory = model_factory(spec.model, info)
    shapes = mucore.infer_base_shapes(factory, 32)
    assert shapes.params["rows.weight"].role is mucore.Role.VECTOR
    model = factory(128)
    own = model.rows.weight.detach().clone()
    setup = mucore.parametrize(model, shapes, "mup")
    assert torch.equal(model.rows.weight, own)  # vector-like: the model's own init
    assert setup.parametrization.lr_mult(setup.param("rows.weight"), "sgd") == 1.0


def test_a_malformed_roles_mapping_is_refused_naming_it(tmp_path, monkeypatch):
    _register(monkeypatch, tmp_path, 'ROLES = {"rows.weight": "fixed"}')
    with pytest.raises(UserError, match=r"ROLES must map parameter names to one of"):
        parse_spec(_spec())
