"""The doctor's findings by cause and in a user's words; its ablation chart draws (pure)."""

from __future__ import annotations

from app.doctor import doctor_charts, doctor_panel
from experiments.job_results import AblationTry
from experiments.service import DoctorEvidence, DoctorFinding


def finding(check: str, status: str, message: str, fix: str = "") -> DoctorFinding:
    return DoctorFinding("mup", check, status, message, fix)  # type: ignore[arg-type]


def test_the_ablations_culprit_comes_first_then_failures_then_warnings():
    found = [finding("eps", "warn", "eps differs"), finding("readout", "fail", "plain head"),
             finding("coord_check", "fail", "logits grow"),
             finding("ablation", "fail", "`5` is not a readout")]
    assert [f.check for f in doctor_panel.by_cause(found)] == [
        "ablation", "readout", "coord_check", "eps"]


def test_internal_terms_are_reworded_and_kept_in_the_details():
    f = finding("readout", "fail", "forward_exp -1, alpha_out 1 on {'head.weight': 0.5}",
                "make the head a mucore.Readout (its input is multiplied by alpha_out / m)")
    text, original = doctor_panel.plain_words(f)
    assert "forward_exp" not in text and "alpha_out" not in text and "{" not in text
    assert "the output multiplier divided by the width multiplier" in text
    assert original is not None and "alpha_out / m" in original and "{'head.weight': 0.5}" in original
    plain = finding("tied", "warn", "the head and the embedding share a weight")
    assert doctor_panel.plain_words(plain) == ("**tied**: the head and the embedding share a weight", None)


def test_the_ablation_chart_draws_a_bar_for_a_switch_that_fixes_everything():
    evidence = DoctorEvidence(tried=(AblationTry("readout multiplier", 0.0, True),), before=0.62)
    fig = doctor_charts.ablation_figure(evidence)
    (bars,) = fig.data
    assert list(bars.x) == ["as it is", "readout multiplier"] and list(bars.y) == [0.62, 0.0]
    assert list(bars.text) == ["0.62", "fixes it"]  # a zero bar still says what it means
