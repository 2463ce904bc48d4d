"""Transfer regret on synthetic curves whose regret is known exactly, and the verdict's rule (d).

Each width's loss is floor + curvature * (log2 LR - optimum)^2, sampled on an integer log2 grid,
so the parabola the optimum fit reads is the true curve and the regret at the proxy's optimum
is curvature * (proxy optimum - width optimum)^2 exactly (inside the parabola's span), or the
straight line between grid points outside it. Seeds add a constant offset each, so the seed
mean is the noiseless curve and the seed noise is known. The quick preset's real final losses
(`tests/fixtures/quick_preset_final_losses.json`) give the acceptance: µP's regret at the widest
width within the tolerance, SP's not.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import TransferReport, analyze
from experiments.analysis.curves import curve_optimum
from experiments.analysis.regret import fitted_loss
from experiments.analysis.regret_schema import WidthRegret
from experiments.analysis.verdict import regret_allowed, regret_exceeds

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "quick_preset_final_losses.json"
GRID = [float(x) for x in range(-12, -2)]  # 2^-12 .. 2^-3
CURV = 0.05
FLOOR = 0.1


def curves(
    optima: dict[str, dict[int, float]],
    grid: list[float] = GRID,
    offsets: tuple[float, ...] = (0.0,),
    seed_shift: tuple[float, ...] | None = None,
    diverged: dict[int, set[float]] | None = None,
) -> pd.DataFrame:
    """A runs frame of exact parabolas: seed k adds offsets[k] to the loss and moves the
    optimum by seed_shift[k] (default: not at all); grid points in diverged[width] diverge."""
    rows = []
    for param, by_width in optima.items():
        for width, opt in by_width.items():
            for k, off in enumerate(offsets):
                shift = seed_shift[k] if seed_shift else 0.0
                for x in grid:
                    bad = x in (diverged or {}).get(width, set())
                    loss = FLOOR + CURV * (x - opt - shift) ** 2 + off
                    rows.append({"width": width, "parametrization": param, "lr": 2.0**x,
                                 "log2_lr": x, "seed": k, "state": "diverged" if bad else "done",
                                 "final_train_loss": None if bad else loss,
                                 "final_val_loss": None if bad else loss})
    return pd.DataFrame(rows)


def rows_of(report: TransferReport, param: str = "mup") -> dict[int, Any]:
    """The report's regret rows of `param` by width (Any: the tests compare their numbers)."""
    return {r.width: r for r in report.regret[param].widths}


# --- The fitted curve and the numbers -------------------------------------------------------


def test_fitted_loss_is_the_parabola_inside_its_span_and_the_line_outside() -> None:
    xs = np.array(GRID)
    ys = FLOOR + CURV * (xs + 5.0) ** 2  # optimum on the grid point -5
    opt = curve_optimum(xs, ys)
    assert opt is not None and opt.refined
    assert fitted_loss(xs, ys, opt, -5.4) == (pytest.approx(FLOOR + CURV * 0.16), "ok")
    # Off the parabola's span [-6, -4]: the straight line between -8 and -7.
    want = FLOOR + CURV * (0.3 * 9 + 0.7 * 4)
    assert fitted_loss(xs, ys, opt, -7.3) == (pytest.approx(want), "ok")
    assert fitted_loss(xs, ys, opt, -12.0) == (pytest.approx(FLOOR + CURV * 49), "ok")
    assert fitted_loss(xs, ys, opt, -12.5) == (None, "outside_grid")
    assert fitted_loss(xs, ys, opt, -2.9) == (None, "outside_grid")


def test_regret_numbers_are_exact_on_known_parabolas() -> None:
    optima = {64: -7.3, 128: -7.0, 256: -5.0}
    report = analyze(curves({"mup": optima}))
    reg = report.regret["mup"]
    assert reg.proxy_width == 64 and reg.proxy_log2_lr == pytest.approx(-7.3)
    rows = rows_of(report)
    assert rows[64].abs == pytest.approx(0.0, abs=1e-12) and rows[64].rel == pytest.approx(0.0, abs=1e-12)
    # Inside width 128's parabola span [-8, -6]: curvature * 0.3^2 exactly.
    assert rows[128].abs == pytest.approx(CURV * 0.09)
    assert rows[128].rel == pytest.approx(CURV * 0.09 / FLOOR)
    assert rows[128].best_loss == pytest.approx(FLOOR)
    assert rows[128].loss_at_transfer == pytest.approx(FLOOR + CURV * 0.09)
    # Width 256's optimum -5 is 2.3 log2 away: the line between -8 and -7 (errs high: 5.5 > 5.29).
    assert rows[256].abs == pytest.approx(CURV * 5.5)
    assert rows[256].status == "ok" and rows[256].note is None
    # One seed: no interval and no noise estimate.
    assert rows[256].ci_low is None and rows[256].noise_rel is None
    assert "one seed" in reg.ci_method


