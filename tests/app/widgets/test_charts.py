"""Chart builders are pure: DataFrames in, plotly Figures out, checked without a browser."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from app.widgets import charts
from experiments.analysis import seed_summary


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


def traces(fig: go.Figure, name: str | None = None, panel: str | None = None) -> list:
    """The figure's traces, optionally only those named `name` in panel "x" (left) / "x2"."""
    return [t for t in fig.data
            if (name is None or t.name == name) and (panel is None or t.xaxis == panel)]


def test_width_colors_are_sequential_and_distinct():
    colors = charts.width_colors([256, 64, 128, 64])
    assert list(colors) == [64, 128, 256]
    assert len(set(colors.values())) == 3
    assert charts.width_colors([]) == {}
    assert len(charts.width_colors([32])) == 1


def test_transfer_figure_panels_in_param_order_with_shared_axes():
    fig = charts.transfer_figure(make_runs())
    assert [a.text for a in fig.layout.annotations] == ["SP (standard)", "µP"]  # PARAM_ORDER
    assert fig.layout.xaxis2.matches == "x" and fig.layout.yaxis2.matches == "y"
    assert fig.layout.xaxis.title.text == "log2 learning rate"
    assert fig.layout.yaxis.title.text == "final train loss"
    # Marker explanations, once, at the end of the legend.
    assert [t.name for t in fig.data[-2:]] == ["optimum (per width)", "diverged run"]


def test_transfer_figure_mean_lines_are_the_seed_means():
    runs = make_runs()
    fig = charts.transfer_figure(runs)
    summary = seed_summary(runs)
    for panel, param in (("x", "sp"), ("x2", "mup")):
        lines = [t for t in traces(fig, panel=panel) if (t.name or "").startswith("width ")]
        assert [t.name for t in lines] == ["width 64", "width 128", "width 256"]
        for t in lines:
            width = int(t.name.split()[1])
            rows = summary[(summary.parametrization == param) & (summary.width == width)]
            rows = rows[np.isfinite(rows.loss_mean)]
            assert list(t.x) == list(rows.log2_lr)
            assert list(t.y) == pytest.approx(list(rows.loss_mean))
            # Every mean point carries [param, width, log2_lr] for click-through.
            assert [tuple(c) for c in t.customdata] == [(param, str(width), str(x)) for x in t.x]
    # SP's widest model diverged at the top LR: its line stops before it.
    assert list(next(t for t in traces(fig, "width 256", "x")).x) == [-10.0, -8.0, -6.0]
    mean_lines = [t for t in fig.data if (t.name or "").startswith("width ")]
    assert [t.name for t in mean_lines if t.showlegend] == ["width 64", "width 128", "width 256"]
    colors: dict[str, set[str]] = {}
    for t in mean_lines:  # one colour per width, in both panels
        colors.setdefault(t.name, set()).add(t.line.color)
    assert all(len(c) == 1 for c in colors.values()) and len(set().union(*colors.values())) == 3


def test_transfer_figure_marks_optima_and_divergence():
    fig = charts.transfer_figure(make_runs())
    stars = traces(fig, charts.OPTIMUM_NAME)
    assert len(stars) == 6  # one per (param, width)
    # No report given: the best grid point per width (SP's optimum falls with width).
    assert [t.x[0] for t in traces(fig, charts.OPTIMUM_NAME, "x")] == [-8.0, -8.0, -10.0]
    assert [t.x[0] for t in traces(fig, charts.OPTIMUM_NAME, "x2")] == [-8.0, -8.0, -8.0]
    crosses = traces(fig, charts.DIVERGED_NAME)
    assert len(crosses) == 1 and crosses[0].xaxis == "x"  # only SP width 256 diverged
    assert list(crosses[0].x) == [-4.0]
    assert list(crosses[0].customdata[0][3:]) == ["2", "2"]  # 2 of 2 seeds
    y_lo, y_hi = fig.layout.yaxis.range
    assert y_lo < crosses[0].y[0] < y_hi and crosses[0].y[0] > max(
        max(t.y) for t in fig.data if (t.name or "").startswith("width ")
    )


def test_transfer_figure_one_diverged_seed_removes_the_point_from_the_mean():
    runs = make_runs(params=("mup",))
    hit = (runs.width == 128) & (runs.log2_lr == -8) & (runs.seed == 1)
    runs.loc[hit, "state"] = "diverged"
    runs.loc[hit, "final_train_loss"] = float("nan")
    fig = charts.transfer_figure(runs)
    assert list(traces(fig, "width 128")[0].x) == [-10.0, -6.0, -4.0]
    crosses = traces(fig, charts.DIVERGED_NAME)
    assert len(crosses) == 1 and list(crosses[0].x) == [-8.0]
    assert list(crosses[0].customdata[0][3:]) == ["1", "2"]
    star = [t for t in traces(fig, charts.OPTIMUM_NAME) if t.marker.color == traces(fig, "width 128")[0].line.color]
    assert len(star) == 1 and star[0].x[0] == -6.0  # never the diverged point


