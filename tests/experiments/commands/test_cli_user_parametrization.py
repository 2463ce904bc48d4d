"""A parametrization table the user registers is swept, analysed and exported like µP's.

The table comes from a registered model's file (it calls `mucore.register_parametrization` when
imported) or from an entry point of the group `mutransfer.parametrizations`; its traits (label,
width-stable, depth rules) are what the analysis reads, never a list of names. A sweep with one
parametrization exports it without `--parametrization`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import mucore
import mucore.parametrizations as mp
from experiments.analysis import analyze
from experiments.bundle.build import build_bundle
from experiments.errors import UserError
from experiments.models.parametrizations import (
    ENTRY_POINT_GROUP,
    parametrization_label,
    resolve_parametrization,
)
from experiments.spec.sweep import parse_spec

ROOT = Path(__file__).resolve().parents[3]

# A registered model whose file also registers two tables: a copy of µP's rules that claims a
# width-stable optimum, and a copy of SP's that does not.
MODEL_FILE = '''"""A small MLP that registers two parametrization tables when imported."""

import dataclasses

from torch import nn

import mucore

mucore.register_parametrization(dataclasses.replace(
    mucore.MUP, name="my-mup", version="my-mup-1", label="my µP", width_stable=True))
mucore.register_parametrization(dataclasses.replace(
    mucore.SP, name="my-sp", version="my-sp-1", label="my SP", width_stable=False))


def build(width: int, *, task) -> nn.Module:
    """Flatten -> width -> width -> readout."""
    c, h, w = task.input_shape
    return nn.Sequential(
        nn.Flatten(), nn.Linear(c * h * w, width), mucore.InputScale(), nn.ReLU(),
        nn.Linear(width, width), nn.ReLU(), mucore.Readout(width, task.n_outputs))
'''


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """mucore's registry as it was before the test (a table registered here stays here)."""
    monkeypatch.setattr(mp, "_REGISTRY", dict(mp._REGISTRY))


