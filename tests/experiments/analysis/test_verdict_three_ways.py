"""Three verdicts: confirmed, not_confirmed (the evidence says transfer fails) and inconclusive
(the evidence cannot tell), each with a next step; and a verdict that reads like its inputs.

Synthetic sweeps with known optima (exact parabolas, seeds that shift the optimum by known
amounts) test the rule in both directions; the quick preset's real final losses
(`tests/fixtures/quick_preset_final_losses.json`) test the wording on a real sweep, and its SP
runs, judged on their own, an SP-like drift of -0.66 per doubling.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import analyze
from experiments.analysis.outcome import overall_verdict
from experiments.analysis.regret_rule import fmt_pct, judge_regret
from experiments.analysis.regret_schema import RegretResult, WidthRegret
from tests.experiments.analysis.test_analysis_regret import quick_preset_runs

GRID = [float(x) for x in range(-12, -2)]
CURV, FLOOR = 0.05, 0.1


def sweep(optima: dict[int, float], seed_shifts: tuple[float, ...] = (0.0,),
          param: str = "mup") -> pd.DataFrame:
    """Exact parabolas floor + curv (x - optimum - shift_k)^2 per width and seed k."""
    rows = [{"width": w, "parametrization": param, "lr": 2.0**x, "log2_lr": x, "seed": k,
             "state": "done", "final_train_loss": FLOOR + CURV * (x - opt - shift) ** 2,
             "final_val_loss": None}
            for w, opt in optima.items() for k, shift in enumerate(seed_shifts) for x in GRID]
    return pd.DataFrame(rows)


def drifting(slope: float, widths: tuple[int, ...] = (64, 128, 256, 512)) -> dict[int, float]:
    return {w: -7.0 + slope * math.log2(w / widths[0]) for w in widths}


# --- Both directions on known drifts -----------------------------------------------------------


def test_a_stable_optimum_is_confirmed_with_export_as_the_next_step() -> None:
    report = analyze(sweep(drifting(0.0), seed_shifts=(-0.1, 0.0, 0.1)))
    assert report.verdict == "confirmed", report.reason
    assert report.next_step.startswith("export the HPs")
    assert report.to_contract_json()["next_step"] == report.next_step


def test_an_sp_like_drift_is_not_confirmed_and_points_at_the_doctor() -> None:
    report = analyze(sweep(drifting(-0.6), seed_shifts=(-0.1, 0.0, 0.1)))
    mup = report.lr["mup"]
    assert mup.drift_slope == pytest.approx(-0.6, abs=0.05)
    assert mup.drift_ci is not None and mup.drift_ci[1] < -0.25  # wholly outside
    assert report.verdict == "not_confirmed"
    assert "the optimum moves: µP LR drift -0.60" in report.reason
    assert "doctor" in report.next_step


def test_a_drift_estimate_outside_the_tolerance_with_a_wide_interval_is_inconclusive() -> None:
    # The seeds scatter the optimum by ±1.5 log2 at the widest width: its estimate drifts
    # (+0.4 per doubling) but the interval reaches well inside ±0.25, so the sweep cannot tell.
    optima = {64: -7.0, 128: -7.0, 256: -6.6, 512: -5.8}
    report = analyze(sweep(optima, seed_shifts=(-1.5, 0.0, 1.5)), regret_tolerance=0.9)
    mup = report.lr["mup"]
    assert mup.drift_slope is not None and mup.drift_slope > 0.25
    assert mup.drift_ci is not None and mup.drift_ci[0] < 0.25
    assert report.verdict == "inconclusive", report.reason
    assert "cannot tell a stable optimum from a drifting one" in report.reason
    assert report.next_step.startswith("add ")


def test_three_widths_cannot_confirm_on_the_estimate_alone_but_a_tight_interval_can() -> None:
    scattered = {64: -7.0, 128: -6.7, 256: -7.1}  # estimate -0.05, one residual dof
    report = analyze(sweep(scattered, seed_shifts=(-0.2, 0.2)))
    assert abs(report.lr["mup"].drift_slope or 1.0) <= 0.25
    assert report.verdict == "inconclusive", report.reason
    assert "3 widths leave the slope 1 residual degree(s) of freedom" in report.reason
    assert report.next_step.startswith("add width(s) 512 to the ladder")
    # The same ladder with optima on a line: the interval fits in the tolerance, and confirms.
    assert analyze(sweep(drifting(0.0, (64, 128, 256)), seed_shifts=(-0.2, 0.2))).verdict \
        == "confirmed"


def test_overall_verdict_is_the_worst_part() -> None:
    assert overall_verdict(["confirmed", "inconclusive"]) == "inconclusive"
    assert overall_verdict(["inconclusive", "not_confirmed", "confirmed"]) == "not_confirmed"
    assert overall_verdict(["confirmed", "confirmed"]) == "confirmed"


# --- Rule (d) on synthetic regret intervals, both directions ----------------------------------


def _regret(row: WidthRegret) -> dict[str, RegretResult]:
    proxy = WidthRegret(width=64, abs=0.0, rel=0.0, best_loss=0.1)
    return {"mup": RegretResult(parametrization="mup", proxy_width=64, widths=[proxy, row])}


def _row(abs_: float, lo: float | None, hi: float | None, noise: float = 0.001) -> WidthRegret:
    return WidthRegret(width=512, abs=abs_, rel=abs_ / 0.1, best_loss=0.1, noise_abs=noise,
                       noise_rel=noise / 0.1, abs_ci_low=lo, abs_ci_high=hi,
                       ci_low=None if lo is None else lo / 0.1,
                       ci_high=None if hi is None else hi / 0.1)


@pytest.mark.parametrize(("row", "outcome"), [
    (_row(0.0005, 0.0001, 0.0009), "within"),     # below the 1% allowance (0.001 loss)
    (_row(0.003, 0.0002, 0.006), "undecided"),   # estimate above, interval reaches below
    (_row(0.003, 0.002, 0.006), "exceeds"),      # whole interval above
    (_row(0.003, None, None, noise=0.0), "exceeds"),   # one seed: the estimate decides
])
def test_regret_rule_reads_the_interval_against_the_allowance(row: WidthRegret,
                                                              outcome: str) -> None:
    judged = judge_regret(_regret(row), 512, 0.01, n_seeds=3)
    assert judged.outcome == outcome, judged.words
    if outcome == "undecided":
        assert "the seeds cannot tell the cost from the tolerance" in judged.words
        assert judged.next_step.startswith("add seed(s) 3")
    if row.ci_low is not None:  # the interval printed is the row's own
        assert f"[{fmt_pct(row.ci_low)}, {fmt_pct(row.ci_high or 0.0)}]" in judged.words


def test_regret_without_a_number_is_not_confirmed_when_diverged_and_inconclusive_outside() -> None:
    diverged = WidthRegret(width=512, status="diverged", note="beside a diverged grid point")
    outside = WidthRegret(width=512, status="outside_grid", note="outside the LRs trained")
    assert judge_regret(_regret(diverged), 512, 0.01, 2).outcome == "diverged"
    judged = judge_regret(_regret(outside), 512, 0.01, 2)
    assert judged.outcome == "unknown" and "extend width 512's LR grid" in judged.next_step


# --- A real sweep: the quick preset's own result ------------------------------------------------


def test_the_quick_preset_confirms_and_reads_like_its_inputs() -> None:
    report = analyze(quick_preset_runs())
    assert report.verdict == "confirmed", report.reason
    # The tolerance applied is the seed-noise floor, said as such beside what was asked.
    applied = report.regret_applied
    assert applied is not None and applied["source"] == "seed_noise" and applied["width"] == 512
    assert f"within the tolerance {fmt_pct(applied['rel'])} = the seed-noise floor at width 512" \
        in report.reason and "(you asked 1.0%)" in report.reason
    # One interval per number: the verdict prints the table's interval for the same regret.
    row = report.regret["mup"].at(512)
    assert row is not None and row.ci_low is not None and row.ci_high is not None
    assert row.ci_low == pytest.approx(row.abs_ci_low / row.best_loss)
    assert f"(95% CI [{fmt_pct(row.ci_low)}, {fmt_pct(row.ci_high)}])" in report.reason
    # Labels, not keys; no "(within one grid step, 1)"; no warning about the preset itself.
    assert "within one grid step, 1)" not in report.reason
    assert "one grid step of 1 log2, a factor of 2" in report.reason
    assert not [w for w in report.warnings if re.match(r"(mup|sp)\b", w)], report.warnings
    assert not [w for w in report.warnings if "best loss rises" in w], report.warnings


def test_the_quick_presets_sp_runs_judged_alone_are_not_confirmed() -> None:
    # SP's drift, -0.66 per doubling, judged as if it were the table that should transfer.
    runs = quick_preset_runs()
    sp = runs[runs["parametrization"] == "sp"].assign(parametrization="mup")
    report = analyze(sp)
    assert report.lr["mup"].drift_slope == pytest.approx(-0.66, abs=0.01)
    assert report.verdict == "not_confirmed", report.reason
    assert "more than the tolerance" in report.reason and "its whole interval above" in report.reason
    # And a sweep without µP at all is not confirmed either, naming the step.
    only_sp = analyze(runs[runs["parametrization"] == "sp"])
    assert only_sp.verdict == "not_confirmed" and "add mup" in only_sp.next_step


# --- The wider-is-better warning counts seed noise ---------------------------------------------


def _rising(noise: float) -> pd.DataFrame:
    """Four widths at the same optimum whose best loss rises 0.01 from width 256 to 512; seeds
    spread the loss by ±noise around every grid point."""
    frame = sweep(drifting(0.0), seed_shifts=(0.0, 0.0, 0.0))
    bump = np.where(frame["width"] == 512, 0.01, 0.0)
    spread = np.array([-noise, 0.0, noise])[frame["seed"].to_numpy()]
    frame["final_train_loss"] = frame["final_train_loss"] + bump + spread
    return frame


def test_a_rise_beyond_seed_noise_warns_with_the_label_and_one_within_it_does_not() -> None:
    quiet = analyze(_rising(0.0005), n_bootstrap=0)
    assert any(w.startswith("µP: best loss rises with width") and "width 512" in w
               and "more than seed noise explains" in w for w in quiet.warnings), quiet.warnings
    noisy = analyze(_rising(0.02), n_bootstrap=0)
    assert not any("best loss rises" in w for w in noisy.warnings), noisy.warnings
