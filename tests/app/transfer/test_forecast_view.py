"""The Transfer page's forecast chart and sentence, from reports of synthetic sweeps whose best
losses follow a known power law (`tests/experiments/analysis/test_forecast.py`)."""

from __future__ import annotations

import math

from app.transfer.forecast_view import forecast_figure, forecast_sentence
from experiments.analysis import analyze
from tests.experiments.analysis.test_analysis_report import surface
from tests.experiments.analysis.test_forecast import WIDTHS, law

SP_FLOOR = {w: law(w) + 0.05 for w in WIDTHS}  # tuned SP a clear 0.05 worse at every width


def two_params(target: int | None = 4096):
    runs = surface({"mup": {w: -7.3 for w in WIDTHS}, "sp": {w: -7.0 for w in WIDTHS}},
                   floor={w: law(w) for w in WIDTHS})
    sp = surface({"sp": {w: -7.0 for w in WIDTHS}}, floor=SP_FLOOR, rng_seed=1)
    runs = runs[runs["parametrization"] == "mup"]
    import pandas as pd

    return analyze(pd.concat([runs, sp], ignore_index=True), loss="train", target_width=target)


def test_figure_has_points_fits_and_the_target_on_a_log_axis() -> None:
    report = two_params()
    fig = forecast_figure(report.forecast, report.loss)
    names = [t.name for t in fig.data]
    assert "µP" in names and any(n.startswith("µP fit, alpha") for n in names)
    assert "µP forecast at 4096" in names and "SP (standard) forecast at 4096" in names
    assert fig.layout.xaxis.type == "log" and 4096 in fig.layout.xaxis.tickvals
    target = next(t for t in fig.data if t.name == "µP forecast at 4096")
    at = report.forecast["mup"].at[0]
    assert math.isclose(target.y[0], at.loss)
    assert math.isclose(target.error_y.array[0], at.ci_high - at.loss)
    fit = next(t for t in fig.data if t.name.startswith("µP fit"))
    assert max(fit.x) == 4096 and min(fit.x) == WIDTHS[0]  # the curve reaches the target
    points = next(t for t in fig.data if t.name == "µP")
    assert list(points.x) == list(WIDTHS) and all(e > 0 for e in points.error_y.array)


def test_sentence_says_which_is_forecast_better() -> None:
    said = forecast_sentence(two_params())
    assert said is not None and said.startswith("At width 4096, µP is forecast to reach a train")
    assert said.endswith("µP is forecast better, beyond both intervals.")
    assert forecast_sentence(two_params(target=None)) is None


def test_a_refused_forecast_is_drawn_as_points_and_said() -> None:
    runs = surface({"mup": {64: -7.3, 128: -7.3, 256: -7.3}},
                   floor={64: 0.3, 128: 0.25, 256: 0.22})
    report = analyze(runs, loss="train", target_width=1024)
    fig = forecast_figure(report.forecast, report.loss)
    assert [t.name for t in fig.data] == ["µP (no forecast)"]
    said = forecast_sentence(report)
    assert said is not None and "too few widths" in said