def test_seed_noise_and_interval_with_known_offsets() -> None:
    # Three seeds offset by -d, 0, +d: the seed mean is the exact parabola, the seeds' std is d.
    d = 0.004
    report = analyze(curves({"mup": {64: -7.3, 128: -7.0}}, offsets=(-d, 0.0, d)))
    row = rows_of(report)[128]
    assert row.abs == pytest.approx(CURV * 0.09)
    assert row.noise_rel == pytest.approx(d / FLOOR)
    # Every resample is the parabola moved up or down: the optima and so the absolute regret
    # never change. One interval per number: the relative interval is the loss interval over
    # the best loss, so it does not move either (a quantile of resampled ratios would).
    assert row.abs_ci_low == pytest.approx(row.abs) and row.abs_ci_high == pytest.approx(row.abs)
    assert row.ci_low == pytest.approx(row.abs_ci_low / row.best_loss)
    assert row.ci_high == pytest.approx(row.abs_ci_high / row.best_loss)
    assert row.ci_low == pytest.approx(row.rel) == pytest.approx(row.ci_high)


def test_seed_noise_is_pooled_over_the_best_point_and_its_neighbours() -> None:
    # Two seeds at width 128 (optimum -7): +-a at the best grid point -7, +-b at -8 and -6,
    # +-c elsewhere (not pooled). A pair (-x, +x) has variance 2x^2 (ddof 1).
    a, b, c = 0.001, 0.003, 0.05
    frame = curves({"mup": {64: -7.3, 128: -7.0}}, offsets=(0.0, 0.0))
    at128 = frame["width"] == 128
    spread = np.where(frame["log2_lr"] == -7.0, a,
                      np.where(frame["log2_lr"].isin([-8.0, -6.0]), b, c))
    sign = np.where(frame["seed"] == 0, -1.0, 1.0)
    frame.loc[at128, "final_train_loss"] += (sign * spread)[at128.to_numpy()]
    row = rows_of(analyze(frame))[128]
    assert row.noise_abs == pytest.approx(math.sqrt((2 * a**2 + 2 * 2 * b**2) / 3))
    assert row.noise_rel == pytest.approx(row.noise_abs / FLOOR)


def test_best_loss_not_positive_judges_in_loss_units() -> None:
    # Floor -0.01 (a vertex fitted below zero): no relative regret, the rule compares losses.
    optima = {64: -7.3, 128: -7.1}
    report = analyze(curves({"mup": optima}, offsets=(-0.11,)))
    row = rows_of(report)[128]
    assert row.rel is None and row.abs == pytest.approx(CURV * 0.04)
    assert row.note == "best loss <= 0: no relative regret"
    # One seed: no noise, so nothing is allowed; two seeds +-0.003 allow 0.003 > 0.002.
    assert report.verdict == "not_confirmed"
    assert "costs 0.002 loss at width 128" in report.reason and "not positive" in report.reason
    noisy = analyze(curves({"mup": optima}, offsets=(-0.113, -0.107)))
    # The regret is within the floor; two widths cannot confirm the drift on their own.
    assert noisy.verdict == "inconclusive", noisy.reason
    assert "within the tolerance 0.00424 loss = the seed-noise floor" in noisy.reason  # sqrt(2 * 0.003^2)


def test_interval_reflects_seed_to_seed_optimum_spread_and_is_deterministic() -> None:
    # The seeds' optima at width 512 sit at -7.3 + {-0.5, 0, +0.5}: resampling seeds moves the
    # proxy's and the width's optima, so the interval is wide but holds the point estimate.
    frame = curves({"mup": {64: -7.3, 512: -7.3}}, offsets=(0.0, 0.0, 0.0),
                   seed_shift=(-0.5, 0.0, 0.5))
    a, b = analyze(frame), analyze(frame)
    row = rows_of(a)[512]
    assert row.model_dump() == rows_of(b)[512].model_dump()  # fixed RNG
    assert row.ci_low <= row.rel <= row.ci_high and row.ci_high > 0
    assert row.ci_low < row.ci_high