def test_transfer_figure_uses_given_optima():
    optima = pd.DataFrame([dict(parametrization="mup", width=64, opt_log2_lr=-7.3, best_loss=0.95)])
    fig = charts.transfer_figure(make_runs(params=("mup",)), optima=optima)
    stars = traces(fig, charts.OPTIMUM_NAME)
    assert len(stars) == 1 and stars[0].x[0] == pytest.approx(-7.3)
    assert stars[0].y[0] == pytest.approx(0.95)
    assert stars[0].marker.color == traces(fig, "width 64")[0].line.color


def test_transfer_figure_empty_and_one_panel():
    empty = charts.transfer_figure(make_runs().assign(state="queued"))
    assert "No finished runs" in empty.layout.annotations[0].text
    assert len(empty.data) == 0
    fig = charts.transfer_figure(make_runs(params=("mup",)))
    assert [a.text for a in fig.layout.annotations] == ["µP"]
    assert {t.xaxis for t in fig.data} == {"x"}


def test_transfer_figure_y_range_not_crushed_by_outlier():
    runs = make_runs()
    runs.loc[0, "final_train_loss"] = 1e6  # a near-divergence that still finished
    fig = charts.transfer_figure(runs)
    y_lo, y_hi = fig.layout.yaxis.range
    assert y_hi < 100
    finite = runs.final_train_loss[np.isfinite(runs.final_train_loss)]
    assert y_lo < finite.min()


def test_optimum_figure_drift_lines():
    widths = pd.DataFrame([
        dict(parametrization=p, width=w, opt_log2_lr=o, ci_low=o - 0.5, ci_high=o + 0.5)
        for p, opts in (("sp", [-7, -8, -9]), ("mup", [-7, -7.1, -6.9]))
        for w, o in zip([64, 128, 256], opts, strict=True)
    ])
    drift = pd.DataFrame([dict(parametrization="sp", drift_slope=-1.0), dict(parametrization="mup", drift_slope=0.05)])
    fig = charts.optimum_figure(widths, drift)
    markers = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in markers] == ["SP (standard)", "µP"]  # PARAM_ORDER
    assert list(markers[1].y) == [-7, -7.1, -6.9]
    assert list(markers[1].error_y.array) == pytest.approx([0.5, 0.5, 0.5])
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


def test_legends_list_only_lines_that_draw_and_log_axes_label_decades():
    import math as _math

    import pandas as _pd

    from app.transfer.regret_view import regret_figure
    from app.widgets import charts as _charts

    metrics = _pd.DataFrame({"run_id": [1, 1, 1, 1], "step": [10, 20, 30, 30],
                             "name": ["train_loss"] * 3 + ["val_loss"], "value": [2.0, 1.5, 1.2, 1.3]})
    fig = _charts.loss_curves_figure(metrics)
    modes = {t.name.split(" · ")[1]: t.mode for t in fig.data}
    assert modes == {"train_loss": "lines", "val_loss": "markers"}  # one point: a marker
    # A zero-initialised readout has no point at step 0: it is still in the legend.
    table = _pd.DataFrame({"step": [0, 0, 0, 0, 5, 5, 5, 5], "module": ["hidden", "hidden", "readout", "readout"] * 2,
                           "width": [64, 128] * 4, "value": [1.0, 1.0, 0.0, 0.0, 1.0, 1.1, 0.01, 0.02]})
    fig = _charts.coord_check_figure(table)
    assert sorted(t.name for t in fig.data if t.showlegend) == ["hidden", "readout"]
    assert fig.layout.yaxis.dtick == 1  # values span two decades: labels at powers of ten
    assert _charts.log_ticks([1.0, 2.0]) == {"dtick": "D2"}
    regret = _pd.DataFrame({"parametrization": ["mup", "sp"], "width": [128, 128], "rel": [0.003, 0.4],
                            "ci_low": [0.001, 0.3], "ci_high": [0.005, 0.5]})
    fig = regret_figure(regret, tolerance=0.01)
    (label,) = [a for a in fig.layout.annotations if a.text.startswith("tolerance")]
    assert label.y == _math.log10(1.0)  # the 1% line, in log10 units on a log axis
