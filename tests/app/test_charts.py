"""Chart builders are pure: DataFrames in, plotly Figures out, checked without a browser."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from app import charts


def make_runs(widths=(64, 128, 256), lrs=(-10, -8, -6, -4), seeds=(0, 1), params=("sp", "mup")) -> pd.DataFrame:
    """A synthetic sweep: loss is a parabola in log2 LR whose optimum drifts with width under SP."""
    rows = []
    run_id = 0
    for param in params:
        for w in widths:
            shift = 0.0 if param == "mup" else -math.log2(w / widths[0])
            for lr in lrs:
                for seed in seeds:
                    run_id += 1
                    loss = 1.0 + 0.05 * (lr - (-7 + shift)) ** 2 - 0.01 * math.log2(w) + 0.01 * seed
                    state = "done"
                    if lr == lrs[-1] and param == "sp" and w == widths[-1]:
                        state, loss = "diverged", float("nan")
                    rows.append(dict(run_id=run_id, parametrization=param, width=w, lr=2.0**lr,
                                     log2_lr=float(lr), seed=seed, state=state,
                                     final_train_loss=loss, final_val_loss=loss + 0.1))
    return pd.DataFrame(rows)


def test_seed_summary_mean_min_max_and_divergence():
    runs = make_runs()
    summary = charts.seed_summary(runs)
    assert len(summary) == 2 * 3 * 4
    row = summary[(summary.parametrization == "mup") & (summary.width == 64) & (summary.log2_lr == -8)].iloc[0]
    assert row.loss_min < row.loss_mean < row.loss_max
    assert row.n_seeds == 2 and row.n_diverged == 0
    bad = summary[(summary.parametrization == "sp") & (summary.width == 256) & (summary.log2_lr == -4)].iloc[0]
    assert bad.n_diverged == 2 and np.isnan(bad.loss_mean)


def test_seed_summary_ignores_unfinished_runs():
    runs = make_runs()
    runs.loc[runs.index[:5], "state"] = "running"
    assert charts.seed_summary(runs)["n_seeds"].sum() == len(runs) - 5


def test_grid_optima_picks_lowest_mean():
    optima = charts.grid_optima(charts.seed_summary(make_runs()))
    mup = optima[optima.parametrization == "mup"]
    assert set(mup.opt_log2_lr) == {-8.0} or set(mup.opt_log2_lr) == {-6.0}
    sp = optima[optima.parametrization == "sp"].sort_values("width")
    assert list(sp.opt_log2_lr) == sorted(sp.opt_log2_lr, reverse=True)  # SP optimum falls


def test_width_colors_are_sequential_and_distinct():
    colors = charts.width_colors([256, 64, 128, 64])
    assert list(colors) == [64, 128, 256]
    assert len(set(colors.values())) == 3
    assert charts.width_colors([]) == {}
    assert len(charts.width_colors([32])) == 1


def test_transfer_figure_two_panels_shared_axes_markers():
    fig = charts.transfer_figure(make_runs())
    assert isinstance(fig, go.Figure)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:2] == ["SP (standard)", "µP"]
    assert fig.layout.xaxis2.matches == "x" and fig.layout.yaxis2.matches == "y"
    names = [t.name for t in fig.data]
    assert sum(n == "optimum" for n in names) == 6  # one star per (param, width)
    assert sum(n == "diverged" for n in names) == 1  # only SP width 256 diverged
    mean_lines = [t for t in fig.data if t.name and t.name.startswith("width ")]
    assert len(mean_lines) == 6
    assert sum(bool(t.showlegend) for t in mean_lines) == 3  # legend lists each width once
    # Every mean point carries [param, width, log2_lr] for click-through.
    cd = mean_lines[0].customdata[0]
    assert cd[0] in ("sp", "mup") and int(cd[1]) in (64, 128, 256)
    # The same width has the same colour in both panels.
    by_name = {}
    for t in mean_lines:
        by_name.setdefault(t.name, set()).add(t.line.color)
    assert all(len(c) == 1 for c in by_name.values())


def test_transfer_figure_uses_given_optima():
    optima = pd.DataFrame([dict(parametrization="mup", width=64, opt_log2_lr=-7.3, best_loss=0.95)])
    fig = charts.transfer_figure(make_runs(params=("mup",)), optima=optima)
    stars = [t for t in fig.data if t.name == "optimum"]
    assert len(stars) == 1 and stars[0].x[0] == pytest.approx(-7.3)


def test_transfer_figure_empty_and_one_panel():
    empty = charts.transfer_figure(make_runs().assign(state="queued"))
    assert "No finished runs" in empty.layout.annotations[0].text
    fig = charts.transfer_figure(make_runs(params=("mup",)))
    assert [a.text for a in fig.layout.annotations][:1] == ["µP"]


def test_transfer_figure_y_range_not_crushed_by_outlier():
    runs = make_runs()
    runs.loc[0, "final_train_loss"] = 1e6  # a near-divergence that still finished
    fig = charts.transfer_figure(runs)
    assert fig.layout.yaxis.range[1] < 100


def test_optimum_figure_drift_lines():
    widths = pd.DataFrame([
        dict(parametrization=p, width=w, opt_log2_lr=o, ci_low=o - 0.5, ci_high=o + 0.5)
        for p, opts in (("sp", [-7, -8, -9]), ("mup", [-7, -7.1, -6.9]))
        for w, o in zip([64, 128, 256], opts, strict=True)
    ])
    drift = pd.DataFrame([dict(parametrization="sp", drift_slope=-1.0), dict(parametrization="mup", drift_slope=0.05)])
    fig = charts.optimum_figure(widths, drift)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 2
    sp_line = next(t for t in lines if t.name.startswith("SP"))
    assert sp_line.y[0] == pytest.approx(-7) and sp_line.y[1] == pytest.approx(-9)
    assert fig.layout.xaxis.type == "log"
    assert charts.optimum_figure(widths.iloc[0:0]).layout.annotations


def test_loss_curves_thinned_and_dashed_val():
    steps = np.arange(5000)
    metrics = pd.concat([
        pd.DataFrame(dict(run_id=1, step=steps, name="train_loss", value=1 / (1 + steps))),
        pd.DataFrame(dict(run_id=1, step=steps[::100], name="val_loss", value=1 / (1 + steps[::100]))),
        pd.DataFrame(dict(run_id=1, step=steps, name="grad_norm", value=1.0)),
    ])
    fig = charts.loss_curves_figure(metrics, labels={1: "seed 0"}, max_points=200)
    assert len(fig.data) == 2
    train = next(t for t in fig.data if "train_loss" in t.name)
    assert len(train.x) <= 200 and train.x[-1] == 4999 and train.name.startswith("seed 0")
    assert next(t for t in fig.data if "val_loss" in t.name).line.dash == "dot"
    assert charts.loss_curves_figure(metrics.iloc[0:0]).layout.annotations


def test_coord_check_small_multiples_log_log():
    rows = [dict(step=s, module=m, width=w, value=(w ** (0.5 if m == "readout" else 0.0)) * s)
            for s in range(1, 9) for m in ("input", "hidden.0", "readout") for w in (64, 128, 256, 512)]
    fig = charts.coord_check_figure(pd.DataFrame(rows), max_steps=4)
    titles = [a.text for a in fig.layout.annotations]
    assert len(titles) == 4 and titles[0] == "step 1" and titles[-1] == "step 8"
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert sum(bool(t.showlegend) for t in fig.data) == 3