def test_out_of_range_and_diverged_neighbour_are_null_with_a_note() -> None:
    narrow = [float(x) for x in range(-5, 0)]  # 2^-5 .. 2^-1: excludes the proxy's -7.3
    wide_grid = curves({"mup": {256: -3.0}}, grid=narrow)
    frame = pd.concat([curves({"mup": {64: -7.3, 128: -7.5}}, diverged={128: {-7.0}}),
                       wide_grid], ignore_index=True)
    report = analyze(frame)
    rows = rows_of(report)
    assert rows[256].status == "outside_grid" and rows[256].abs is None and rows[256].rel is None
    assert "outside the LRs trained at width 256" in rows[256].note
    assert rows[128].status == "diverged" and rows[128].abs is None
    assert "diverged" in rows[128].note
    doc = json.loads(json.dumps(report.to_contract_json(), allow_nan=False))
    by_width = {r["width"]: r for r in doc["parametrizations"]["mup"]["regret"]}
    assert by_width[256]["abs"] is None and by_width[256]["ci_low"] is None
    # µP's widest width has no regret: the verdict says so rather than guessing (the drift of
    # three one-seed widths is undecided first, so its step leads).
    assert report.verdict == "inconclusive"
    assert "regret at width 256 is unknown" in report.reason


# --- The verdict's rule (d) ---------------------------------------------------------------


def test_mup_like_sweep_passes_and_states_the_regret() -> None:
    optima = {w: -7.3 + 0.05 * ((i % 2) * 2 - 1) for i, w in enumerate((64, 128, 256, 512))}
    report = analyze(curves({"mup": optima}, offsets=(-0.001, 0.0, 0.001)))
    assert report.verdict == "confirmed", report.reason
    row = rows_of(report)[512]
    assert row.rel < 0.01
    assert "copying the LR tuned at width 64 costs" in report.reason
    assert "within the tolerance 1.0% (as asked; the seed noise there is" in report.reason


def test_shifted_wide_optimum_fails_on_regret_although_drift_is_within_tolerance() -> None:
    # Five widths; only the widest's optimum moves, by 1 log2: least-squares drift 0.2 per
    # doubling (within 0.25) and the optima agree within one grid step, but copying costs
    # curvature * 1^2 / floor = 50% of the loss at width 1024.
    optima = {64: -7.0, 128: -7.0, 256: -7.0, 512: -7.0, 1024: -6.0}
    report = analyze(curves({"mup": optima}, offsets=(-0.001, 0.0, 0.001)))
    mup = report.lr["mup"]
    assert mup.drift_slope is not None and abs(mup.drift_slope) <= 0.25 and mup.optima_agree
    assert rows_of(report)[1024].rel == pytest.approx(CURV / FLOOR)
    assert report.verdict == "not_confirmed"
    assert "copying the LR tuned at width 64 costs 50% loss at width 1024" in report.reason
    assert "more than the tolerance 1.0% (as asked" in report.reason
    # A looser regret tolerance lets the same sweep through; the strict rule keeps its own test.
    assert analyze(curves({"mup": optima}), regret_tolerance=0.6).verdict == "confirmed"


def test_seed_noise_raises_the_allowance() -> None:
    # Regret 2% at width 512 (0.05 * 0.2^2 / 0.1), below a seed noise of 4%: within; with the
    # noise removed and a 0.1% tolerance it is not. Four widths, so the drift rests on its
    # estimate (+0.02 per doubling) and the regret decides.
    optima = {64: -7.3, 128: -7.1, 256: -7.3, 512: -7.1}
    noisy = analyze(curves({"mup": optima}, offsets=(-0.004, 0.0, 0.004)), regret_tolerance=0.001)
    row = rows_of(noisy)[512]
    assert row.rel == pytest.approx(0.02)
    assert regret_allowed(row, 0.001) == pytest.approx(0.004)  # the noise, in loss units
    assert noisy.verdict == "confirmed", noisy.reason
    # The tolerance applied is said as such: the floor's value, why, and what was asked.
    assert ("within the tolerance 4.0% = the seed-noise floor at width 512" in noisy.reason
            and "(you asked 0.1%)" in noisy.reason), noisy.reason
    assert noisy.regret_applied == {"width": 512, "abs": pytest.approx(0.004),
                                    "rel": pytest.approx(0.04), "asked": 0.001,
                                    "source": "seed_noise"}
    quiet = analyze(curves({"mup": optima}), regret_tolerance=0.001)
    assert quiet.verdict == "not_confirmed" and "more than the tolerance 0.1%" in quiet.reason
    assert quiet.regret_applied is not None and quiet.regret_applied["source"] == "asked"


