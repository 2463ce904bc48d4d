"""A registered model through the command line: `models`, coord-check, describe, a
sweep whose runs execute in worker processes, analyze, export, verify, and the exported bundle
applied to the user's own model at 4x the widest width. Bad input exits 2 and stores nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import mucore
from experiments.tasks import TaskConfig, task_info

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "models" / "tiny_mixer.py"
WIDTHS = [16, 32]
TARGET = 4 * WIDTHS[-1]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A temporary model folder holding the example, as a user would set one up."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "tiny_mixer.py")
    return folder


def cli(model_dir: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m experiments ARGS` with the setting pointing at `model_dir` (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k != "MUTRANSFER_MODEL_DIRS"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if model_dir is not None:
        env["MUTRANSFER_MODEL_DIRS"] = str(model_dir)
    return subprocess.run([sys.executable, "-m", "experiments", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def mixer_spec(**model: Any) -> dict[str, Any]:
    return {
        "name": "mixer",
        "model": {"kind": "custom", "name": "tiny_mixer", "options": {"depth": 1}, **model},
        "task": {"name": "digits"},
        "widths": WIDTHS,
        "base_width": WIDTHS[0],
        "parametrizations": ["mup"],
        "lrs": [2.0**-8, 2.0**-6, 2.0**-4],
        "seeds": [0],
        "steps": 10,
        "batch_size": 16,
        "log_every": 5,
        "device": "cpu",
    }


def test_models_lists_the_zoo_and_the_registered_model(model_dir):
    r = cli(model_dir, "models", "--json")
    assert r.returncode == 0, r.stderr
    models = {m["name"]: m for m in json.loads(r.stdout)["models"]}
    assert models["mlp"]["kind"] == "zoo" and models["tiny_mixer"]["kind"] == "custom"
    assert models["tiny_mixer"]["source"] == str(model_dir / "tiny_mixer.py")
    assert [{k: o[k] for k in ("name", "type", "default")} for o in models["tiny_mixer"]["options"]] \
        == [{"name": "depth", "type": "int", "default": 2},
            {"name": "patch", "type": "int", "default": 2},
            {"name": "activation", "type": "literal", "default": "gelu"}]
    assert {"name": "depth", "type": "int", "default": 2} in [
        {k: o[k] for k in ("name", "type", "default")} for o in models["mlp"]["options"]]
    out = model_dir.parent / "listing" / "models.json"  # --json OUT, as every command takes it
    r = cli(model_dir, "models", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["models"] == list(models.values())
    table = cli(model_dir, "models")
    assert table.returncode == 0
    line = next(ln for ln in table.stdout.splitlines() if ln.startswith("tiny_mixer"))
    assert "custom" in line and "activation: gelu|relu = 'gelu'" in line


def test_coord_check_and_describe_take_a_registered_name(model_dir, tmp_path):
    out = tmp_path / "cc.json"
    r = cli(model_dir, "coord-check", "--model", "tiny_mixer", "--option", "depth=1",
            "--widths", "16,32,64", "--steps", "2", "--json", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["args"]["model"] == "tiny_mixer"
    assert result["args"]["model_block"]["options"] == {"depth": 1}
    assert {"head", "embed"} <= {row["module"] for row in result["modules"]}

    r = cli(model_dir, "describe", "--model", "tiny_mixer", "--option", "activation=relu",
            "--width", "128", "--base-width", "16", "--json", str(tmp_path / "d.json"))
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads((tmp_path / "d.json").read_text())["rows"]}
    assert rows["head.weight"]["role"] == "output" and rows["head.weight"]["width_mult"] == 8
    assert rows["embed.weight"]["role"] == "input"


def test_a_registered_model_sweep_runs_analyses_exports_and_applies(model_dir, tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(mixer_spec()))
    db = str(tmp_path / "store.duckdb")
    r = cli(model_dir, "sweep", "run", str(spec_path), "--db", db, "--workers", "1")
    assert r.returncode == 0, r.stderr
    sweep_id = r.stdout.strip().splitlines()[-1]

    runs_path = tmp_path / "runs.json"
    assert cli(model_dir, "runs", sweep_id, "--db", db, "--json", str(runs_path)).returncode == 0
    runs = json.loads(runs_path.read_text())
    assert len(runs) == len(WIDTHS) * 3
    assert {run["state"] for run in runs} <= {"done", "diverged"}, runs

    report_path = tmp_path / "report.json"
    r = cli(model_dir, "analyze", sweep_id, "--db", db, "--json", str(report_path))
    assert r.returncode == 0, r.stderr
    widths = json.loads(report_path.read_text())["parametrizations"]["mup"]["widths"]
    assert [w["width"] for w in widths] == WIDTHS

    bundle_path = tmp_path / "bundle.json"
    r = cli(model_dir, "export", sweep_id, "--db", db, "--target-width", str(TARGET),
            "--out", str(bundle_path), "--force")
    assert r.returncode == 0, r.stderr
    assert "tiny_mixer on digits" in r.stdout
    bundle = mucore.load_bundle(bundle_path)
    assert bundle["model"] == {"kind": "custom", "name": "tiny_mixer", "options": {"depth": 1}}

    # The user applies it to their own model at the target width, with mucore only.
    spec = importlib.util.spec_from_file_location("user_tiny_mixer", model_dir / "tiny_mixer.py")
    assert spec is not None and spec.loader is not None
    user = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(user)
    info = task_info(TaskConfig(name="digits"))
    model, optimizer = mucore.apply_bundle(bundle, user.build(TARGET, task=info, depth=1))
    assert model.head.in_features == TARGET
    assert model.head.forward_mult == pytest.approx(1 / (TARGET / WIDTHS[0]))
    lrs = sorted(g["lr"] for g in optimizer.param_groups)
    assert lrs[0] == pytest.approx(bundle["lr"] / (TARGET / WIDTHS[0]))  # hidden: lr / m (Adam)

    verify_path = tmp_path / "verify.json"
    r = cli(model_dir, "verify", str(bundle_path), "--bracket", "1", "--steps", "4",
            "--no-sp-baseline", "--json", str(verify_path))
    assert r.returncode == 0, r.stderr
    assert json.loads(verify_path.read_text())["target_width"] == TARGET


@pytest.mark.parametrize(("model", "want"), [
    ({"name": "nope"}, "model.name: unknown registered model 'nope': registered models are "
                       "tiny_mixer"),
    ({"options": {"depth": "one"}}, "model.options.depth: Input should be a valid integer"),
    ({"options": {"dpth": 1}}, "model.options.dpth: unknown option of model 'tiny_mixer'"),
])
def test_a_bad_registered_model_spec_exits_2_and_stores_nothing(model_dir, tmp_path, model, want):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(mixer_spec(**model)))
    db = tmp_path / "store.duckdb"
    r = cli(model_dir, "sweep", "run", str(spec_path), "--db", str(db))
    assert r.returncode == 2 and want in r.stderr, r.stderr
    if db.exists():
        from experiments.store import Store

        assert Store(db).list_sweeps() == []


def test_an_unknown_cli_model_lists_zoo_and_registered_names(model_dir):
    r = cli(model_dir, "coord-check", "--model", "tiny_mixr", "--widths", "16,32")
    assert r.returncode == 2
    assert "unknown model 'tiny_mixr': zoo models are mlp" in r.stderr
    assert "registered models are tiny_mixer" in r.stderr
    r = cli(None, "describe", "--model", "tiny_mixer", "--width", "64")
    assert r.returncode == 2 and "registered models are none" in r.stderr


def test_a_broken_model_file_is_listed_by_name_and_hides_no_other_model(model_dir, tmp_path):
    (model_dir / "broken.py").write_text("import torch\n\nx = 1 / 0\n")
    where = f"{model_dir / 'broken.py'}, line 3"
    r = cli(model_dir, "models")
    assert r.returncode == 0, r.stderr
    assert "warning: registered model 'broken' cannot be used" in r.stderr and where in r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert {"mlp", "gpt", "tiny_mixer", "broken"} <= set(rows)  # the zoo and the good model
    assert "ERROR:" in rows["broken"] and "ZeroDivisionError" in rows["broken"]
    r = cli(model_dir, "models", "--json")
    entries = {m["name"]: m for m in json.loads(r.stdout)["models"]}
    assert entries["broken"]["kind"] == "custom" and entries["broken"]["options"] == []
    assert where in entries["broken"]["error"]
    assert "error" not in entries["tiny_mixer"] and entries["tiny_mixer"]["options"]
    # A spec that names it is still refused, with the file and line.
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**mixer_spec(), "model": {"kind": "custom",
                                                              "name": "broken"}}))
    r = cli(model_dir, "sweep", "submit", str(spec), "--db", str(tmp_path / "s.duckdb"))
    assert r.returncode == 2 and where in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s.duckdb").exists()
