"""`python -m experiments coord-check --depths`: the coordinate check over
depth at one width, its JSON (`axis: "depth"`, the width check's fields), the store record, and
a bad depth ladder refused with a field-named message, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mucore
from experiments.cli import main
from experiments.models.parametrizations import depth_rule_names
from experiments.store import Store

# The residual mlp is the cheapest model with a depth; width 32, three depths, three steps.
RESIDUAL_MLP = ["--model", "mlp", "--option", "residual=true", "--width", "32", "--steps", "3"]


@pytest.fixture(scope="module")
def checks(tmp_path_factory) -> dict:
    """One completep check (recorded in a store) and one mup check, shared by the tests below."""
    folder = tmp_path_factory.mktemp("depth")
    out: dict = {"db": folder / "store.duckdb"}
    for param in ("completep", "mup"):
        path = folder / f"{param}.json"
        extra = ["--db", str(out["db"])] if param == "completep" else []
        assert main(["coord-check", *RESIDUAL_MLP, "--param", param, "--depths", "2,4,8",
                     "--json", str(path), *extra]) == 0
        out[param] = json.loads(path.read_text())
    return out


def test_depth_check_writes_the_width_checks_shape_with_axis_depth_and_is_stored(checks):
    result = checks["completep"]
    assert result["axis"] == "depth"
    assert {"param", "verdict", "max_abs_slope", "modules", "offenders", "tolerance"} <= set(result)
    assert result["depths"] == [2, 4, 8] and result["width"] == 32
    assert result["param"] == "completep" and result["verdict"] in ("pass", "fail")
    assert set(result["modules"][0]) == {"module", "step", "slope"}
    assert {r["depth"] for r in result["table"]} == {2, 4, 8}
    assert result["args"]["base_depth"] == 2 and result["args"]["base_width"] == 32
    stored = Store(checks["db"]).list_coord_checks()
    assert [(c.model, c.param, c.verdict) for c in stored] == [("mlp", "completep", result["verdict"])]


def test_completep_keeps_the_stream_flat_over_depth_where_mup_lets_it_grow(checks):
    """Both directions through the CLI: the branch multiplier is what keeps the slope near 0."""
    flat, grows = checks["completep"], checks["mup"]
    stream = {(m["module"], m["step"]): m["slope"] for m in grows["modules"]}
    assert flat["verdict"] == "pass" and flat["max_abs_slope"] <= 0.15
    assert grows["verdict"] == "fail" and "blocks.last" in grows["offenders"]
    assert stream[("blocks.last", 3)] > 0.3  # a sum of L branches grows with L


def test_a_width_check_says_its_axis(tmp_path):
    out = tmp_path / "w.json"
    assert main(["coord-check", "--model", "mlp", "--param", "mup", "--widths", "32,64",
                 "--steps", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["axis"] == "width" and result["widths"] == [32, 64]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--model", "gpt", "--depths", "4,2"], "--depths"),
        (["--model", "gpt", "--depths", "4,4"], "--depths"),
        (["--model", "gpt", "--depths", "4"], "--depths"),
        (["--model", "gpt", "--depths", "2,four"], "--depths"),
        (["--model", "cnn", "--depths", "2,4"], "--model"),
        (["--model", "mlp", "--depths", "2,4"], "residual=true"),
        (["--model", "gpt", "--depths", "2,4", "--optimizer", "sgd"], "--optimizer"),
        (["--model", "gpt", "--depths", "2,4", "--widths", "32,64"], "--widths"),
        (["--model", "gpt", "--width", "32"], "--depths"),
    ],
)
def test_a_bad_depth_request_exits_2_naming_the_flag_and_writes_nothing(tmp_path, capsys, flags,
                                                                       named):
    out, db = tmp_path / "cc.json", tmp_path / "store.duckdb"
    code = main(["coord-check", *flags, "--param", "completep", "--steps", "1",
                 "--json", str(out), "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2
    assert named in err and "Traceback" not in err
    assert not out.exists() and not db.exists()


def test_a_registered_model_has_no_depth(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MUTRANSFER_MODEL_DIRS", str(Path(__file__).parents[3] / "examples/models"))
    code = main(["coord-check", "--model", "tiny_mixer", "--param", "completep",
                 "--depths", "2,4", "--width", "32", "--json", str(tmp_path / "x.json")])
    assert code == 2 and "'tiny_mixer' has no residual blocks" in capsys.readouterr().err


def test_the_tables_with_depth_rules_are_the_branch_scaled_ones():
    """The depth tables the dashboard offers are read from mucore's registry (a trait)."""
    branch_scaled = {n for n in mucore.parametrization_names()
                     if mucore.get_parametrization(n).branch_exp != 0}
    assert set(depth_rule_names()) == branch_scaled == {"completep", "depth-mup"}


def test_describe_shows_depth_multipliers_of_block_parameters(tmp_path):
    out = tmp_path / "d.json"
    assert main(["describe", "--model", "gpt", "--param", "depth-mup", "--width", "128",
                 "--base-width", "64", "--depth", "8", "--base-depth", "2", "--json", str(out)]) == 0
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    qkv = rows["blocks.7.attn.qkv.weight"]
    # depth-µP, m_N = 2, m_L = 4: branch 4^(-1/2); hidden Adam LR 1/m_N x m_L^(-1/2).
    assert qkv["depth_mult"] == 4 and qkv["branch_mult"] == 0.5 and qkv["lr_mult"] == 0.25
    assert "depth_mult" not in rows["tok_emb.weight"]


def test_describe_refuses_half_a_depth_request(capsys):
    code = main(["describe", "--model", "gpt", "--param", "completep", "--width", "128",
                 "--depth", "8"])
    assert code == 2 and "--base-depth" in capsys.readouterr().err
