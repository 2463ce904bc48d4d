"""The Transfer page's critical-batch block for a batch ladder whose runs logged `noise_scale`.

B_simple = tr(Sigma) / |G|^2 (McCandlish et al., 2018, appendix A; `experiments.doctor.
noise_scale`) is logged per run when the spec says `noise_scale: true`. Past it a larger batch
stops paying off and the SDE square-root rule stops holding (Malladi et al., 2022; Li et al.,
2024). Per run the block reads the last logged estimate; per batch rung, the median over its
finished runs, with the doctor's warning for every rung above it. Nothing is shown for sweeps
that did not log it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from experiments.service import noise_scale_warning

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import Service

METRIC = "noise_scale"


def last_estimates(metrics: pd.DataFrame) -> pd.Series:
    """Per run_id, the last logged B_simple (finite values only)."""
    m = metrics[(metrics["name"] == METRIC) & pd.notna(metrics["value"])]
    m = m[m["value"].astype(float).map(lambda v: v == v and abs(v) != float("inf"))]
    return m.sort_values("step").groupby("run_id")["value"].last().astype(float)


def per_rung(runs: pd.DataFrame, estimates: pd.Series) -> pd.DataFrame:
    """One row per batch rung: batch, runs with an estimate, median B_simple, the warning."""
    rows = []
    for batch, rung in runs.groupby("batch_size"):
        values = estimates.reindex(rung["run_id"]).dropna()
        if values.empty:
            continue
        median = float(values.median())
        rows.append({"batch size": int(batch), "runs": len(values),
                     "B_simple (median)": median,
                     "warning": noise_scale_warning(int(batch), median) or ""})
    return pd.DataFrame(rows)


def render(service: Service, sweep_id: int, runs: pd.DataFrame) -> None:
    """The block, when the batch ladder's finished runs logged the noise scale."""
    if "batch_size" not in runs.columns:
        return
    done = runs[runs["state"] == "done"]
    if done.empty:
        return
    metrics = service.metrics(sweep_id, [int(r) for r in done["run_id"]], [METRIC])
    if metrics.empty:
        return
    table = per_rung(done, last_estimates(metrics))
    if table.empty:
        return
    st.subheader("Critical batch size")
    st.caption("The gradient noise scale B_simple each run measured at its last log point "
               "(McCandlish et al., 2018): past it a larger batch stops buying proportionally "
               "fewer steps, and the square-root batch rule stops holding.")
    for warning in table["warning"]:
        if warning:
            st.warning(warning[0].upper() + warning[1:], icon=":material/warning:")
    shown = table.drop(columns=["warning"]).assign(
        **{"B_simple (median)": table["B_simple (median)"].map(lambda v: f"{v:.3g}")})
    st.dataframe(shown, hide_index=True, key="transfer_noise_scale")