def cli(model_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MUTRANSFER_MODEL_DIRS": str(model_dir), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "experiments", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def tiny_spec(model: dict[str, Any], parametrizations: list[str]) -> dict[str, Any]:
    return {"name": "user-table", "model": model, "task": {"name": "digits"},
            "widths": [32, 64], "base_width": 32, "parametrizations": parametrizations,
            "lrs": [2.0**-8, 2.0**-6, 2.0**-4], "seeds": [0], "steps": 10, "batch_size": 16,
            "log_every": 5, "device": "cpu"}


@pytest.mark.slow
def test_a_table_registered_by_a_model_file_is_swept_analysed_and_exported(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "my_mlp.py").write_text(MODEL_FILE)
    spec = tiny_spec({"kind": "custom", "name": "my_mlp"}, ["my-sp", "my-mup"])
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    db = str(tmp_path / "store.duckdb")

    r = cli(models, "sweep", "run", str(spec_path), "--db", db, "--workers", "1")
    assert r.returncode == 0, r.stderr
    sweep_id = r.stdout.strip().splitlines()[-1]

    r = cli(models, "coord-check", "--model", "my_mlp", "--param", "my-mup", "--widths", "32,64",
            "--steps", "2", "--json", str(tmp_path / "cc.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "cc.json").read_text())["args"]["param"] == "my-mup"

    report_path = tmp_path / "report.json"
    r = cli(models, "analyze", sweep_id, "--db", db, "--target-width", "256",
            "--json", str(report_path))
    assert r.returncode == 0, r.stderr
    params = json.loads(report_path.read_text())["parametrizations"]
    assert [w["width"] for w in params["my-mup"]["widths"]] == [32, 64]
    # The traits decide: my-mup claims a stable optimum, my-sp extrapolates its drift line.
    assert params["my-mup"]["prediction"].startswith("stable optimum")
    assert params["my-sp"]["prediction"] == "drift line"

    # Two tables and no mup: export asks which one, naming both, and writes nothing.
    bundle_path = tmp_path / "bundle.json"
    r = cli(models, "export", sweep_id, "--db", db, "--target-width", "256",
            "--out", str(bundle_path), "--force")
    assert r.returncode == 2 and "my-mup, my-sp" in r.stderr and "Traceback" not in r.stderr
    assert not bundle_path.exists()
    r = cli(models, "export", sweep_id, "--db", db, "--target-width", "256",
            "--out", str(bundle_path), "--force", "--parametrization", "my-mup")
    assert r.returncode == 0, r.stderr
    bundle = json.loads(bundle_path.read_text())
    assert (bundle["parametrization"], bundle["rules_version"]) == ("my-mup", "my-mup-1")
    assert bundle["log2_lr"] == pytest.approx(params["my-mup"]["predicted_log2_lr"], rel=1e-6)


def test_an_unregistered_table_is_refused_with_the_registered_names(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(tiny_spec({"kind": "mlp"}, ["my-mup"])))
    r = cli(models, "sweep", "run", str(spec_path), "--db", str(tmp_path / "s.duckdb"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "unknown parametrization 'my-mup'" in r.stderr
    assert "completep, depth-mup, mup, sp" in r.stderr  # the registered ones
    assert not (tmp_path / "s.duckdb").exists()  # nothing stored


def _install_entry_point(site: Path) -> None:
    """A package `ep_tables` whose entry point names a table, as pip would install it."""
    (site / "ep_tables.py").write_text(
        "import dataclasses\nimport mucore\n"
        "TABLE = dataclasses.replace(mucore.MUP, name='ep-mup', version='ep-mup-1', "
        "label='EP µP', width_stable=True)\n"
        "NOT_A_TABLE = 3\n")
    dist = site / "ep_tables-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-tables\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nep-mup = ep_tables:TABLE\nbroken = ep_tables:NOT_A_TABLE\n")


def test_an_entry_point_table_is_looked_up_on_first_use(tmp_path, monkeypatch, registry):
    monkeypatch.setenv("MUTRANSFER_MODEL_DIRS", "")
    _install_entry_point(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ep-mup" not in mucore.parametrization_names()
    assert parametrization_label("ep-mup") == "ep-mup"  # a label loads nothing
    table = resolve_parametrization("ep-mup")
    assert (table.version, table.width_stable, table.has_depth_rules) == ("ep-mup-1", True, False)
    assert parametrization_label("ep-mup") == "EP µP"
    assert parse_spec(tiny_spec({"kind": "mlp"}, ["ep-mup"])).parametrizations == ["ep-mup"]
    # The entry point that names no table is reported when a name cannot be found.
    with pytest.raises(UserError, match=r"unknown parametrization 'nope'.*ep-mup.*"
                       r"broken.*names a int, not a mucore.Parametrization"):
        resolve_parametrization("nope")


def test_the_traits_are_read_from_the_tables():
    assert [(n, mucore.get_parametrization(n).width_stable,
             mucore.get_parametrization(n).has_depth_rules,
             mucore.get_parametrization(n).supports("sgd"))
            for n in mucore.parametrization_names()] == [
        ("completep", True, True, False), ("depth-mup", True, True, False),
        ("mup", True, False, True), ("sp", False, False, True)]
    assert [parametrization_label(n) for n in ("sp", "mup", "completep", "depth-mup")] == [
        "SP (standard)", "µP", "CompleteP", "depth-µP"]
    # A table without a label shows its name; one without traits claims no stability.
    bare = dataclasses.replace(mucore.MUP, name="bare", label="", width_stable=False)
    assert (bare.display_label, bare.display_short_label, bare.width_stable) == \
        ("bare", "bare", False)


def _runs_frame(param: str) -> pd.DataFrame:
    """A finished two-width sweep whose loss is a parabola in log2 LR, optimum at -6."""
    rows: list[dict[str, Any]] = []
    for width in (32, 64):
        for log2_lr in (-8.0, -6.0, -4.0):
            rows.append({"run_id": len(rows), "sweep_id": 1, "width": width, "depth": None,
                         "base_depth": None, "parametrization": param, "lr": 2.0**log2_lr,
                         "log2_lr": log2_lr, "seed": 0, "state": "done",
                         "final_train_loss": 1.0 + 0.1 * (log2_lr + 6.0) ** 2,
                         "final_val_loss": None})
    return pd.DataFrame(rows)


def test_a_one_parametrization_sweep_exports_it_without_being_told(tmp_path):
    spec = parse_spec(tiny_spec({"kind": "mlp", "depth": 2}, ["completep"]))
    report = analyze(_runs_frame("completep"), target_width=128)
    bundle = build_bundle(spec.model_dump(mode="json"), report, 128, force=True)
    assert bundle.parametrization == "completep"
    assert bundle.rules_version == "completep-1"
    assert bundle.log2_lr == pytest.approx(-6.0, rel=1e-6)  # width-stable: the stable optimum
    # A sweep with mup keeps exporting mup by default, whatever else it trained.
    both_runs = pd.concat([_runs_frame("sp"), _runs_frame("mup")], ignore_index=True)
    both = analyze(both_runs, target_width=128)
    assert build_bundle(spec.model_dump(mode="json"), both, 128,
                        force=True).parametrization == "mup"

