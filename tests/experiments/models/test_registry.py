"""Registered models: a user's `build(width, *, task, **options)` found through the
`MUTRANSFER_MODEL_DIRS` setting or a `mutransfer.models` entry point, checked when a spec
names it, and every bad input refused with a message that names the fix.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import mucore
from experiments.errors import UserError
from experiments.models import CustomModelConfig, build_model
from experiments.models.catalog import list_models, model_config
from experiments.models.registry import get_model
from experiments.spec.sweep import parse_spec
from experiments.tasks import TaskConfig, task_info

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "models" / "tiny_mixer.py"

# A small valid user model on flattened digits, and variations of it that break one rule.
HEADER = """\
import torch
from torch import nn

import mucore


"""
GOOD = HEADER + """\
def build(width: int, *, task, depth: int = 1, scale: float = 1.0, bias: bool = True):
    layers = [nn.Flatten(), nn.Linear(64, width), mucore.InputScale(), nn.ReLU()]
    for _ in range(depth):
        layers += [nn.Linear(width, width, bias=bias), nn.ReLU()]
    return nn.Sequential(*layers, mucore.Readout(width, task.n_outputs))
"""
NAMES_CHANGE = HEADER + """\
class Net(nn.Module):
    def __init__(self, width, n_out):
        super().__init__()
        self.inp = nn.Linear(64, width)
        if width > 32:  # one more layer at larger widths: the names change with width
            self.extra = nn.Linear(width, width)
        self.head = mucore.Readout(width, n_out)


def build(width: int, *, task):
    return Net(width, task.n_outputs)
"""
IGNORES_WIDTH = HEADER + """\
def build(width: int, *, task):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), mucore.Readout(32, 10))
"""
LINEAR_HEAD = HEADER + """\
def build(width: int, *, task):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(),
                         nn.Linear(width, task.n_outputs))
"""
NO_OUTPUT = HEADER + """\
class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.inp = nn.Linear(64, width)
        self.hidden = nn.Linear(width, width)

    def forward(self, x):
        return self.hidden(self.inp(x.flatten(1)))[:, :10]


def build(width: int, *, task):
    return Net(width)
"""
IMPORT_FAILS = HEADER + """\
SIZES = {"small": 32}


raise RuntimeError("boom while importing")
"""


def use_dir(monkeypatch: pytest.MonkeyPatch, folder: Path, **files: str) -> Path:
    """Write model files into `folder` and make it the setting's one model folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        (folder / f"{name}.py").write_text(source)
    monkeypatch.setenv("MUTRANSFER_MODEL_DIRS", str(folder))
    return folder


def spec_for(name: str, **options: object) -> dict[str, object]:
    return {"model": {"kind": "custom", "name": name, "options": options},
            "task": {"name": "digits"}, "widths": [32, 64], "base_width": 32,
            "lrs": [1e-3, 1e-2], "parametrizations": ["mup"], "steps": 4, "log_every": 2,
            "device": "cpu"}


def refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str) -> str:
    use_dir(monkeypatch, tmp_path / "models", bad=source)
    with pytest.raises(UserError) as err:
        parse_spec(spec_for("bad"))
    return str(err.value)


# --- Registration -----------------------------------------------------------------------------


def test_the_example_registers_from_a_folder_in_the_setting(tmp_path, monkeypatch):
    folder = tmp_path / "my models"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "tiny_mixer.py")
    (folder / "_helpers.py").write_text("raise RuntimeError('helpers are not models')\n")
    use_dir(monkeypatch, folder)

    models = {m.name: m for m in list_models()}
    assert {"mlp", "gpt", "cnn", "tiny_mixer"} <= set(models)
    mixer = models["tiny_mixer"]
    assert mixer.kind == "custom" and mixer.source == str(folder / "tiny_mixer.py")
    options = {o.name: o for o in mixer.options}
    assert [(o.type, o.default) for o in options.values()] == [
        ("int", 2), ("int", 2), ("literal", "gelu")]
    assert options["activation"].choices == ("gelu", "relu")
    assert options["depth"].help and "mixer blocks" in options["depth"].help
    assert models["mlp"].kind == "zoo" and "depth" in [o.name for o in models["mlp"].options]


