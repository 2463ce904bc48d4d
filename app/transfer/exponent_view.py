"""The Transfer page's "which rule fits" block for a batch or horizon ladder.

The engine fits the LR exponent the ladder measures and prices each candidate rule at the
largest rung (`experiments.analysis.exponent`); this draws its sentence and table. Nothing is
computed here beyond wording.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from app.widgets import charts

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import Axis, LadderReport

FITTED = "fitted"


def exponent_words(section: LadderReport, axis: Axis, param: str) -> str | None:
    """One sentence: the measured exponent, the rule swept under, the cheapest named rule."""
    d = section.parametrizations.get(param)
    fit = None if d is None else d.exponent
    if fit is None or fit.exponent is None:
        return None
    ci = "" if fit.exponent_ci is None else (
        f" (95% interval [{fit.exponent_ci[0]:+.2f}, {fit.exponent_ci[1]:+.2f}])")
    swept = "no rule" if fit.rule == "none" else f"rule {fit.rule} (exponent {fit.rule_exponent:+g})"
    words = (f"{charts.param_label(param)}: the optimal LR grows as {axis.word}^{fit.exponent:+.2f}"
             f"{ci}; the sweep ran under {swept}.")
    best = fit.best()
    if best is not None and best.abs is not None:
        noise = "" if best.noise_abs is None else (
            ", within the seed noise" if best.abs <= best.noise_abs else
            f", {best.abs / best.noise_abs:.1f}x the seed noise" if best.noise_abs > 0 else "")
        words += (f" Of the published rules, **{best.rule}** costs least at {axis.word} "
                  f"{fit.rung}: {best.abs:.4f} in loss{noise}.")
    return words


def exponent_table(section: LadderReport, param: str) -> pd.DataFrame:
    """One row per candidate: its exponent, the LR it trains the largest rung at, its regret."""
    d = section.parametrizations.get(param)
    fit = None if d is None else d.exponent
    if fit is None:
        return pd.DataFrame()
    rows = []
    for c in fit.candidates:
        interval = ("" if c.abs_ci_low is None or c.abs_ci_high is None
                    else f"[{c.abs_ci_low:.4f}, {c.abs_ci_high:.4f}]")
        rows.append({
            "rule": "fitted (measured)" if c.rule == FITTED else c.rule,
            "exponent": f"{c.exponent:+.2f}",
            "log2 LR there": "—" if c.log2_lr is None else f"{c.log2_lr:.2f}",
            "regret": (c.note or c.status) if c.abs is None else f"{c.abs:.4f}",
            "95% interval": interval,
            "seed noise": "—" if c.noise_abs is None else f"{c.noise_abs:.4f}",
        })
    return pd.DataFrame(rows)


def render(section: LadderReport, axis: Axis) -> None:
    """The block: per parametrization with a fit, its sentence and its table."""
    params = [p for p, d in section.parametrizations.items() if d.exponent is not None]
    if not params:
        return
    top = section.parametrizations[params[0]].exponent
    st.subheader("Which scaling rule fits")
    st.caption(f"Applying each rule's LR exponent from the base {axis.word} {section.base} to "
               f"{axis.word} {top.rung if top else '—'}: the loss above that {axis.word}'s best, "
               "read on its fitted curve (the rule's beta and eps moves are not priced).")
    for param in params:
        words = exponent_words(section, axis, param)
        if words:
            st.markdown(words)
        st.dataframe(exponent_table(section, param), hide_index=True,
                     key=f"transfer_exponent_{param}")
