"""The verdict counts every width of the ladder: a µP width with no finite loss (every LR
diverged, or nothing finished) fails it, saying which width and what to change; grid and
adaptive sweeps alike, and without false alarms on SP's expected blow-ups."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from experiments.analysis import analyze
from experiments.spec.run import RunConfig
from experiments.spec.sweep import SweepSpec, run_key
from experiments.sweep.adaptive import RunOutcome, replay
from tests.experiments.analysis.test_analysis_report import MUP_OPT, SP_OPT, surface


def _diverge(runs: pd.DataFrame, param: str, width: int) -> pd.DataFrame:
    bad = (runs["parametrization"] == param) & (runs["width"] == width)
    runs.loc[bad, "state"] = "diverged"
    runs.loc[bad, "final_train_loss"] = None
    return runs


def test_the_widest_width_all_diverged_fails_the_verdict() -> None:
    report = analyze(_diverge(surface({"mup": MUP_OPT, "sp": SP_OPT}), "mup", 512))
    assert report.verdict == "not_confirmed"
    assert report.verdicts[0].verdict == "not_confirmed"
    assert "every µP run at width(s) [512] diverged" in report.reason
    assert "lower the LR grid" in report.reason
    # The narrower widths' numbers are still reported, and the width keeps its status.
    widths = {w.width: w.status for w in report.lr["mup"].widths}
    assert widths == {64: "ok", 128: "ok", 256: "ok", 512: "all_diverged"}
    assert report.lr["mup"].drift_slope is not None


def test_a_middle_width_all_diverged_fails_it_too() -> None:
    report = analyze(_diverge(surface({"mup": MUP_OPT}), "mup", 128))
    assert report.verdict == "not_confirmed" and "width(s) [128] diverged" in report.reason


def test_sp_blowing_up_at_the_widest_width_is_no_false_alarm() -> None:
    # SP's optimum drifts down with width, so its widest width may diverge at every LR: the
    # verdict is judged on µP, which transfers here.
    report = analyze(_diverge(surface({"mup": MUP_OPT, "sp": SP_OPT}), "sp", 512))
    assert report.verdict == "confirmed", report.reason


def test_a_width_with_no_finished_run_is_inconclusive_with_retry_advice() -> None:
    # No evidence at width 512 is not evidence against transfer: it cannot be judged yet.
    runs = surface({"mup": MUP_OPT})
    unfinished = runs["width"] == 512
    runs.loc[unfinished, "state"] = "failed"
    runs.loc[unfinished, "final_train_loss"] = None
    report = analyze(runs)
    assert report.verdict == "inconclusive"
    assert "no finished run at width(s) [512]" in report.reason and "sweep retry" in report.reason
    assert "sweep retry" in report.next_step


def test_a_knob_verdict_counts_every_width() -> None:
    runs = surface({"mup": MUP_OPT}, extra={"init_std": 1.0})
    halved = runs.copy()
    halved["init_std"] = 0.5
    both = _diverge(pd.concat([runs, halved], ignore_index=True), "mup", 512)
    report = analyze(both)
    knob = next(v for v in report.verdicts if v.hp == "init_std")
    assert knob.verdict == "not_confirmed"
    assert "lower the LR and init_std grids" in knob.reason


WIDTHS = [64, 128, 256, 512]


def _adaptive_spec() -> SweepSpec:
    return SweepSpec.model_validate({
        "name": "adaptive-diverged", "widths": WIDTHS, "base_width": 64,
        "lr_grid": {"log2_min": -12, "log2_max": -2, "step": 1}, "seeds": [0, 1],
        "search": {"kind": "adaptive"},
    })


def _frame(spec: SweepSpec, outcomes: dict[str, RunOutcome]) -> pd.DataFrame:
    """The runs frame of what the adaptive search trained (only the runs it queued)."""
    rows = []
    for run in spec.expand():
        outcome = outcomes.get(run_key(run))
        if outcome is None:
            continue
        rows.append({"width": run.width, "parametrization": run.parametrization,
                     "lr": run.lr, "seed": run.seed, "state": outcome.state,
                     "final_train_loss": outcome.loss})
    return pd.DataFrame(rows)


def test_an_adaptive_sweep_whose_widest_width_diverges_everywhere_is_not_confirmed() -> None:
    spec = _adaptive_spec()

    def outcome(run: RunConfig) -> RunOutcome:
        x = math.log2(run.lr)
        if run.parametrization == "mup" and run.width == 512:
            return RunOutcome("diverged", None)
        opt = -7.0 if run.parametrization == "mup" else -6.0 - 0.8 * math.log2(run.width / 64)
        return RunOutcome("done", 1.0 + (x - opt) ** 2 / 8 + 0.001 * run.seed)

    outcomes, _, _ = replay(spec, outcome)
    report = analyze(_frame(spec, outcomes))
    assert report.verdict == "not_confirmed"
    assert "every µP run at width(s) [512] diverged" in report.reason
    # The healthy adaptive sweep (same surface, nothing diverging) confirms.
    healthy, _, _ = replay(spec, lambda r: RunOutcome(
        "done", 1.0 + (math.log2(r.lr) - (-7.0 if r.parametrization == "mup" else
                                           -6.0 - 0.8 * math.log2(r.width / 64))) ** 2 / 8
        + 0.001 * r.seed))
    assert analyze(_frame(spec, healthy)).verdict == "confirmed"


@pytest.mark.parametrize("width", [64, 512])
def test_the_depth_reason_speaks_of_depths(width: int) -> None:
    # The depth section reuses the rule on a ladder of depths: the same words, in depth terms.
    from experiments.analysis.axes import DEPTH
    from experiments.analysis.ladder import _in_axis_words
    from experiments.analysis.schema import WidthOptimum
    from experiments.analysis.verdict import missing_widths_reason

    row = WidthOptimum(width=width, opt_log2=None, ci_low=None, ci_high=None, best_loss=None,
                       status="all_diverged")
    words = _in_axis_words(missing_widths_reason("lr", [row]), DEPTH, "completep")
    assert f"depth(s) [{width}] diverged" in words and "every depth of the ladder" in words
