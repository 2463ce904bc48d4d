"""The Transfer page's regret panel: what copying the proxy's optimal LR costs at each width.

The numbers are the report's (`TransferReport.regret`, computed by the engine's analysis); this
module only shapes them: a sentence, a table and a chart (pure, tested), and `render`, which
draws them on the page.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.widgets.charts import PARAM_COLORS, TEMPLATE, log_ticks, param_label

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import TransferReport

REGRET_COLUMNS = ["parametrization", "width", "rel", "ci_low", "ci_high", "abs",
                  "loss_at_transfer", "best_loss", "noise_rel", "status", "note"]
# The verdict is judged on µP; SP is quoted beside it, as on the rest of the page.
JUDGED, COMPARED = "mup", "sp"


def fmt_pct(rel: float) -> str:
    """A relative regret as the page writes it: 0.0021 -> "0.21%", 0.14 -> "14%"."""
    pct = 100 * rel
    if pct < 1:
        return f"{pct:.2g}%"
    return f"{pct:.1f}%" if pct < 10 else f"{pct:.0f}%"


def regret_frame(report: TransferReport | None) -> pd.DataFrame:
    """One row per (parametrization, width) of the report's regret (`REGRET_COLUMNS`; rel,
    ci_low, ci_high and noise_rel are fractions of the width's best loss, NaN when unknown)."""
    rows: list[dict[str, Any]] = []
    for param, result in (report.regret if report is not None else {}).items():
        rows += [{"parametrization": param, **r.model_dump()} for r in result.widths]
    frame = pd.DataFrame(rows, columns=REGRET_COLUMNS)
    for col in ("rel", "ci_low", "ci_high", "abs", "loss_at_transfer", "best_loss", "noise_rel"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def regret_sentence(report: TransferReport | None) -> str | None:
    """"Copying the LR tuned at width 64 costs 0.2% (+0.001) loss at width 512 under µP, 14%
    (+0.07) under SP.", and a second sentence when µP's cost is within its seed noise.

    At the widest width where µP has a number (SP's at the same width beside it), in % of the
    best loss, or in loss units ("+0.0021") where the best loss is not positive; None when µP
    has no number beyond the proxy.
    """
    mup = report.regret.get(JUDGED) if report is not None else None
    if report is None or mup is None or mup.proxy_width is None:
        return None
    known = [r for r in mup.widths if r.abs is not None and r.width != mup.proxy_width]
    if not known:
        return None
    row = known[-1]
    text = (f"Copying the LR tuned at width {mup.proxy_width} costs {_cost(row.rel, row.abs)} "
            f"loss at width {row.width} under {param_label(JUDGED)}")
    sp = report.regret.get(COMPARED)
    sp_row = sp.at(row.width) if sp is not None and sp.proxy_width == mup.proxy_width else None
    if sp_row is not None and sp_row.abs is not None:
        text += f", {_cost(sp_row.rel, sp_row.abs)} under {param_label(COMPARED)}"
    text += "."
    # A % of a near-zero loss reads large: say when the cost is below what reseeding moves.
    if row.rel is not None and row.noise_rel is not None and row.rel <= row.noise_rel:
        text += (f" Under {param_label(JUDGED)} that is within the seed-to-seed noise of the "
                 f"loss there ({fmt_pct(row.noise_rel)}).")
    return text


def _cost(rel: float | None, abs_loss: float | None) -> str:
    """A regret in words: its % of the best loss and the extra loss ("2.0% (+0.002)"), or the
    extra loss alone when the best loss is not positive."""
    if rel is not None:
        return fmt_pct(rel) + ("" if abs_loss is None else f" (+{abs_loss:.2g})")
    return f"+{abs_loss:.2g}" if abs_loss is not None else "—"


def regret_figure(frame: pd.DataFrame, tolerance: float | None = None, height: int = 340,
                  floor: bool = False) -> go.Figure:
    """Relative regret (% of each width's best loss) per width, one bar group per
    parametrization, with the 95% interval; log scale so 0.2% and 400% both show. The proxy's
    own width (regret 0 by definition) and widths without a number are left out. A dashed line
    marks `tolerance` (the regret tolerance the verdict applied; `floor`: the seed-noise floor
    set it, and the label says so)."""
    fig = go.Figure()
    ok = frame[frame["rel"] > 0] if not frame.empty else frame
    for param in [p for p in (COMPARED, JUDGED) if p in set(ok["parametrization"])]:
        rows = ok[ok["parametrization"] == param].sort_values("width")
        pct = 100 * rows["rel"]
        low = (100 * rows["ci_low"]).fillna(pct)
        high = (100 * rows["ci_high"]).fillna(pct)
        fig.add_trace(go.Bar(
            x=rows["width"].astype(str), y=pct, name=param_label(param),
            marker_color=PARAM_COLORS.get(param, "#555555"),
            error_y={"type": "data", "symmetric": False, "array": (high - pct).clip(lower=0),
                     "arrayminus": (pct - low).clip(lower=0)},
            hovertemplate="width %{x}<br>regret %{y:.3g}%<extra>" + param_label(param) + "</extra>",
        ))
    if tolerance is not None and tolerance > 0:
        fig.add_hline(y=100 * tolerance, line_dash="dash", line_color="#555555")
        # On a log axis an annotation's y is log10 of the value (a shape's is the value):
        # add_hline's own label would sit at 10^y, a decade off.
        fig.add_annotation(x=1, xref="paper", xanchor="right", y=math.log10(100 * tolerance),
                           yanchor="bottom", showarrow=False,
                           text=f"tolerance {fmt_pct(tolerance)}"
                           + (" (seed-noise floor)" if floor else ""))
    values = [100 * v for v in ok["rel"]] if not ok.empty else []
    fig.update_yaxes(type="log", title_text="regret, % of the width's best loss",
                     **log_ticks([*values, *([100 * tolerance] if tolerance else [])]))
    fig.update_xaxes(type="category", title_text="width")
    fig.update_layout(template=TEMPLATE, height=height, barmode="group",
                      margin={"l": 60, "r": 20, "t": 30, "b": 50})
    return fig


def regret_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The regret rows as the page lists them: labels, percentages and the note."""
    def pct(v: float) -> str:
        return "—" if pd.isna(v) else fmt_pct(float(v))

    return pd.DataFrame({
        "parametrization": [param_label(p) for p in frame["parametrization"]],
        "width": frame["width"].astype(int),
        "regret": [pct(v) for v in frame["rel"]],
        "extra loss": frame["abs"],
        "95% interval": [("—" if pd.isna(a) or pd.isna(b) else f"{pct(a)} – {pct(b)}")
                         for a, b in zip(frame["ci_low"], frame["ci_high"], strict=True)],
        "loss at copied LR": frame["loss_at_transfer"],
        "best loss": frame["best_loss"],
        "seed noise": [pct(v) for v in frame["noise_rel"]],
        "note": frame["note"].fillna(""),
    })


def render(report: TransferReport | None) -> None:
    """Draw the regret panel on the Transfer page (nothing while there is no report)."""
    frame = regret_frame(report)
    if report is None or frame.empty:
        return
    st.subheader("What copying the proxy's learning rate costs")
    sentence = regret_sentence(report)
    st.markdown(sentence or "No regret yet: it needs an optimum at two widths.")
    st.caption("Regret: each width's fitted loss at the narrowest width's optimal LR, minus its "
               "own best loss, as a % of that best loss (95% interval from a bootstrap over "
               "seeds). The verdict wants µP's at the widest width within the tolerance, or "
               "within the seed noise there if larger.")
    chart_col, table_col = st.columns([2, 3])
    # The line the verdict applied (the seed-noise floor when larger), not only the one asked.
    applied = report.regret_applied or {}
    rel = applied.get("rel")
    line = float(rel) if rel is not None else report.regret_tolerance
    chart_col.plotly_chart(regret_figure(frame, line, floor=applied.get("source") == "seed_noise"),
                           key="transfer_regret")
    table_col.dataframe(regret_table(frame), hide_index=True, key="transfer_regret_table")
