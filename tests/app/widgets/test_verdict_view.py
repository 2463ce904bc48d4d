"""The verdict block's words (pure helpers) and Setup's prediction on the page."""

from __future__ import annotations

from app.widgets.verdict_view import applied_tolerance_words, headline


def test_headlines_name_all_three_verdicts() -> None:
    assert headline("confirmed").startswith("**Transfer confirmed**: the best LR stays put")
    assert headline("not_confirmed").startswith("**Transfer not confirmed**: the evidence says")
    text = headline("inconclusive", "Depth transfer", "depth", " under CompleteP")
    assert text.startswith("**Depth transfer inconclusive** under CompleteP: the evidence cannot")


def test_the_tolerance_applied_is_said_as_such() -> None:
    floor = {"width": 512, "abs": 0.0155, "rel": 0.56, "asked": 0.01, "source": "seed_noise"}
    assert applied_tolerance_words(floor) == (
        "Regret tolerance applied: 56% = the seed-noise floor at width 512, the seeds' own "
        "spread of the loss there (you asked 1.0%).")
    asked = {"width": 512, "abs": 0.001, "rel": 0.01, "asked": 0.01, "source": "asked"}
    assert applied_tolerance_words(asked) == "Regret tolerance applied: 1.0% at width 512, as asked."
    assert applied_tolerance_words(None) is None


def test_setup_says_whether_the_plan_can_reach_a_verdict(open_page, db_path) -> None:
    at = open_page("views/setup.py")
    said = [m.value for m in [*at.success, *at.warning] if "Reaching a verdict is" in m.value]
    assert len(said) == 1, [m.value for m in [*at.success, *at.warning]]
    at.text_input(key="setup.widths").set_value("64, 128, 256").run()
    said = [m.value for m in at.warning if "Reaching a verdict is unlikely" in m.value]
    assert said and "add width(s) 512" in said[0], [m.value for m in at.warning]