def test_a_spec_on_a_registered_model_builds_it_at_every_width(tmp_path, monkeypatch):
    use_dir(monkeypatch, tmp_path / "models", good=GOOD)
    spec = parse_spec(spec_for("good", depth=2, scale=2))  # an int is a fine float
    assert isinstance(spec.model, CustomModelConfig) and spec.model.options["depth"] == 2
    run = spec.expand()[0]
    assert type(run).model_validate_json(run.model_dump_json()) == run  # what workers receive
    info = task_info(TaskConfig(name="digits"))
    net = build_model(spec.model, info, 128)
    assert isinstance(net[-1], mucore.Readout) and net[-1].in_features == 128
    hidden = [m for m in net if isinstance(m, torch.nn.Linear) and m.in_features == 128]
    assert len(hidden) == 3  # two hidden layers (depth=2) and the readout
    shapes = mucore.infer_base_shapes(lambda w: build_model(spec.model, info, w), 32)
    assert shapes.params[f"{len(net) - 1}.weight"].role is mucore.Role.OUTPUT


def test_a_changed_file_is_imported_again(tmp_path, monkeypatch):
    folder = use_dir(monkeypatch, tmp_path / "models", good=GOOD)
    assert [o.name for o in get_model("good").options] == ["depth", "scale", "bias"]
    (folder / "good.py").write_text(GOOD.replace(", bias: bool = True", "") + "\n# edited\n")
    assert [o.name for o in get_model("good").options] == ["depth", "scale"]


