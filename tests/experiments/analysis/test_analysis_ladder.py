"""Ladder sections of the analysis (depth, and any registered axis) on synthetic loss surfaces
with known optima.

loss = floor + curvature * (log2 LR - optimum(param, width, depth))^2 + seeded noise. The
depth section must recover the per-depth optima and the drift per depth doubling, confirm a
parametrization whose optimum stays put and refuse one that drifts (both directions), judge on
CompleteP while quoting µP, and leave the width section as a width-only sweep at the base depth
would have it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import analyze
from experiments.analysis.axes import (
    DEPTH,
    Axis,
    payload_columns,
    register_axis,
    unregister_axis,
    width_stable_first,
)
from experiments.analysis.ladder import split_depth_ladder

GRID = [float(x) for x in range(-12, -2)]
DEPTHS = [2, 4, 8, 16]


def ladder(optimum: dict[str, float], depth_drift: dict[str, float],
           widths: tuple[int, ...] = (64, 128), width_drift: float = 0.0,
           seeds: tuple[int, ...] = (0, 1), base_depth: float | None = 2) -> pd.DataFrame:
    """Runs like Store.runs_frame: the optimum moves by `depth_drift[param]` log2 per depth
    doubling (from depth 2) and `width_drift` per width doubling (from width 64)."""
    rng = np.random.default_rng(0)
    rows: list[dict[str, object]] = []
    for param, opt0 in optimum.items():
        for width in widths:
            for depth in DEPTHS:
                opt = (opt0 + depth_drift[param] * math.log2(depth / 2)
                       + width_drift * math.log2(width / 64))
                for seed in seeds:
                    for x in GRID:
                        loss = 1.0 + 0.05 * (x - opt) ** 2 + rng.normal(0.0, 0.002)
                        rows.append({"run_id": len(rows) + 1, "width": width, "depth": depth,
                                     "base_depth": base_depth, "parametrization": param,
                                     "lr": 2.0**x, "log2_lr": x, "seed": seed,
                                     "init_std": 1.0, "output_mult": 1.0, "state": "done",
                                     "final_train_loss": loss, "final_val_loss": loss})
    return pd.DataFrame(rows)


def test_completep_that_stays_put_is_confirmed_and_mups_drift_is_measured() -> None:
    runs = ladder({"mup": -7.0, "completep": -7.0}, {"mup": -0.8, "completep": 0.0})
    doc = analyze(runs, n_bootstrap=50).to_contract_json()
    depth = doc["depth"]
    assert depth["verdict"] == "confirmed", depth["reason"]
    assert depth["judged_on"] == "completep" and depth["width"] == 64
    assert depth["base_depth"] == 2 and depth["tolerance"] == 0.25
    completep = depth["parametrizations"]["completep"]
    mup = depth["parametrizations"]["mup"]
    assert abs(completep["drift_slope"]) < 0.1
    assert mup["drift_slope"] == pytest.approx(-0.8, abs=0.1)
    assert [d["depth"] for d in completep["depths"]] == DEPTHS
    for d, want in zip(mup["depths"], [-7.0, -7.8, -8.6, -9.4], strict=True):
        assert d["opt_log2_lr"] == pytest.approx(want, abs=0.1)
        assert d["ci_low"] <= d["opt_log2_lr"] <= d["ci_high"]
        assert d["best_loss"] == pytest.approx(1.0, abs=0.01)
    assert "CompleteP LR drift" in depth["reason"] and "; µP LR drift -0.7" in depth["reason"]
    assert "per depth doubling" in depth["reason"]
    assert "rule" not in depth and "exponent" not in mup  # only batch and horizon fit one
    assert "`export SWEEP_ID --target-depth N`" in depth["next_step"], depth["next_step"]
    json.dumps(doc, allow_nan=False)


def test_a_drifting_completep_is_not_confirmed() -> None:
    runs = ladder({"mup": -7.0, "completep": -7.0}, {"mup": -0.8, "completep": -0.5})
    depth = analyze(runs, n_bootstrap=50).to_contract_json()["depth"]
    assert depth["verdict"] == "not_confirmed"
    assert depth["parametrizations"]["completep"]["drift_slope"] == pytest.approx(-0.5, abs=0.1)
    assert "the optimum moves: CompleteP LR drift -0.4" in depth["reason"]
    assert "lies wholly outside ±0.25" in depth["reason"]
    assert "doctor" in depth["next_step"]


def test_depth_mup_is_judged_without_completep_and_a_ladder_without_either_is_refused() -> None:
    runs = ladder({"mup": -7.0, "depth-mup": -6.0}, {"mup": -0.8, "depth-mup": 0.05})
    depth = analyze(runs, n_bootstrap=0).to_contract_json()["depth"]
    assert depth["judged_on"] == "depth-mup" and depth["verdict"] == "confirmed"
    runs = ladder({"mup": -7.0}, {"mup": 0.0})
    depth = analyze(runs, n_bootstrap=0).to_contract_json()["depth"]
    assert depth["verdict"] == "not_confirmed" and depth["judged_on"] is None
    assert "add completep to the spec's parametrizations" in depth["next_step"]


def test_the_width_section_reads_the_base_depth_as_a_width_only_sweep_would() -> None:
    runs = ladder({"mup": -7.0, "completep": -7.0}, {"mup": -0.8, "completep": 0.0},
                  widths=(64, 128, 256), width_drift=0.0)
    report = analyze(runs, n_bootstrap=50)
    at_base = runs[runs["depth"] == 2].drop(columns=["depth", "base_depth"])
    alone = analyze(at_base.reset_index(drop=True), n_bootstrap=50)
    doc, alone_doc = report.to_contract_json(), alone.to_contract_json()
    assert doc.pop("depth")["verdict"] == "confirmed"
    doc.pop("forecast_depth", None)  # the loss forecast along depth: a ladder's own section
    assert doc == alone_doc
    assert "depth" not in alone_doc  # a width-only sweep's document is unchanged


def test_a_single_depth_or_an_old_frame_has_no_ladder() -> None:
    runs = ladder({"mup": -7.0}, {"mup": 0.0})
    one_depth = runs[runs["depth"] == 4]
    assert split_depth_ladder(one_depth)[1] is None
    old = runs.drop(columns=["depth", "base_depth"])
    assert split_depth_ladder(old)[1] is None
    width_only = runs.assign(base_depth=None)
    assert split_depth_ladder(width_only)[1] is None


def test_a_depth_whose_runs_all_diverged_fails_the_depth_verdict_with_a_warning() -> None:
    runs = ladder({"mup": -7.0, "completep": -7.0}, {"mup": -0.8, "completep": 0.0})
    dead = (runs["depth"] == 16) & (runs["parametrization"] == "completep")
    runs.loc[dead, "state"] = "diverged"
    runs.loc[dead, "final_train_loss"] = None
    depth = analyze(runs, n_bootstrap=0).to_contract_json()["depth"]
    row = depth["parametrizations"]["completep"]["depths"][-1]
    assert row["status"] == "all_diverged" and row["opt_log2_lr"] is None
    assert any("every run at depth 16 diverged" in w for w in depth["warnings"])
    # The three other depths agree, but the ladder's deepest rung has no finite loss: the
    # verdict counts every depth, and says which one and what to change.
    assert depth["verdict"] == "not_confirmed"
    assert "every CompleteP run at depth(s) [16] diverged" in depth["reason"]
    assert "every depth of the ladder; lower the LR grid" in depth["reason"]


def test_the_depth_section_reads_the_width_asked_for() -> None:
    # CompleteP holds its optimum over depth at width 64 but not at 128: the default (smallest
    # width) confirms, the depth section at 128 does not, and a width off the ladder is refused.
    runs = pd.concat([
        ladder({"mup": -7.0, "completep": -7.0}, {"mup": -0.8, "completep": 0.0}, widths=(64,)),
        ladder({"mup": -7.0, "completep": -7.0}, {"mup": -0.8, "completep": -0.6}, widths=(128,)),
    ], ignore_index=True)
    default = analyze(runs, n_bootstrap=50).depth
    assert default is not None and default.width == 64 and default.verdict == "confirmed"
    wide = analyze(runs, n_bootstrap=50, depth_width=128).depth
    assert wide is not None and wide.width == 128 and wide.verdict == "not_confirmed"
    slope = wide.parametrizations["completep"].drift_slope
    assert slope is not None and slope == pytest.approx(-0.6, abs=0.1)
    with pytest.raises(ValueError, match=r"depth width 96 is not a width of the sweep: use one of \[64, 128\]"):
        analyze(runs, n_bootstrap=50, depth_width=96)


def test_the_depth_verdict_applies_the_regret_rule_at_the_deepest_depth() -> None:
    # CompleteP drifting +0.2 per depth doubling is within the ±0.25 tolerance, and its optima
    # agree within a grid step, but by depth 16 the copied LR sits 0.6 log2 off a 0.05-curvature
    # bowl: 0.05 * 0.6^2 = 0.018 loss, 1.8% of the best loss 1.0 (seed noise ~0.2%): refused.
    runs = ladder({"mup": -7.0, "completep": -7.0}, {"mup": -0.8, "completep": 0.2})
    depth = analyze(runs, n_bootstrap=50).to_contract_json()["depth"]
    rows = {r["depth"]: r for r in depth["parametrizations"]["completep"]["regret"]}
    assert rows[2]["abs"] == pytest.approx(0.0, abs=1e-9)
    assert rows[16]["rel"] == pytest.approx(0.018, abs=0.006)
    assert depth["verdict"] == "not_confirmed"
    assert "copying the LR tuned at depth 2 costs" in depth["reason"]
    assert "at depth 16 under CompleteP" in depth["reason"]
    # The same drift with a 5x looser regret tolerance passes: the regret rule decided it.
    loose = analyze(runs, n_bootstrap=50, regret_tolerance=0.05).to_contract_json()["depth"]
    assert loose["verdict"] == "confirmed", loose["reason"]


# --- A throwaway axis: registering its entry is all it takes -------------------------------


@pytest.fixture
def context_axis():
    """A made-up ladder axis (the context length), registered for one test only."""
    axis = register_axis(Axis(
        name="context", label="Context", unit="tokens", column="context",
        base_column="base_context", payload_value="$.context", payload_base="$.base_context",
        judged=width_stable_first,
        compared=lambda names: next((n for n in sorted(names) if n == "sp"), None),
        no_judged_reason=lambda: "the sweep has no mup runs: add mup"))
    yield axis
    unregister_axis("context")


def context_ladder(drift: dict[str, float]) -> pd.DataFrame:
    """Runs like Store.runs_frame with a `context` ladder (base 16): the optimum moves by
    `drift[param]` log2 per context doubling; width 64 and 128 share it."""
    rng = np.random.default_rng(1)
    rows: list[dict[str, object]] = []
    for param, slope in drift.items():
        for width in (64, 128):
            for context in (16, 32, 64, 128):
                opt = -7.0 + slope * math.log2(context / 16)
                for seed in (0, 1):
                    for x in GRID:
                        loss = 1.0 + 0.05 * (x - opt) ** 2 + rng.normal(0.0, 0.002)
                        rows.append({"run_id": len(rows) + 1, "width": width, "depth": None,
                                     "base_depth": None, "context": context,
                                     "base_context": 16, "parametrization": param,
                                     "lr": 2.0**x, "log2_lr": x, "seed": seed,
                                     "init_std": 1.0, "output_mult": 1.0, "state": "done",
                                     "final_train_loss": loss, "final_val_loss": loss})
    return pd.DataFrame(rows)


def test_a_registered_axis_flows_through_the_analysis_without_a_new_module(context_axis) -> None:
    runs = context_ladder({"mup": 0.0, "sp": -0.8})
    report = analyze(runs, n_bootstrap=30)
    section = report.ladders["context"]
    assert section.verdict == "confirmed", section.reason
    assert (section.axis, section.base, section.width, section.judged_on) == (
        "context", 16, 64, "mup")
    assert section.parametrizations["sp"].drift_slope == pytest.approx(-0.8, abs=0.1)
    doc = json.loads(json.dumps(report.to_contract_json()))["context"]
    assert doc["base_context"] == 16 and doc["width"] == 64
    mup = doc["parametrizations"]["mup"]
    assert abs(mup["drift_slope"]) < 0.1 and len(mup["drift_ci"]) == 2
    assert [r["context"] for r in mup["contexts"]] == [16, 32, 64, 128]
    assert [r["context"] for r in mup["regret"]] == [16, 32, 64, 128]
    assert "width" not in doc["reason"]
    # The width section reads the runs at the base context only (one context of four).
    assert report.n_runs == len(runs) // 4
    assert "per context doubling" in "\n".join(section.summary_lines())


def test_a_registered_axis_refuses_a_drifting_optimum(context_axis) -> None:
    runs = context_ladder({"mup": -0.8, "sp": -0.8})
    section = analyze(runs, n_bootstrap=30).ladders["context"]
    assert section.verdict == "not_confirmed"
    assert "context" in section.reason and "width" not in section.reason


def test_without_its_entry_the_axis_is_only_a_column() -> None:
    # The same frame with no `context` axis registered: no section, every run in the width one.
    runs = context_ladder({"mup": 0.0, "sp": -0.8})
    report = analyze(runs, n_bootstrap=0)
    assert report.ladders == {} and "context" not in report.to_contract_json()
    assert report.n_runs == len(runs)


def test_the_store_reads_a_registered_axis_from_the_run_payload(context_axis) -> None:
    # Store.runs_frame selects every ladder axis's value and base from the run's payload.
    assert ("context", "$.context") in payload_columns()
    assert ("base_context", "$.base_context") in payload_columns()
    assert payload_columns()[:2] == [("depth", "$.model.depth"), ("base_depth", "$.base_depth")]


def test_an_axis_entry_that_cannot_be_read_safely_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_axis(DEPTH)
    with pytest.raises(ValueError, match=r"payload path .* must look like \$\.key"):
        register_axis(Axis(name="bad", label="Bad", unit="", column="bad", base_column=None,
                           judged=width_stable_first, compared=width_stable_first,
                           no_judged_reason=str, payload_value="$.x; DROP TABLE runs"))
    with pytest.raises(ValueError, match="must be an identifier"):
        register_axis(Axis(name="bad", label="Bad", unit="", column="bad col", base_column=None,
                           judged=width_stable_first, compared=width_stable_first,
                           no_judged_reason=str))

