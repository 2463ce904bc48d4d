"""The µTransfer analysis on synthetic loss surfaces whose optima are known exactly.

Each surface is loss = floor + curvature * (log2 LR - optimum)^2 (+ seeded noise), so the true
optimum of every width is known; the analysis must recover it within 0.1 log2 (the issue's
acceptance bar) on uniform and non-uniform grids, with one or several seeds, and handle grid
edges, diverged runs and all-diverged widths as documented.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import PARAM_ORDER, analyze
from experiments.spec.run import GLOBAL_KNOBS

WIDTHS = [64, 128, 256, 512]
GRID = [float(x) for x in range(-12, -2)]  # 2^-12 .. 2^-3


def surface(
    optima: dict[str, dict[int, float]],
    grid: list[float] = GRID,
    seeds: tuple[int, ...] = (0, 1, 2),
    noise: float = 0.002,
    curvature: float = 0.05,
    diverge_above: float = 2.5,
    floor: dict[int, float] | None = None,
    rng_seed: int = 0,
    extra: dict[str, float] | None = None,
) -> pd.DataFrame:
    """A runs frame like Store.runs_frame from known per-(parametrization, width) optima.

    Runs more than `diverge_above` log2 above their optimum are "diverged" (loss null).
    """
    rng = np.random.default_rng(rng_seed)
    rows = []
    for param, by_width in optima.items():
        for width, opt in by_width.items():
            base = (floor or {}).get(width, 0.1)
            for seed in seeds:
                for x in grid:
                    diverged = x - opt > diverge_above
                    loss = base + curvature * (x - opt) ** 2 + rng.normal(0.0, noise)
                    rows.append(
                        {
                            "run_id": len(rows) + 1,
                            "sweep_id": 1,
                            "width": width,
                            "parametrization": param,
                            "lr": 2.0**x,
                            "log2_lr": x,
                            "seed": seed,
                            "init_std": 1.0,
                            "output_mult": 1.0,
                            "state": "diverged" if diverged else "done",
                            "final_train_loss": None if diverged else loss,
                            "final_val_loss": None if diverged else loss + 0.01,
                            **(extra or {}),
                        }
                    )
    return pd.DataFrame(rows)


MUP_OPT = {64: -7.3, 128: -7.2, 256: -7.35, 512: -7.25}
SP_OPT = {w: -6.6 - 0.8 * math.log2(w / 64) for w in WIDTHS}


def optima_of(report, param: str = "mup") -> dict[int, float | None]:
    return {w.width: w.opt_log2 for w in report.lr[param].widths}


# --- Whole sweeps ----------------------------------------------------------------------------


def test_recovers_known_optima_and_confirms_mup_not_sp() -> None:
    runs = surface({"mup": MUP_OPT, "sp": SP_OPT})
    report = analyze(runs, target_width=2048)
    for param, truth in (("mup", MUP_OPT), ("sp", SP_OPT)):
        found = optima_of(report, param)
        for w in WIDTHS:
            assert found[w] == pytest.approx(truth[w], abs=0.1), (param, w)
            entry = next(x for x in report.lr[param].widths if x.width == w)
            assert entry.ci_low <= found[w] <= entry.ci_high
            assert entry.best_loss == pytest.approx(0.1, abs=0.01)
    assert report.verdict == "confirmed", report.reason
    mup, sp = report.lr["mup"], report.lr["sp"]
    assert abs(mup.drift_slope) < 0.1
    assert mup.drift_ci[0] <= mup.drift_slope <= mup.drift_ci[1]
    assert sp.drift_slope == pytest.approx(-0.8, abs=0.1)
    assert "SP LR drift -0.8" in report.reason
    # Predictions at 4x the top width: µP's stable optimum, SP's extrapolated line.
    assert mup.predicted_log2 == pytest.approx(np.mean(list(MUP_OPT.values())), abs=0.1)
    assert not mup.extrapolated
    assert sp.predicted_log2 == pytest.approx(-6.6 - 0.8 * 5, abs=0.3)
    assert sp.extrapolated
    assert report.warnings == []


def test_contract_json_shape_is_strict_json() -> None:
    report = analyze(surface({"mup": MUP_OPT, "sp": SP_OPT}), tolerance=0.3)
    doc = json.loads(json.dumps(report.to_contract_json(), allow_nan=False))
    assert doc["verdict"] in ("confirmed", "not_confirmed")
    assert doc["tolerance"] == 0.3
    assert isinstance(doc["warnings"], list)
    for param in ("mup", "sp"):
        block = doc["parametrizations"][param]
        assert isinstance(block["drift_slope"], float)
        assert len(block["drift_ci"]) == 2
        assert [w["width"] for w in block["widths"]] == WIDTHS
        for w in block["widths"]:
            assert {"width", "opt_log2_lr", "ci_low", "ci_high", "best_loss"} <= set(w)


def test_deterministic() -> None:
    runs = surface({"mup": MUP_OPT, "sp": SP_OPT})
    assert analyze(runs).model_dump() == analyze(runs).model_dump()


def test_single_seed_uses_curvature_and_t_interval() -> None:
    runs = surface({"mup": MUP_OPT}, seeds=(0,), noise=0.0)
    report = analyze(runs)
    mup = report.lr["mup"]
    assert mup.ci_method.startswith("one seed")
    for w in mup.widths:
        assert w.opt_log2 == pytest.approx(MUP_OPT[w.width], abs=0.1)
        # 1% of loss 0.1 with curvature 0.05: half-width sqrt(0.001 / 0.05) = 0.141.
        assert w.ci_high - w.ci_low == pytest.approx(2 * math.sqrt(0.001 / 0.05), abs=1e-6)
    assert report.verdict == "confirmed"


def test_nonuniform_grid() -> None:
    grid = [-12.0, -10.5, -9.0, -8.25, -7.5, -7.0, -6.0, -4.0, -3.5]
    truth = {64: -7.8, 128: -6.6, 256: -8.6, 512: -7.25}
    report = analyze(surface({"mup": truth}, grid=grid, noise=0.001))
    for w, opt in optima_of(report).items():
        assert opt == pytest.approx(truth[w], abs=0.1), w
    assert report.lr["mup"].grid_step == pytest.approx(0.875)  # median spacing


def test_edge_of_grid_warns_and_is_not_confirmed() -> None:
    truth = {64: -6.0, 128: -6.0, 256: -6.0, 512: -2.2}  # 512 beyond the top (2^-3)
    report = analyze(surface({"mup": truth}))
    w512 = report.lr["mup"].widths[-1]
    assert w512.edge == "upper" and w512.opt_log2 == -3.0 and not w512.refined
    # Warnings name the parametrization by its label, never its key.
    assert ("µP: optimum at the upper edge of the grid for width 512: extend the grid to 2^-2"
            in report.warnings)
    assert not any(w.startswith("mup") for w in report.warnings)
    # The edge's loss only overstates width 512's best loss, so the cost of copying the
    # narrow widths' LR there is a lower bound: already above the tolerance, it decides.
    assert report.verdict == "not_confirmed"
    assert "copying the LR tuned at width 64 costs" in report.reason
    for w in report.lr["mup"].widths[:3]:
        assert w.opt_log2 == pytest.approx(-6.0, abs=0.1)


def test_optima_on_the_edge_everywhere_are_inconclusive_and_ask_for_a_wider_grid() -> None:
    # Every width's optimum just beyond the top (2^-3): copying costs nothing measurable, but
    # neither the drift nor the optima can be read until the grid reaches past them.
    report = analyze(surface({"mup": {w: -2.8 for w in WIDTHS}}))
    assert report.verdict == "inconclusive", report.reason
    assert "on the edge of the grid at width(s) 64 (upper)" in report.reason
    assert report.next_step.startswith("extend the LR grid up to 2^-2")


def test_lower_edge_names_the_next_lower_value() -> None:
    truth = {64: -12.5, 128: -12.5}
    report = analyze(surface({"sp": truth}, seeds=(0,)))
    assert any("lower edge of the grid for width 64: extend the grid to 2^-13" in m
               for m in report.warnings)


def test_all_diverged_width_is_left_out() -> None:
    runs = surface({"mup": MUP_OPT, "sp": SP_OPT})
    bad = (runs["parametrization"] == "mup") & (runs["width"] == 256)
    runs.loc[bad, "state"] = "diverged"
    runs.loc[bad, "final_train_loss"] = None
    report = analyze(runs)
    w256 = next(w for w in report.lr["mup"].widths if w.width == 256)
    assert w256.status == "all_diverged" and w256.opt_log2 is None and w256.best_loss is None
    assert any("every run at width 256 diverged" in m for m in report.warnings)
    assert len(report.lr["mup"].usable()) == 3
    assert abs(report.lr["mup"].drift_slope) < 0.1
    json.dumps(report.to_contract_json(), allow_nan=False)


def test_diverged_run_is_never_an_optimum() -> None:
    runs = surface({"mup": MUP_OPT})
    # The grid point nearest the optimum diverged for one seed but kept a tiny last loss: its
    # seed mean is +inf, so the optimum must move off it and no refinement may cross it.
    hit = (runs["width"] == 128) & (runs["log2_lr"] == -7.0) & (runs["seed"] == 1)
    runs.loc[hit, "state"] = "diverged"
    runs.loc[hit, "final_train_loss"] = 0.0
    report = analyze(runs)
    w128 = next(w for w in report.lr["mup"].widths if w.width == 128)
    assert w128.grid_log2 == -8.0 and not w128.refined
    assert any("too few points around the optimum for width 128" in m for m in report.warnings)


def test_unfinished_runs_are_missing_not_diverged() -> None:
    runs = surface({"mup": MUP_OPT})
    runs.loc[runs["log2_lr"] == -3.0, "state"] = "failed"
    runs.loc[runs["log2_lr"] == -3.0, "final_train_loss"] = None
    report = analyze(runs)
    for w in report.lr["mup"].widths:
        assert w.n_points == len(GRID) - 1
        assert w.opt_log2 == pytest.approx(MUP_OPT[w.width], abs=0.1)


def test_mup_drift_beyond_tolerance_is_not_confirmed_with_reason() -> None:
    drifting = {w: -6.0 - 0.5 * math.log2(w / 64) for w in WIDTHS}
    report = analyze(surface({"mup": drifting, "sp": SP_OPT}))
    assert report.lr["mup"].drift_slope == pytest.approx(-0.5, abs=0.1)
    assert report.verdict == "not_confirmed"
    assert "the optimum moves: µP LR drift -0.49" in report.reason
    assert "lies wholly outside ±0.25" in report.reason and "doctor" in report.next_step
    # A looser tolerance passes the slope test, but copying the narrowest width's LR 1.5 log2
    # off the widest width's optimum costs more than the regret tolerance.
    loose = analyze(surface({"mup": drifting}), tolerance=0.6)
    assert loose.verdict == "not_confirmed"
    assert "copying the LR tuned at width 64 costs" in loose.reason


def test_without_mup_nothing_is_confirmed() -> None:
    report = analyze(surface({"sp": SP_OPT}))
    assert report.verdict == "not_confirmed" and "no µP runs" in report.reason


def test_wider_should_be_better_warning() -> None:
    floor = {64: 0.2, 128: 0.15, 256: 0.1, 512: 0.14}
    report = analyze(surface({"mup": MUP_OPT}, floor=floor))
    assert any("best loss rises with width" in m and "width 512" in m for m in report.warnings)
    better = analyze(surface({"mup": MUP_OPT}, floor={64: 0.2, 128: 0.15, 256: 0.1, 512: 0.09}))
    assert not any("best loss rises" in m for m in better.warnings)


def knob_surface(
    knob_optima: dict[str, dict[str, dict[int, float]]],
    knob_grid: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0),
    seeds: tuple[int, ...] = (0, 1),
) -> pd.DataFrame:
    """LR x knob grids: loss is a bowl in log2 LR and in log2 of each swept knob.

    `knob_optima[knob][param][width]` is that knob's true optimum (log2); the LR optimum is
    MUP_OPT (µP) or SP_OPT (SP). Every knob of GLOBAL_KNOBS has a column, as in
    `Store.runs_frame`: the unswept ones hold 1.0.
    """
    rng = np.random.default_rng(1)
    swept = list(knob_optima)
    params = sorted({p for by_param in knob_optima.values() for p in by_param})
    rows = []
    for param in params:
        lr_opt = MUP_OPT if param == "mup" else SP_OPT
        for w in WIDTHS:
            for setting in itertools.product(knob_grid, repeat=len(swept)):
                for seed in seeds:
                    for x in GRID:
                        loss = 0.1 + 0.05 * (x - lr_opt[w]) ** 2 + rng.normal(0, 0.001)
                        row = {k: 1.0 for k in GLOBAL_KNOBS}
                        for knob, v in zip(swept, setting, strict=True):
                            loss += 0.03 * (v - knob_optima[knob][param][w]) ** 2
                            row[knob] = 2.0**v
                        rows.append({"parametrization": param, "width": w, "lr": 2.0**x,
                                     "seed": seed, "state": "done", "final_train_loss": loss,
                                     **row})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("knob", GLOBAL_KNOBS)
def test_every_global_knob_sweep_is_reported_with_its_optimum_per_width(knob: str) -> None:
    """A sweep over any knob (attn_mult and input_mult included) is reported like the LR."""
    sp_drift = {w: 0.4 - 0.5 * math.log2(w / 64) for w in WIDTHS}  # SP's optimum slides
    runs = knob_surface({knob: {"mup": {w: 0.4 for w in WIDTHS}, "sp": sp_drift}})
    report = analyze(runs, target_width=2048)
    assert set(report.hparams) == {knob}
    assert list(report.hparams[knob]) == list(PARAM_ORDER)
    mup, sp = report.hparams[knob]["mup"], report.hparams[knob]["sp"]
    assert [w.width for w in mup.widths] == WIDTHS
    for w in mup.widths:
        assert w.opt_log2 == pytest.approx(0.4, abs=0.1), w.width
        assert w.ci_low <= w.opt_log2 <= w.ci_high
    for w in sp.widths:
        assert w.opt_log2 == pytest.approx(sp_drift[w.width], abs=0.1), w.width
    assert abs(mup.drift_slope) < 0.1 and sp.drift_slope == pytest.approx(-0.5, abs=0.1)
    for w, opt in optima_of(report).items():  # the LR is profiled over the knob
        assert opt == pytest.approx(MUP_OPT[w], abs=0.1)
    assert [v.hp for v in report.verdicts] == ["lr", knob]
    assert report.verdict == "confirmed", report.reason
    assert f"µP {knob} drift" in report.reason and f"SP {knob} drift -0.5" in report.reason
    assert math.log2(report.predicted_hparams()[knob]) == pytest.approx(0.4, abs=0.1)
    doc = report.to_contract_json()
    assert [w["opt_log2"] for w in doc["hparams"][knob]["mup"]["widths"]] == [
        w.opt_log2 for w in mup.widths
    ]


def test_two_knobs_swept_together_are_each_profiled() -> None:
    truth = {"attn_mult": -0.6, "input_mult": 0.7}
    runs = knob_surface(
        {k: {"mup": {w: v for w in WIDTHS}} for k, v in truth.items()},
        knob_grid=(-2.0, -1.0, 0.0, 1.0, 2.0), seeds=(0,),
    )
    report = analyze(runs)
    assert list(report.hparams) == ["attn_mult", "input_mult"]  # GLOBAL_KNOBS order
    for knob, opt in truth.items():
        for w in report.hparams[knob]["mup"].widths:
            assert w.opt_log2 == pytest.approx(opt, abs=0.1), (knob, w.width)
    assert [v.hp for v in report.verdicts] == ["lr", "attn_mult", "input_mult"]


def test_knob_columns_at_one_value_are_not_swept() -> None:
    """Store.runs_frame has a column per knob; knobs held fixed change nothing."""
    runs = surface({"mup": MUP_OPT, "sp": SP_OPT}).drop(columns=["init_std", "output_mult"])
    with_knobs = runs.assign(**{k: 1.0 for k in GLOBAL_KNOBS})
    with_knobs.loc[with_knobs.index[::3], "attn_mult"] = None  # a missing value is the default
    report = analyze(with_knobs)
    assert report.hparams == {}
    assert report.model_dump() == analyze(runs).model_dump()


def test_parametrizations_are_listed_in_param_order() -> None:
    report = analyze(surface({"mup": MUP_OPT, "sp": SP_OPT, "ntk": MUP_OPT}))
    assert PARAM_ORDER == ("sp", "mup")
    assert list(report.lr) == ["sp", "mup", "ntk"]
    assert list(report.to_contract_json()["parametrizations"]) == ["sp", "mup", "ntk"]


def test_bad_input_names_the_fix() -> None:
    with pytest.raises(ValueError, match="lacks columns \\['final_train_loss'\\]"):
        analyze(pd.DataFrame({"parametrization": ["mup"], "width": [64], "seed": [0],
                              "state": ["done"], "lr": [1e-3]}))
    with pytest.raises(ValueError, match="tolerance must be a positive"):
        analyze(surface({"mup": MUP_OPT}), tolerance=0)
    empty = analyze(surface({"mup": MUP_OPT}).iloc[:0])
    assert empty.verdict == "inconclusive" and "run the sweep" in empty.next_step


def test_strict_interval_rule_needs_the_whole_interval_within_tolerance() -> None:
    # Noisy seeds: the slope is small (default rule confirms) but its interval pokes out.
    runs = surface({"mup": MUP_OPT, "sp": SP_OPT}, noise=0.04, rng_seed=1)
    default = analyze(runs)
    strict = analyze(runs, strict_interval=True)
    lo, hi = default.lr["mup"].drift_ci
    assert default.verdict == "confirmed" and abs(default.lr["mup"].drift_slope) <= 0.25
    assert hi > 0.25  # the interval is wider than the tolerance ...
    assert any("wider than the tolerance" in w for w in default.warnings)  # ... and said so
    assert strict.verdict == "inconclusive"
    assert "the interval is not within ±0.25 (strict rule)" in strict.reason
    assert strict.next_step.startswith("add ")
    # A clean sweep passes the strict rule too.
    assert analyze(surface({"mup": MUP_OPT, "sp": SP_OPT}), strict_interval=True).verdict == "confirmed"
