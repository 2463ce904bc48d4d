"""The Transfer page's verdict block, for width and for depth: one of three verdicts, why, the
next step, and the regret tolerance the verdict actually applied.

The words are the report's (`experiments.analysis`: `verdict`, `reason`, `next_step`,
`regret_applied`); this module only shapes them: pure helpers (tested) and `render`, which
draws them.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

# How each verdict reads as a headline, after its subject ("Transfer", "Depth transfer").
HEADLINES = {
    "confirmed": "confirmed",
    "not_confirmed": "not confirmed",
    "inconclusive": "inconclusive",
}
# What each one means, in a sentence after the headline.
MEANINGS = {
    "confirmed": "the best LR stays put as {axis} grows, and copying it costs no more than the "
                 "tolerance.",
    "not_confirmed": "the evidence says the best LR moves as {axis} grows, or copying it costs "
                     "more than the tolerance.",
    "inconclusive": "the evidence cannot tell yet: its intervals reach both sides of the "
                    "tolerance. The next step below would decide it.",
}


def headline(verdict: str, subject: str = "Transfer", axis: str = "width",
             qualifier: str = "") -> str:
    """"**Transfer inconclusive**: the evidence cannot tell yet: ..." (markdown); `qualifier`
    follows the bold words (" under CompleteP")."""
    words = HEADLINES.get(verdict, verdict)
    return f"**{subject} {words}**{qualifier}: " + MEANINGS.get(verdict, "").format(axis=axis)


def applied_tolerance_words(applied: dict[str, Any] | None) -> str | None:
    """The regret tolerance the verdict applied, said as such: "Regret tolerance applied: 56% =
    the seed-noise floor at width 512 (you asked 1.0%)."; None when no regret was judged."""
    if not applied:
        return None
    asked = _pct(float(applied["asked"]))
    width = applied.get("width")
    rel = applied.get("rel")
    value = f"{float(applied['abs']):.3g} loss" if rel is None else _pct(float(rel))
    if applied.get("source") == "seed_noise":
        return (f"Regret tolerance applied: {value} = the seed-noise floor at width {width}, the "
                f"seeds' own spread of the loss there (you asked {asked}).")
    return f"Regret tolerance applied: {value} at width {width}, as asked."


def _pct(rel: float) -> str:
    """A fraction as the verdict's sentences write it (0.56 -> "56%", 0.01 -> "1.0%")."""
    pct = 100 * rel
    if pct < 1:
        return f"{pct:.2g}%"
    return f"{pct:.1f}%" if pct < 10 else f"{pct:.0f}%"


def render(verdict: str, reason: str, next_step: str, *, subject: str = "Transfer",
           axis: str = "width", qualifier: str = "",
           applied: dict[str, Any] | None = None) -> None:
    """Draw the verdict: a green, amber or red headline, the reason, the next step, and the
    tolerance applied."""
    text = headline(verdict, subject, axis, qualifier)
    if verdict == "confirmed":
        st.success(text, icon=":material/check_circle:")
    elif verdict == "inconclusive":
        st.warning(text, icon=":material/help:")
    else:
        st.error(text, icon=":material/warning:")
    if next_step:
        st.info(f"**Next step:** {next_step}", icon=":material/arrow_forward:")
    if reason:
        st.caption(reason)
    words = applied_tolerance_words(applied)
    if words:
        st.caption(words)