def test_rule_fails_only_when_the_whole_interval_is_above_the_allowance() -> None:
    # Allowance max(1% of 0.1, noise 0.01) = 0.01 loss; the estimate 0.02 is above it.
    def row(ci_low: float | None) -> WidthRegret:
        return WidthRegret(width=512, abs=0.02, rel=0.2, best_loss=0.1, noise_abs=0.01,
                           abs_ci_low=ci_low, abs_ci_high=None if ci_low is None else 0.05)

    assert regret_allowed(row(None), 0.01) == pytest.approx(0.01)
    assert not regret_exceeds(row(0.005), 0.01)  # the interval reaches below: cannot tell
    assert regret_exceeds(row(0.015), 0.01)  # all of it above
    assert regret_exceeds(row(None), 0.01)  # one seed: the estimate decides
    assert not regret_exceeds(row(0.015), 0.2)  # 20% of the loss allows 0.02


def test_bad_regret_tolerance_names_the_fix() -> None:
    with pytest.raises(ValueError, match="regret_tolerance must be a positive fraction"):
        analyze(curves({"mup": {64: -7.0, 128: -7.0}}), regret_tolerance=0.0)


def test_contract_json_has_regret_rows_per_parametrization() -> None:
    report = analyze(curves({"sp": {64: -7.0, 128: -8.0}, "mup": {64: -7.0, 128: -7.0}},
                            offsets=(0.0, 0.001)))
    doc = json.loads(json.dumps(report.to_contract_json(), allow_nan=False))
    assert doc["regret_tolerance"] == 0.01
    for param in ("sp", "mup"):
        entry = doc["parametrizations"][param]
        assert "drift_slope" in entry and "widths" in entry  # existing fields stay
        assert entry["regret_proxy_width"] == 64
        assert [r["width"] for r in entry["regret"]] == [64, 128]
        for r in entry["regret"]:
            assert {"width", "abs", "rel", "ci_low", "ci_high"} <= set(r)
    sp128 = doc["parametrizations"]["sp"]["regret"][1]
    # The seed mean's floor is 0.1005 (offsets 0 and 0.001).
    assert sp128["abs"] == pytest.approx(CURV) and sp128["rel"] == pytest.approx(CURV / 0.1005)


# --- Acceptance on the quick preset's real losses ---------------------------------------------


def quick_preset_runs() -> pd.DataFrame:
    """The quick preset's final losses (4 widths, SP and µP, 10 LRs, 3 seeds) as a runs frame."""
    rows = []
    for run in json.loads(FIXTURE.read_text())["runs"]:
        m = re.fullmatch(r"w(\d+)-(\w+)-lr2\^(-?[\d.]+)-s(\d+)", run["run_key"])
        assert m is not None, run["run_key"]
        width, param, x, seed = m.groups()
        rows.append({"width": int(width), "parametrization": param, "log2_lr": float(x),
                     "lr": 2.0 ** float(x), "seed": int(seed), "state": run["state"],
                     "final_train_loss": run["final_train_loss"],
                     "final_val_loss": run["final_val_loss"]})
    return pd.DataFrame(rows)


def test_quick_preset_mup_regret_within_tolerance_and_sp_not() -> None:
    report = analyze(quick_preset_runs())
    mup, sp = rows_of(report, "mup")[512], rows_of(report, "sp")[512]
    assert report.regret["mup"].proxy_width == report.regret["sp"].proxy_width == 64
    tol = report.regret_tolerance
    assert tol == 0.01 and mup.rel is not None and sp.rel is not None
    assert not regret_exceeds(mup, tol) and mup.abs <= regret_allowed(mup, tol)
    assert regret_exceeds(sp, tol)
    # The numbers recorded in the README and `experiments.analysis.verdict` (train loss).
    assert mup.rel == pytest.approx(0.212, abs=0.001) and sp.rel == pytest.approx(4.03, abs=0.01)
    # Pooled seed noise over the best grid point and its neighbours (one point alone: 33%).
    assert mup.noise_rel is not None and math.isclose(mup.noise_rel, 0.559, abs_tol=0.001)
    assert sp.noise_rel is not None and math.isclose(sp.noise_rel, 0.460, abs_tol=0.001)
    assert report.verdict == "confirmed", report.reason
