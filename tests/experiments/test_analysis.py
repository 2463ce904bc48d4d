"""The µTransfer analysis on synthetic loss surfaces whose optima are known exactly.

Each surface is loss = floor + curvature * (log2 LR - optimum)^2 (+ seeded noise), so the true
optimum of every width is known; the analysis must recover it within 0.1 log2 (the issue's
acceptance bar) on uniform and non-uniform grids, with one or several seeds, and handle grid
edges, diverged runs and all-diverged widths as documented.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import analyze, curvature_interval, curve_optimum

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


# --- One curve -------------------------------------------------------------------------------


def test_curve_optimum_exact_on_a_nonuniform_parabola() -> None:
    xs = np.array([-12.0, -10.0, -9.0, -8.5, -7.2, -5.0, -4.5])
    ys = 0.3 + 0.07 * (xs + 8.1) ** 2
    opt = curve_optimum(xs, ys)
    assert opt is not None and opt.refined
    assert opt.grid_log2 == -8.5
    assert opt.opt_log2 == pytest.approx(-8.1, abs=1e-9)
    assert opt.best_loss == pytest.approx(0.3, abs=1e-9)
    lo, hi = curvature_interval(opt, delta=0.07 * 0.2**2)
    assert (lo, hi) == (pytest.approx(-8.3), pytest.approx(-7.9))


def test_curve_optimum_edges_flat_and_diverged_neighbours() -> None:
    xs = np.arange(-6.0, -2.0)
    upper = curve_optimum(xs, np.array([0.9, 0.7, 0.5, 0.3]))
    assert upper is not None and upper.edge == "upper" and not upper.refined
    assert upper.opt_log2 == -3.0
    assert curvature_interval(upper, 0.01) == (-3.5, -2.0)  # one full step beyond the edge
    lower = curve_optimum(xs, np.array([0.3, 0.5, 0.7, 0.9]))
    assert lower is not None and lower.edge == "lower"
    tie = curve_optimum(xs, np.array([0.5, 0.4, 0.4, 0.5]))  # symmetric: the midpoint
    assert tie is not None and tie.refined and tie.opt_log2 == pytest.approx(-4.5)
    cliff = curve_optimum(xs, np.array([0.5, 0.4, math.inf, math.inf]))
    assert cliff is not None and cliff.blocked == "diverged neighbour"
    assert cliff.opt_log2 == -5.0
    assert curve_optimum(xs, np.full(4, math.inf)) is None


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
    assert ("mup: optimum at the upper edge of the grid for width 512: extend the grid to 2^-2"
            in report.warnings)
    assert report.verdict == "not_confirmed"
    assert "edge of the grid for widths [512]" in report.reason
    for w in report.lr["mup"].widths[:3]:
        assert w.opt_log2 == pytest.approx(-6.0, abs=0.1)


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
    assert "exceeds the tolerance ±0.25" in report.reason
    # A looser tolerance passes the slope test but the optima still disagree (1.5 log2 apart).
    loose = analyze(surface({"mup": drifting}), tolerance=0.6)
    assert loose.verdict == "not_confirmed"
    assert "per-width optima disagree" in loose.reason


def test_without_mup_nothing_is_confirmed() -> None:
    report = analyze(surface({"sp": SP_OPT}))
    assert report.verdict == "not_confirmed" and "no µP runs" in report.reason


def test_wider_should_be_better_warning() -> None:
    floor = {64: 0.2, 128: 0.15, 256: 0.1, 512: 0.14}
    report = analyze(surface({"mup": MUP_OPT}, floor=floor))
    assert any("best loss rises with width" in m and "width 512" in m for m in report.warnings)
    better = analyze(surface({"mup": MUP_OPT}, floor={64: 0.2, 128: 0.15, 256: 0.1, 512: 0.09}))
    assert not any("best loss rises" in m for m in better.warnings)


def test_swept_output_mult_is_analysed_too() -> None:
    """LR x output_mult grid: loss is a bowl in both; the output_mult optimum is known."""
    rows = []
    rng = np.random.default_rng(1)
    for w in WIDTHS:
        for log2_om in (-2.0, -1.0, 0.0, 1.0, 2.0):
            for seed in (0, 1):
                for x in GRID:
                    loss = (0.1 + 0.05 * (x - MUP_OPT[w]) ** 2 + 0.03 * (log2_om - 0.4) ** 2
                            + rng.normal(0, 0.001))
                    rows.append({"parametrization": "mup", "width": w, "lr": 2.0**x,
                                 "seed": seed, "init_std": 1.0, "output_mult": 2.0**log2_om,
                                 "state": "done", "final_train_loss": loss})
    report = analyze(pd.DataFrame(rows), target_width=2048)
    assert set(report.hparams) == {"output_mult"}
    om = report.hparams["output_mult"]["mup"]
    for w in om.widths:
        assert w.opt_log2 == pytest.approx(0.4, abs=0.1)
    for w, opt in optima_of(report).items():
        assert opt == pytest.approx(MUP_OPT[w], abs=0.1)
    assert [v.hp for v in report.verdicts] == ["lr", "output_mult"]
    assert report.verdict == "confirmed", report.reason
    hp = report.predicted_hparams()
    assert math.log2(hp["output_mult"]) == pytest.approx(0.4, abs=0.1)
    assert "output_mult" in report.to_contract_json()["hparams"]


def test_bad_input_names_the_fix() -> None:
    with pytest.raises(ValueError, match="lacks columns \\['final_train_loss'\\]"):
        analyze(pd.DataFrame({"parametrization": ["mup"], "width": [64], "seed": [0],
                              "state": ["done"], "lr": [1e-3]}))
    with pytest.raises(ValueError, match="tolerance must be a positive"):
        analyze(surface({"mup": MUP_OPT}), tolerance=0)
    empty = analyze(surface({"mup": MUP_OPT}).iloc[:0])
    assert empty.verdict == "not_confirmed"


def test_strict_interval_rule_needs_the_whole_interval_within_tolerance() -> None:
    # Noisy seeds: the slope is small (default rule confirms) but its interval pokes out.
    runs = surface({"mup": MUP_OPT, "sp": SP_OPT}, noise=0.04, rng_seed=1)
    default = analyze(runs)
    strict = analyze(runs, strict_interval=True)
    lo, hi = default.lr["mup"].drift_ci
    assert default.verdict == "confirmed" and abs(default.lr["mup"].drift_slope) <= 0.25
    assert hi > 0.25  # the interval is wider than the tolerance ...
    assert any("wider than the tolerance" in w for w in default.warnings)  # ... and said so
    assert strict.verdict == "not_confirmed"
    assert "not within the tolerance ±0.25 (strict rule)" in strict.reason
    # A clean sweep passes the strict rule too.
    assert analyze(surface({"mup": MUP_OPT, "sp": SP_OPT}), strict_interval=True).verdict == "confirmed"