def test_an_installed_package_registers_through_its_entry_point(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    (pkg / "mt_registry_pkg").mkdir(parents=True)
    (pkg / "mt_registry_pkg" / "__init__.py").write_text("")
    shutil.copy(EXAMPLE, pkg / "mt_registry_pkg" / "mixer.py")
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "mt-registry-pkg"
        version = "0.1.0"

        [project.entry-points."mutransfer.models"]
        packaged_mixer = "mt_registry_pkg.mixer:build"

        [tool.setuptools]
        packages = ["mt_registry_pkg"]
        """))
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                        "--no-build-isolation", "--quiet", "--target", str(site), str(pkg)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    monkeypatch.delenv("MUTRANSFER_MODEL_DIRS", raising=False)
    monkeypatch.syspath_prepend(str(site))

    model = get_model("packaged_mixer")
    assert model.source == "entry point mt_registry_pkg.mixer:build (mt-registry-pkg 0.1.0)"
    assert [o.name for o in model.options] == ["depth", "patch", "activation"]
    spec = parse_spec(spec_for("packaged_mixer", depth=1))
    assert spec.model.model_dump()["name"] == "packaged_mixer"


def test_two_sources_of_one_name_are_refused_naming_both(tmp_path, monkeypatch):
    first = use_dir(monkeypatch, tmp_path / "a", good=GOOD)
    second = use_dir(monkeypatch, tmp_path / "b", good=GOOD)
    monkeypatch.setenv("MUTRANSFER_MODEL_DIRS", f"{first}:{second}")
    with pytest.raises(UserError, match="two registered models are named 'good'") as err:
        list_models()
    assert str(first / "good.py") in str(err.value) and str(second / "good.py") in str(err.value)


def test_a_registered_model_cannot_take_a_zoo_name(tmp_path, monkeypatch):
    use_dir(monkeypatch, tmp_path / "models", mlp=GOOD)
    with pytest.raises(UserError, match="has the name of a zoo model: rename it"):
        list_models()


# --- Bad input: each refused with its message -------------------------------------------------


def test_unknown_name_lists_the_registered_models(tmp_path, monkeypatch):
    use_dir(monkeypatch, tmp_path / "models", good=GOOD, other=GOOD)
    with pytest.raises(UserError) as err:
        parse_spec(spec_for("nope"))
    msg = str(err.value)
    assert "model.name: unknown registered model 'nope'" in msg
    assert "registered models are good, other" in msg
    with pytest.raises(UserError, match="zoo models are mlp, gpt.*registered models are good"):
        model_config("nope")


def test_a_file_that_fails_to_import_is_named_with_its_line(tmp_path, monkeypatch):
    msg = refused(monkeypatch, tmp_path, IMPORT_FAILS)
    path = tmp_path / "models" / "bad.py"
    assert f"model file {path} failed to import ({path}, line 10)" in msg
    assert "RuntimeError: boom while importing" in msg


def test_a_syntax_error_is_named_with_its_line(tmp_path, monkeypatch):
    msg = refused(monkeypatch, tmp_path, HEADER + "def build(width, *, task)\n")
    assert "bad.py, line 7" in msg and "SyntaxError" in msg


def test_parameters_that_change_with_width_are_named(tmp_path, monkeypatch):
    msg = refused(monkeypatch, tmp_path, NAMES_CHANGE)
    assert "model: model 'bad'" in msg
    assert "parameters ['extra.bias', 'extra.weight'] exist at only one of widths 32 and 64" in msg


def test_a_model_that_ignores_width_is_refused(tmp_path, monkeypatch):
    msg = refused(monkeypatch, tmp_path, IGNORES_WIDTH)
    assert "builds the same parameters at widths 32 and 64" in msg
    assert "must use `width`" in msg


def test_a_plain_linear_head_is_no_identifiable_readout(tmp_path, monkeypatch):
    msg = refused(monkeypatch, tmp_path, LINEAR_HEAD)
    assert "has no identifiable readout: '3.weight' is output-like" in msg
    assert "sits in a Linear" in msg and "mucore.Readout(width, task.n_outputs)" in msg


def test_a_model_without_an_output_layer_is_told_how_to_mark_it(tmp_path, monkeypatch):
    msg = refused(monkeypatch, tmp_path, NO_OUTPUT)
    assert "has no identifiable readout: no parameter maps the width" in msg
    assert "mucore.Readout" in msg


@pytest.mark.parametrize(("options", "want"), [
    ({"dpth": 2}, "model.options.dpth: unknown option of model 'good': its options are depth, "
                  "scale, bias"),
    ({"depth": "two"}, "model.options.depth: Input should be a valid integer, got 'two': option "
                       "'depth' takes int"),
    ({"depth": 2.5}, "model.options.depth: Input should be a valid integer, got 2.5"),
    ({"bias": "yes"}, "model.options.bias: Input should be a valid boolean, got 'yes'"),
])
def test_unknown_or_mistyped_options_are_refused_by_name(tmp_path, monkeypatch, options, want):
    use_dir(monkeypatch, tmp_path / "models", good=GOOD)
    with pytest.raises(UserError) as err:
        parse_spec(spec_for("good", **options))
    assert want in str(err.value)


def test_a_literal_option_lists_its_choices(tmp_path, monkeypatch):
    shutil.copy(EXAMPLE, use_dir(monkeypatch, tmp_path / "models") / "tiny_mixer.py")
    with pytest.raises(UserError, match="model.options.activation: Input should be 'gelu' or "
                                        "'relu', got 'tanh'"):
        parse_spec(spec_for("tiny_mixer", activation="tanh"))


def test_a_build_that_fails_for_the_task_names_its_line(tmp_path, monkeypatch):
    shutil.copy(EXAMPLE, use_dir(monkeypatch, tmp_path / "models") / "tiny_mixer.py")
    with pytest.raises(UserError) as err:
        parse_spec({**spec_for("tiny_mixer"), "task": {"name": "bytes", "seq_len": 16}})
    msg = str(err.value)
    assert "model: model 'tiny_mixer' failed to build at width 32 for task 'bytes'" in msg
    assert "tiny_mixer.py, line " in msg and "ValueError: tiny_mixer classifies images" in msg


@pytest.mark.parametrize(("source", "want"), [
    (HEADER + "def make(width, *, task):\n    pass\n", "defines no `build` function"),
    (HEADER + "def build(width, *, task, depth: int):\n    pass\n",
     "option 'depth' has no default"),
    (HEADER + "def build(width, *, task, **options):\n    pass\n", "takes *options"),
    (HEADER + "def build(width, task):\n    pass\n", "the task as a keyword-only one"),
    (HEADER + "def build(width, *, task, sizes: list = []):\n    pass\n",
     "option 'sizes' has type <class 'list'>: options must be int, float, bool, str"),
    (HEADER + "def build(width, *, task, depth: int = 2.0):\n    pass\n",
     "option 'depth' defaults to 2.0, which is not of type int"),
])
def test_a_build_that_breaks_the_signature_contract_says_how(tmp_path, monkeypatch, source, want):
    msg = refused(monkeypatch, tmp_path, source)
    assert want in msg and "bad.py" in msg, msg


def test_a_missing_model_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("MUTRANSFER_MODEL_DIRS", str(tmp_path / "absent"))
    with pytest.raises(UserError, match="absent .*does not exist"):
        parse_spec(spec_for("good"))
