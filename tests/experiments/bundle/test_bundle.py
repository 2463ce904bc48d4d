"""HP bundles end to end through a real store and the CLI: analyze -> export -> show -> load ->
apply to the target model; tampered bundles, forced exports and mismatched models.

The sweep's runs are finished with synthetic losses whose optima are known (no training), so
these tests are fast; the training path is covered by test_verify.py.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import mucore
from experiments.analysis import analyze
from experiments.bundle.build import (
    HPBundle,
    ParamRow,
    apply,
    build_bundle,
    bundle_json,
    export_bundle,
    parse_bundle,
    read_bundle,
    target_model,
    transferred_hparams,
)
from experiments.cli import main
from experiments.errors import UserError
from experiments.spec.run import HParamsConfig
from experiments.spec.sweep import SweepSpec
from experiments.store import Store
from experiments.sweep.submit import create_sweep
from mucore import version as mucore_version
from mucore.bundle import BUNDLE_KIND, SCHEMA_VERSION, content_hash

ROOT = Path(__file__).resolve().parents[3]

SPEC = {
    "name": "bundle-test",
    "model": {"kind": "mlp", "depth": 2},
    "task": {"name": "digits"},
    "widths": [32, 64, 128],
    "base_width": 32,
    "parametrizations": ["sp", "mup"],
    "optimizer": {"name": "adam"},
    "lr_grid": {"log2_min": -11, "log2_max": -3, "step": 1},
    "hparams": {"init_std": 1.0, "output_mult": 1.0},
    "seeds": [0, 1],
    "steps": 20,
    "batch_size": 16,
    "log_every": 10,
    "device": "cpu",
}
MUP_OPT = -6.3


def true_optimum(param: str, width: int) -> float:
    return MUP_OPT if param == "mup" else -5.5 - 0.8 * math.log2(width / 32)


def make_store(tmp_path: Path, mup_drift: float = 0.0,
               diverged: Callable[[str, int], bool] = lambda p, w: False) -> tuple[Path, int]:
    """A store holding the sweep, every run finished with a synthetic bowl in log2 LR; every
    run of a (parametrization, width) for which `diverged` is true diverges."""
    db = tmp_path / "store.duckdb"
    store = Store(db)
    sweep_id = create_sweep(store, SweepSpec.model_validate(SPEC))
    rng = torch.Generator().manual_seed(0)
    for claim in store.claim(10_000, "test", sweep_id):
        p = claim.payload
        x = math.log2(p["lr"])
        opt = true_optimum(p["parametrization"], p["width"])
        if p["parametrization"] == "mup":
            opt += mup_drift * math.log2(p["width"] / 32)
        noise = 0.002 * float(torch.randn((), generator=rng))
        if x - opt > 2.5 or diverged(p["parametrization"], p["width"]):
            result = {"state": "diverged", "final_train_loss": None, "final_val_loss": None}
        else:
            loss = 0.1 + 0.05 * (x - opt) ** 2 + noise
            result = {"state": "done", "final_train_loss": loss, "final_val_loss": loss}
        assert store.finish(claim.run_id, claim.attempt, {**result, "steps_done": 20})
    return db, sweep_id


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """One store shared by the tests that only read it (and record exports)."""
    return make_store(tmp_path_factory.mktemp("confirmed"))


def test_round_trip_export_load_apply_matches_describe(tmp_path: Path, confirmed: tuple[Path, int],
                                                       capsys: pytest.CaptureFixture) -> None:
    db, sid = confirmed
    out = tmp_path / "analysis.json"
    assert main(["analyze", str(sid), "--json", str(out), "--db", str(db)]) == 0
    doc = json.loads(out.read_text())
    assert doc["verdict"] == "confirmed", doc["reason"]
    assert doc["parametrizations"]["sp"]["drift_slope"] == pytest.approx(-0.8, abs=0.15)

    path = tmp_path / "bundle.json"
    rc = main(["export", str(sid), "--target-width", "512", "--out", str(path), "--db", str(db)])
    assert rc == 0
    assert str(path.resolve()) in [e.path for e in Store(db).list_exports(sid)]
    bundle = read_bundle(path)
    assert bundle.target_width == 512 and bundle.parametrization == "mup"
    assert bundle.log2_lr == pytest.approx(MUP_OPT, abs=0.1)
    assert bundle.evidence.verdict == "confirmed" and not bundle.evidence.forced
    assert bundle.evidence.sweep_id == sid
    assert set(bundle.evidence.versions) >= {"mutransfer", "torch", "python"}
    assert bundle.base_shapes["params"]["hidden.0.weight"]["role"] == "hidden"

    assert main(["bundle", "show", str(path)]) == 0
    assert "valid: schema and content hash check out" in capsys.readouterr().out

    # Build the target, apply, and compare with describe at width 512.
    model, opt = apply(bundle, target_model(bundle), seed=0)
    shapes = mucore.infer_base_shapes(lambda w: target_model(bundle, w), 32)
    ref = mucore.parametrize(target_model(bundle), shapes, "mup", mucore.HParams(), seed=0)
    rows = {r.name: r for r in mucore.describe(ref, "adam")}
    table = {r.name: r for r in bundle.param_table}
    for group in opt.param_groups:
        for name in group["param_names"]:
            assert group["lr"] == pytest.approx(bundle.lr * rows[name].lr_mult, rel=1e-12)
            assert table[name].lr == pytest.approx(group["lr"], rel=1e-12)
    for name, row in rows.items():
        assert table[name].init_std == pytest.approx(row.init_std, rel=1e-12)
        assert table[name].role == row.role
    hidden = dict(model.named_parameters())["hidden.0.weight"]
    assert hidden.std().item() == pytest.approx(rows["hidden.0.weight"].init_std, rel=0.05)
    assert rows["hidden.0.weight"].lr_mult == pytest.approx(32 / 512)


def test_yaml_bundle_round_trips(tmp_path: Path, confirmed: tuple[Path, int]) -> None:
    db, sid = confirmed
    yml = tmp_path / "bundle.yaml"
    assert main(["export", str(sid), "--target-width", "256", "--out", str(yml),
                 "--db", str(db)]) == 0
    assert isinstance(yaml.safe_load(yml.read_text()), dict)
    bundle = read_bundle(yml)
    assert bundle.target_width == 256
    as_json = tmp_path / "bundle.json"
    assert main(["export", str(sid), "--target-width", "256", "--out", str(as_json),
                 "--db", str(db)]) == 0
    assert read_bundle(as_json).lr == bundle.lr


def test_tampered_and_invalid_bundles_exit_2(tmp_path: Path, confirmed: tuple[Path, int],
                                             capsys: pytest.CaptureFixture) -> None:
    db, sid = confirmed
    path = tmp_path / "bundle.json"
    assert main(["export", str(sid), "--target-width", "512", "--out", str(path),
                 "--db", str(db)]) == 0
    data = json.loads(path.read_text())
    data["lr"] *= 4
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["bundle", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "content hash mismatch: the file was edited after export; re-export it" in err

    data["lr"] /= 4
    data["surprise"] = 1
    data["content_hash"] = content_hash(data)
    path.write_text(json.dumps(data))
    assert main(["bundle", "show", str(path)]) == 2
    assert "surprise" in capsys.readouterr().err
    assert main(["bundle", "show", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_not_confirmed_needs_force_and_records_it(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    db, sid = make_store(tmp_path, mup_drift=-0.7)
    path = tmp_path / "bundle.json"
    args = ["export", str(sid), "--target-width", "512", "--out", str(path), "--db", str(db)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "not confirmed" in err and "--force" in err
    assert not path.exists()
    assert main([*args, "--force"]) == 0
    bundle = read_bundle(path)
    assert bundle.evidence.forced and bundle.evidence.verdict == "not_confirmed"
    assert "export forced" in bundle.summary()


def test_a_widest_width_where_every_lr_diverged_is_refused_without_force(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db, sid = make_store(tmp_path, diverged=lambda p, w: p == "mup" and w == 128)
    path = tmp_path / "bundle.json"
    args = ["export", str(sid), "--target-width", "512", "--out", str(path), "--db", str(db)]
    assert main(["analyze", str(sid), "--db", str(db)]) == 0
    assert "verdict: not_confirmed" in capsys.readouterr().out
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "not confirmed" in err and "width(s) [128] diverged" in err
    assert "lower the LR grid" in err and not path.exists()
    # Forced, it exports what the narrower widths found, and says it was forced.
    assert main([*args, "--force"]) == 0
    bundle = read_bundle(path)
    assert bundle.evidence.forced and bundle.evidence.verdict == "not_confirmed"
    assert bundle.log2_lr == pytest.approx(MUP_OPT, abs=0.15)


def test_an_all_diverged_sweep_has_nothing_to_export_even_forced(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db, sid = make_store(tmp_path, diverged=lambda p, w: True)
    path = tmp_path / "bundle.json"
    args = ["export", str(sid), "--target-width", "512", "--out", str(path), "--db", str(db)]
    for extra in ([], ["--force"]):
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert "nothing to export: no mup width has an LR optimum" in err
        assert "width 32: every run diverged" in err and "even with --force" in err
        assert "pass --force" not in err  # never offered when it cannot help
        assert "Traceback" not in err and not path.exists()
    assert main([*args, "--parametrization", "completep"]) == 2
    assert "no completep runs to export" in capsys.readouterr().err


def test_mismatched_model_is_refused(tmp_path: Path, confirmed: tuple[Path, int]) -> None:
    db, sid = confirmed
    path = tmp_path / "bundle.json"
    assert main(["export", str(sid), "--target-width", "512", "--out", str(path),
                 "--db", str(db)]) == 0
    bundle = read_bundle(path)
    with pytest.raises(UserError, match=r"'hidden.0.weight' has shape \[256, 256\] but "
                                        r"\[512, 512\]"):
        apply(bundle, target_model(bundle, 256))
    deeper = torch.nn.Sequential(torch.nn.Linear(64, 512))
    with pytest.raises(UserError, match="parameters the bundle lacks"):
        apply(bundle, deeper)


def test_cli_input_errors(tmp_path: Path, confirmed: tuple[Path, int],
                          capsys: pytest.CaptureFixture) -> None:
    db, sid = confirmed
    assert main(["analyze", "99", "--db", str(db)]) == 2
    assert "no sweep with id 99" in capsys.readouterr().err
    assert main(["analyze", str(sid), "--tolerance", "0", "--db", str(db)]) == 2
    assert "--tolerance must be > 0" in capsys.readouterr().err
    assert main(["export", str(sid), "--target-width", "512", "--out",
                 str(tmp_path / "b.txt"), "--db", str(db)]) == 2
    assert "must end in .json, .yaml or .yml" in capsys.readouterr().err


# --- Schema: one definition per fact ----------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# A bundle written by the exporter before ParamRow was derived from mucore.DescribeRow and the
# kind/version constants moved to one place: it must still load, verify and re-serialize
# to the same bytes.
SCHEMA1_BUNDLE = FIXTURES / "bundle_schema1.json"


def test_param_row_is_the_describe_row_plus_its_lr() -> None:
    describe_fields = [f.name for f in dataclasses.fields(mucore.DescribeRow)]
    assert [f.name for f in dataclasses.fields(ParamRow)] == [*describe_fields, "lr"]
    assert issubclass(ParamRow, mucore.DescribeRow)
    row = json.loads(SCHEMA1_BUNDLE.read_text())["param_table"][0]
    with pytest.raises(ValueError, match="surprise"):
        ParamRow(**row, surprise=1.0)


def test_a_bundle_exported_before_the_schema_refactor_loads_byte_for_byte() -> None:
    text = SCHEMA1_BUNDLE.read_text(encoding="utf-8")
    bundle = read_bundle(SCHEMA1_BUNDLE)
    assert content_hash(bundle.body()) == bundle.content_hash == json.loads(text)["content_hash"]
    assert bundle_json(bundle) == text
    assert all(isinstance(row, ParamRow) for row in bundle.param_table)


def test_kind_schema_and_library_version_come_from_mucore() -> None:
    fields = HPBundle.model_fields
    assert (fields["kind"].default, fields["schema_version"].default) == (BUNDLE_KIND,
                                                                           SCHEMA_VERSION)
    bundle = read_bundle(SCHEMA1_BUNDLE)
    with pytest.raises(UserError, match="kind"):
        parse_bundle({**bundle.body(), "kind": "something-else"})
    # pyproject.toml reads the version from mucore/version.py rather than repeating it.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, _, name = attr.rpartition(".")
    assert getattr(importlib.import_module(module), name) == mucore_version.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", mucore_version.__version__)


def test_export_records_the_library_version(confirmed: tuple[Path, int]) -> None:
    db, sid = confirmed
    bundle = export_bundle(Store(db), sid, 256)
    assert bundle.evidence.versions["mutransfer"] == mucore_version.__version__


def test_a_damaged_bundle_file_names_the_file_line_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(SCHEMA1_BUNDLE.read_text()[:200])
    with pytest.raises(UserError, match=r"bundle\.json: JSON syntax error at line \d+.*re-export"):
        read_bundle(path)
    yml = tmp_path / "bundle.yaml"
    yml.write_text("kind: [unclosed\n")
    with pytest.raises(UserError, match=r"bundle\.yaml: YAML syntax error at line .*re-export"):
        read_bundle(yml)
    with pytest.raises(UserError, match="does not exist: check the path"):
        read_bundle(tmp_path / "missing.yaml")


# --- Swept global knobs -----------------------------------------------------------------------

LR_GRID = [-9.0, -8.0, -7.0, -6.0, -5.0, -4.0, -3.0]
KNOB_GRID = [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]  # log2 of a knob's values
WIDTHS = (32, 64, 128)


def knob_sweep_runs(optima: dict[str, dict[str, float]]) -> pd.DataFrame:
    """A runs frame like `Store.runs_frame`: one seed, every width, LR x swept knobs.

    Args:
        optima: per parametrization, the log2 optimum of "lr" and of each swept knob (the same at
            every width, as µP promises). The loss is a noise-free bowl in log2 units, so the
            analysis' parabola finds each optimum exactly.
    """
    rows = []
    for param, opt in optima.items():
        knobs = [k for k in opt if k != "lr"]
        for width in WIDTHS:
            for x in LR_GRID:
                for values in itertools.product(KNOB_GRID, repeat=len(knobs)):
                    loss = 0.1 + 0.05 * (x - opt["lr"]) ** 2 + sum(
                        0.05 * (v - opt[k]) ** 2 for k, v in zip(knobs, values, strict=True))
                    rows.append({"width": width, "parametrization": param, "lr": 2.0**x,
                                 "log2_lr": x, "seed": 0, "state": "done",
                                 "final_train_loss": loss, "final_val_loss": loss,
                                 **{k: 2.0**v for k, v in zip(knobs, values, strict=True)}})
    return pd.DataFrame(rows)


KNOB_CASES = {
    "mlp": ({"kind": "mlp", "depth": 2}, {"name": "digits"}, {"input_mult": 1.3}),
    "gpt": ({"kind": "gpt", "depth": 1}, {"name": "synthetic-lm", "seq_len": 16},
            {"attn_mult": -0.7, "input_mult": 1.3}),
}


@pytest.mark.parametrize("case", sorted(KNOB_CASES))
def test_swept_knobs_carry_their_chosen_values(case: str) -> None:
    model, task, knobs = KNOB_CASES[case]
    spec = {**SPEC, "model": model, "task": task, "parametrizations": ["mup"],
            "hparams": {"output_mult": 0.5}}
    report = analyze(knob_sweep_runs({"mup": {"lr": MUP_OPT, **knobs}}), target_width=512)
    assert set(report.hparams) == set(knobs)  # the analysis saw every swept knob
    bundle = build_bundle(spec, report, 512, force=True)
    for knob, log2_opt in knobs.items():
        assert bundle.hparams[knob] == pytest.approx(2.0**log2_opt, rel=1e-6), knob
    assert bundle.hparams["output_mult"] == 0.5  # not swept: the spec's value
    assert bundle.hparams["init_std"] == 1.0  # neither swept nor in the spec: the default
    assert bundle.log2_lr == pytest.approx(MUP_OPT, abs=1e-6)
    # The table at the target width uses the chosen alpha_in (the input layers' multiplier).
    inputs = [row for row in bundle.param_table if row.role == "input"]
    assert inputs and all(row.forward_mult == pytest.approx(2.0**1.3) for row in inputs)
    assert parse_bundle(json.loads(bundle_json(bundle))) == bundle


def test_transferred_hparams_keep_the_spec_where_nothing_was_swept() -> None:
    report = analyze(knob_sweep_runs({"mup": {"lr": MUP_OPT}}), target_width=512)
    spec_hparams = HParamsConfig(input_mult=3.0, attn_mult=0.25)
    assert transferred_hparams(report, spec_hparams, 512) == spec_hparams.to_mucore()
