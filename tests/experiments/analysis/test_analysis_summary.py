"""The runs frame as the analysis reads it: one rule each for "diverged", the seed mean and the
parametrization order, shared by the report and the dashboard's curves."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import (
    PARAM_ORDER,
    analyze,
    diverged_mask,
    grid_optima,
    param_order,
    seed_mean,
    seed_summary,
    swept_hps,
)
from experiments.spec.run import GLOBAL_KNOBS

WIDTHS = (64, 128, 256)
LRS = (-10, -8, -6, -4)


def make_runs(
    widths: tuple[int, ...] = WIDTHS,
    lrs: tuple[int, ...] = LRS,
    seeds: tuple[int, ...] = (0, 1),
    params: tuple[str, ...] = ("sp", "mup"),
) -> pd.DataFrame:
    """Loss is a parabola in log2 LR whose optimum (-7) drifts down with width under SP; SP's
    widest model diverges at the top LR for every seed."""
    rows = []
    for param in params:
        for w in widths:
            shift = 0.0 if param == "mup" else -math.log2(w / widths[0])
            for lr in lrs:
                for seed in seeds:
                    loss = 1.0 + 0.05 * (lr - (-7 + shift)) ** 2 - 0.01 * math.log2(w) + 0.01 * seed
                    state = "done"
                    if lr == lrs[-1] and param == "sp" and w == widths[-1]:
                        state, loss = "diverged", float("nan")
                    rows.append(dict(run_id=len(rows) + 1, parametrization=param, width=w,
                                     lr=2.0**lr, log2_lr=float(lr), seed=seed, state=state,
                                     final_train_loss=loss, final_val_loss=loss + 0.1))
    return pd.DataFrame(rows)


def at(frame: pd.DataFrame, param: str, width: int, log2_lr: float) -> pd.Series:
    hit = frame[(frame.parametrization == param) & (frame.width == width)
                & (frame.log2_lr == log2_lr)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_param_order_is_sp_then_mup_then_the_rest() -> None:
    assert PARAM_ORDER == ("sp", "mup")
    assert param_order(["mup", "ntk", "sp", "mup", "abc"]) == ["sp", "mup", "abc", "ntk"]
    assert param_order(pd.Series(["mup"])) == ["mup"]
    assert param_order([]) == []


def test_diverged_is_the_engine_state_or_a_non_finite_loss() -> None:
    runs = pd.DataFrame({
        "state": ["done", "done", "done", "diverged", "running", "failed"],
        "final_train_loss": [0.5, float("nan"), float("inf"), 0.1, float("nan"), None],
    })
    assert list(diverged_mask(runs, "final_train_loss")) == [False, True, True, True, False, False]


def test_seed_mean_propagates_divergence_and_skips_missing() -> None:
    values = np.array([[1.0, 1.0, np.nan], [3.0, np.inf, np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" noise
        mean = seed_mean(values, axis=0)
    assert mean[0] == 2.0 and mean[1] == math.inf and math.isnan(mean[2])


def test_seed_summary_mean_min_max_and_divergence() -> None:
    summary = seed_summary(make_runs())
    assert len(summary) == 2 * 3 * 4
    assert list(summary.columns[:3]) == ["parametrization", "width", "log2_lr"]
    row = at(summary, "mup", 64, -8)
    assert row.loss_mean == pytest.approx(1.0 + 0.05 - 0.06 + 0.005)
    assert row.loss_min == pytest.approx(row.loss_mean - 0.005)
    assert row.loss_max == pytest.approx(row.loss_mean + 0.005)
    assert row.n_seeds == 2 and row.n_diverged == 0
    bad = at(summary, "sp", 256, -4)
    assert bad.n_diverged == 2 and bad.loss_mean == math.inf
    assert math.isnan(bad.loss_min) and math.isnan(bad.loss_max)


def test_one_diverged_seed_makes_the_grid_point_diverged() -> None:
    """The report's rule: a seed mean with one divergence is +inf and never an optimum, even
    when the seed that trained reached the lowest loss of all."""
    runs = make_runs(params=("mup",))
    hit = (runs.width == 128) & (runs.log2_lr == -6) & (runs.seed == 1)
    runs.loc[hit, "state"] = "diverged"
    runs.loc[(runs.width == 128) & (runs.log2_lr == -6) & (runs.seed == 0), "final_train_loss"] = 0.0
    summary = seed_summary(runs)
    point = at(summary, "mup", 128, -6)
    assert point.loss_mean == math.inf and point.n_diverged == 1 and point.n_seeds == 2
    assert point.loss_min == 0.0 and point.loss_max == 0.0  # the seed that trained
    best = grid_optima(summary)
    assert best[best.width == 128].opt_log2_lr.item() == -8.0
    report = analyze(runs)
    assert next(w for w in report.lr["mup"].widths if w.width == 128).grid_log2 == -8.0


def test_seed_summary_ignores_unfinished_runs() -> None:
    runs = make_runs()
    runs.loc[runs.index[:5], "state"] = "running"
    summary = seed_summary(runs)
    assert summary["n_seeds"].sum() == len(runs) - 5
    # The first five runs: SP width 64 at log2 LR -10 and -8 (both seeds) and -6 (seed 0).
    sp64 = summary[(summary.parametrization == "sp") & (summary.width == 64)]
    assert list(sp64.log2_lr) == [-6.0, -4.0] and list(sp64.n_seeds) == [1, 2]
    nothing = seed_summary(runs.assign(state="queued"))
    assert nothing.empty and "loss_mean" in nothing.columns


def test_grid_optima_picks_the_lowest_mean_like_the_report() -> None:
    runs = make_runs()
    optima = grid_optima(seed_summary(runs))
    assert list(optima.columns) == ["parametrization", "width", "opt_log2_lr", "best_loss"]
    # -8 and -6 tie on the parabola around -7: the smaller LR wins, as in curve_optimum.
    assert list(optima[optima.parametrization == "mup"].opt_log2_lr) == [-8.0, -8.0, -8.0]
    sp = optima[optima.parametrization == "sp"].sort_values("width")
    assert list(sp.opt_log2_lr) == [-8.0, -8.0, -10.0]  # SP's optimum falls with width
    report = analyze(runs, n_bootstrap=0)
    for param, drift in report.lr.items():
        grid = {w.width: w.grid_log2 for w in drift.widths}
        assert grid == dict(zip(optima[optima.parametrization == param].width,
                                optima[optima.parametrization == param].opt_log2_lr,
                                strict=True))


def test_grid_optima_leaves_out_widths_with_no_trained_point() -> None:
    runs = make_runs(params=("mup",))
    runs.loc[runs.width == 256, "state"] = "diverged"
    optima = grid_optima(seed_summary(runs))
    assert list(optima.width) == [64, 128]
    assert grid_optima(seed_summary(runs.assign(state="diverged"))).empty


def test_a_swept_knob_is_profiled_out_of_the_lr_curve() -> None:
    """With output_mult swept, each LR's point is the best output_mult's seed mean (the curve
    the report fits), not an average over output_mult values."""
    base = make_runs(params=("mup",), seeds=(0,))
    frames = []
    for log2_om, penalty in ((-1.0, 0.2), (0.0, 0.0), (1.0, 0.1)):
        frames.append(base.assign(output_mult=2.0**log2_om,
                                  final_train_loss=base.final_train_loss + penalty))
    runs = pd.concat(frames, ignore_index=True).assign(**{"init_std": 1.0})
    assert swept_hps(runs) == ["output_mult"]
    summary = seed_summary(runs)
    assert len(summary) == 3 * 4
    for row in summary.itertuples():
        plain = at(seed_summary(base), "mup", row.width, row.log2_lr)
        assert row.loss_mean == pytest.approx(plain.loss_mean)  # the penalty-free setting
        assert row.n_seeds == 1
    report = analyze(runs, n_bootstrap=0)
    best = grid_optima(summary)
    assert [w.grid_log2 for w in report.lr["mup"].widths] == list(best.opt_log2_lr)


def test_swept_hps_follows_global_knobs() -> None:
    runs = make_runs().assign(**{k: 1.0 for k in GLOBAL_KNOBS})
    assert swept_hps(runs) == []
    for knob in GLOBAL_KNOBS:
        assert swept_hps(runs.assign(**{knob: np.where(runs.seed == 0, 1.0, 2.0)})) == [knob]
    both = runs.assign(input_mult=runs.seed + 1.0, attn_mult=runs.seed + 1.0)
    assert swept_hps(both) == [k for k in GLOBAL_KNOBS if k in ("attn_mult", "input_mult")]
