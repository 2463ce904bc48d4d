"""The best-loss forecast L(w) = L_inf + A * w^-alpha: the fit recovers known laws, the interval
covers the truth, and the forecast refuses (with its reason) on too few widths, losses that do
not fall with width and losses that follow no power law. Synthetic sweeps: each width's
loss-vs-LR curve is a parabola whose floor is the law at that width, plus seed noise
(`surface`), so each width's best loss is the law's value up to the noise. The loss the
analysis reads (`loss_used`) is validation where the runs have one, train on request.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from experiments.analysis import analyze
from experiments.analysis.forecast import fit_power_law, forecast_ladder, refusal
from experiments.analysis.forecast_schema import LadderPoint
from experiments.analysis.loss_choice import has_val_split, resolve_loss
from experiments.analysis.summary import prepare_runs
from tests.experiments.analysis.test_analysis_report import MUP_OPT, surface

L_INF, A, ALPHA = 0.6, 4.0, 0.7
WIDTHS = (64, 128, 256, 512, 1024)


def law(w: float, l_inf: float = L_INF, a: float = A, alpha: float = ALPHA) -> float:
    return l_inf + a * w**-alpha


def law_sweep(widths: tuple[int, ...] = WIDTHS, noise: float = 0.002, **kw: float):
    """µP runs (optimum put at -7.3 at every width) whose floors follow the law."""
    return surface({"mup": {w: -7.3 for w in widths}}, floor={w: law(w, **kw) for w in widths},
                   noise=noise)


def test_fit_recovers_a_known_law_exactly() -> None:
    fit = fit_power_law(WIDTHS, [law(w) for w in WIDTHS])
    assert fit is not None
    assert fit.l_inf == pytest.approx(L_INF, rel=1e-6)
    assert fit.a == pytest.approx(A, rel=1e-5)
    assert fit.alpha == pytest.approx(ALPHA, rel=1e-5)
    assert fit.r2 == pytest.approx(1.0)
    assert float(fit.predict(8192)) == pytest.approx(law(8192), rel=1e-6)


def test_fit_keeps_l_inf_between_zero_and_the_smallest_loss() -> None:
    # Losses that fall faster than any power law can reach: the free intercept would sit
    # above the smallest loss; the bound holds it there.
    ys = [1.0, 0.5, 0.45, 0.449]
    fit = fit_power_law([64, 128, 256, 512], ys)
    assert fit is not None and 0.0 <= fit.l_inf <= min(ys) + 1e-12
    # A law with no floor (L_inf 0): the bound at zero, never a negative cross-entropy.
    fit0 = fit_power_law(WIDTHS, [law(w, l_inf=0.0) for w in WIDTHS])
    assert fit0 is not None and fit0.l_inf == pytest.approx(0.0, abs=1e-9)
    assert fit0.alpha == pytest.approx(ALPHA, rel=1e-4)


def test_forecast_from_a_noisy_ladder_covers_the_truth_at_the_target() -> None:
    report = analyze(law_sweep(), loss="train", target_width=4096)
    f = report.forecast["mup"]
    assert f.refused is None, f.refused
    assert f.params is not None and f.params["alpha"] == pytest.approx(ALPHA, abs=0.25)
    [at] = f.at
    assert at.width == 4096 and at.extrapolated
    assert at.ci_low is not None and at.ci_high is not None
    assert at.ci_low <= law(4096) <= at.ci_high, (at, law(4096))
    assert at.ci_low <= at.loss <= at.ci_high
    assert f.fit_quality["r2"] > 0.99 and f.fit_quality["n_bootstrap"] == 200
    assert [p.width for p in f.points] == list(WIDTHS)


def test_leave_one_out_predicts_the_widest_width() -> None:
    runs = law_sweep()
    report = analyze(runs[runs["width"] < 1024], loss="train", target_width=1024)
    at = report.forecast["mup"].point_at(1024)
    assert at is not None and at.ci_low is not None and at.ci_high is not None
    best = {w.width: w.best_loss for w in analyze(runs, loss="train").lr["mup"].widths}[1024]
    assert best is not None and at.ci_low - 0.004 <= best <= at.ci_high + 0.004


def test_refuses_a_three_width_ladder() -> None:
    runs = law_sweep(widths=(64, 128, 256))
    f = analyze(runs, loss="train", target_width=1024).forecast["mup"]
    assert f.refused is not None and f.refused.startswith("too few widths: 3")
    assert f.params is None and f.at == []
    assert f.contract_json()["refused"] == f.refused  # the JSON says why, with no number


def test_refuses_losses_that_do_not_fall_with_width() -> None:
    rising = surface({"mup": MUP_OPT}, floor={64: 0.10, 128: 0.12, 256: 0.13, 512: 0.15})
    f = analyze(rising, loss="train", target_width=1024).forecast["mup"]
    assert f.refused is not None and f.refused.startswith("non-monotone losses"), f.refused
    # One rung rising above the noise in an otherwise falling ladder refuses too.
    bump = surface({"mup": MUP_OPT}, floor={64: 0.20, 128: 0.12, 256: 0.16, 512: 0.10})
    f = analyze(bump, loss="train").forecast["mup"]
    assert f.refused is not None and "rises from" in f.refused, f.refused


def test_a_rise_within_the_seed_noise_is_not_a_refusal() -> None:
    points = [LadderPoint(width=w, loss=y, seed_sd=0.02, n_seeds=3)
              for w, y in zip((64, 128, 256, 512), (0.30, 0.25, 0.255, 0.22), strict=True)]
    assert refusal(points) is None
    noiseless = [p.model_copy(update={"seed_sd": None, "n_seeds": 1}) for p in points]
    assert refusal(noiseless) is not None  # 0.005 is 2% of the loss: more than 1% allows


def test_refuses_a_poor_fit() -> None:
    # A fast fall onto a plateau (within the noise) is a power law with a floor: forecast.
    zigzag = surface({"mup": MUP_OPT}, floor={64: 0.300, 128: 0.200, 256: 0.2015, 512: 0.199},
                     noise=0.0005)
    frame = prepare_runs(zigzag, "final_train_loss")
    f = forecast_ladder(frame, "mup", [], [1024], n_bootstrap=20)
    assert f.refused is None
    # Flat within the noise but for a slight net fall: no rise beyond the noise, no power law.
    wobble = surface({"mup": MUP_OPT}, floor={64: 0.300, 128: 0.2975, 256: 0.300, 512: 0.2965},
                     noise=0.02)
    f = forecast_ladder(prepare_runs(wobble, "final_train_loss"), "mup", [], [1024],
                        n_bootstrap=20)
    assert f.refused is not None and f.refused.startswith("poor fit"), f.refused


def test_one_seed_gives_a_residual_bootstrap_interval() -> None:
    runs = law_sweep(noise=0.001)
    runs = runs[runs["seed"] == 0]
    f = analyze(runs, loss="train", target_width=2048).forecast["mup"]
    assert f.refused is None and f.ci_method.startswith("one seed: residual bootstrap")
    [at] = f.at
    assert at.ci_low is not None and at.ci_high is not None and at.ci_low < at.ci_high


def test_contract_json_and_the_loss_used() -> None:
    runs = law_sweep()
    doc = json.loads(json.dumps(analyze(runs, target_width=2048).to_contract_json(),
                                allow_nan=False))
    # `surface` gives every run a validation loss; the library default reads the train loss.
    assert doc["loss"] == "final_train_loss" and doc["loss_used"] == "train"
    f = doc["forecast"]["mup"]
    assert {"form", "params", "at", "fit_quality"} <= set(f)
    assert set(f["params"]) == {"L_inf", "A", "alpha"}
    assert {"width", "loss", "ci_low", "ci_high"} <= set(f["at"][0])
    auto = analyze(runs, loss="auto").to_contract_json()
    assert auto["loss"] == "final_val_loss" and auto["loss_used"] == "val"
    assert "validation split" in auto["loss_reason"]
    # The validation loss is the train loss + 0.01 here: the forecast moves with it.
    assert auto["forecast"]["mup"]["points"][0]["loss"] == pytest.approx(
        doc["forecast"]["mup"]["points"][0]["loss"] + 0.01)


def test_auto_falls_back_to_train_without_a_validation_loss() -> None:
    runs = law_sweep()
    assert has_val_split(runs)
    no_val = runs.assign(final_val_loss=None)
    assert not has_val_split(no_val)
    assert resolve_loss(no_val, "auto")[0] == "final_train_loss"
    assert resolve_loss(runs, "val") == ("final_val_loss", "validation loss, as chosen")
    with pytest.raises(ValueError, match="loss must be one of"):
        resolve_loss(runs, "test")


def test_sp_scatter_is_forecast_separately() -> None:
    runs = surface({"mup": {w: -7.3 for w in WIDTHS}, "sp": {w: -7.0 for w in WIDTHS}},
                   floor={w: law(w) for w in WIDTHS})
    fc = analyze(runs, loss="train", target_width=2048).forecast
    assert list(fc) == ["sp", "mup"]
    assert all(f.refused is None for f in fc.values())
    assert math.isclose(fc["sp"].at[0].loss, fc["mup"].at[0].loss, rel_tol=0.05)
    assert np.isfinite(fc["mup"].at[0].loss)


def test_a_depth_ladder_is_forecast_along_depth() -> None:
    from tests.experiments.analysis.test_analysis_ladder import ladder

    runs = ladder({"mup": -7.0, "completep": -7.0}, {"mup": -0.8, "completep": 0.0})
    runs["final_train_loss"] += 0.5 * runs["depth"].astype(float) ** -0.8  # falls with depth
    report = analyze(runs, loss="train", n_bootstrap=50)
    f = report.forecast_depth["completep"]
    assert f.axis == "depth" and f.refused is None, f.refused
    assert [p.width for p in f.points] == [2, 4, 8, 16]
    assert f.params is not None and f.params["alpha"] == pytest.approx(0.8, abs=0.3)
    doc = report.to_contract_json()
    assert doc["forecast_depth"]["completep"]["axis"] == "depth"
    # The width section sees two widths at the base depth: too few for a forecast.
    assert doc["forecast"]["completep"]["refused"].startswith("too few widths: 2")
    assert "forecast_depth" not in analyze(law_sweep(), loss="train").to_contract_json()
