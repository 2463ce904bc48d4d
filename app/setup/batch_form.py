"""The Setup form's batch-size and horizon ladders and the rules they are swept under:
`batch_sizes` / `base_batch_size`, `horizons` / `base_horizon` and `scaling` of the sweep spec.

Empty ladders are a sweep without them (the spec and its hash as before these ladders existed);
the rules default to `none`, so a user sees the raw drift first (`experiments.spec.scaling`).
The spec's validation says what is wrong beside these inputs (fields `batch_sizes`,
`base_batch_size`, `horizons`, `base_horizon`, `scaling.batch`, `scaling.horizon`).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.widgets import form
from experiments.service import POWER, PowerRule, rule_names

BATCH_HELP = ("Comma-separated batch sizes, increasing, e.g. 8, 16, 32, 64. Each rung sees the "
              "same examples as the base batch (it trains steps x base batch / batch steps), so "
              "the page can show how the best LR moves with the batch. Empty: no batch ladder.")
HORIZON_HELP = ("Comma-separated training lengths in steps at the base batch, increasing, e.g. "
                "200, 400, 800. Empty: no horizon ladder.")
RULE_HELP = ("How the LR (and for sqrt: Adam's betas and eps) moves along the ladder: none shows "
             "the raw drift; sqrt is the SDE rule for Adam (Malladi et al., 2022); linear is "
             "SGD's; power moves the LR as k^X. The Transfer page fits the exponent the ladder "
             "measures and prices each rule.")


def _ladder(spec_form: form.ModelForm, values: dict[str, Any], field: str, base: str,
            label: str, example: str, help_text: str) -> tuple[list[Any] | None, int | None]:
    """One ladder's text input and its base, side by side."""
    left, right = st.columns(2)
    key, listed = spec_form.key(field), ", ".join(str(v) for v in values.get(field) or [])
    text = left.text_input(label, key=key, placeholder=f"e.g. {example}", help=help_text,
                           **spec_form.initial(key, listed, value=listed))
    spec_form.slot(left, field)
    key, given = spec_form.key(base), values.get(base)
    chosen = right.number_input(f"base {label.split()[0]}", min_value=1, step=1, key=key,
                                placeholder="first rung", help="The rung the LR is tuned at "
                                "(empty: the first). Must be on the ladder.",
                                **spec_form.initial(key, given, value=given))
    spec_form.slot(right, base)
    # Tokens that are not numbers stay in, so the spec's validation names them.
    return form.parse_number_list(text) or None, int(chosen) if chosen is not None else None


def _rule(spec_form: form.ModelForm, value: Any, axis: str) -> str | dict[str, float]:
    """One axis's rule: a name, or `power` with its exponent."""
    left, right = st.columns(2)
    names = [*rule_names(axis), POWER]
    current = POWER if isinstance(value, dict) else (value or "none")
    key = spec_form.key(f"scaling.{axis}")
    name = left.selectbox(f"{axis} rule", names, key=key, help=RULE_HELP,
                          **spec_form.initial(key, current, index=names.index(current)
                                              if current in names else 0))
    spec_form.slot(left, f"scaling.{axis}")
    if name != POWER:
        return str(name)
    key, given = spec_form.key(f"scaling.{axis}.power"), (
        float(value["power"]) if isinstance(value, dict) else 0.5)
    power = right.number_input(f"{axis} power X", step=0.05, key=key, help="LR x k^X.",
                               **spec_form.initial(key, given, value=given))
    return PowerRule(power=float(power)).model_dump()


def batch_horizon_inputs(spec_form: form.ModelForm, values: dict[str, Any]) -> dict[str, Any]:
    """Draw both ladders and their rules; returns the spec's fields (unset ones left out)."""
    st.markdown("**batch and horizon ladders** (optional)", help=BATCH_HELP)
    batches, base_batch = _ladder(spec_form, values, "batch_sizes", "base_batch_size",
                                  "batch sizes", "8, 16, 32, 64", BATCH_HELP)
    horizons, base_horizon = _ladder(spec_form, values, "horizons", "base_horizon",
                                     "horizon steps", "200, 400, 800", HORIZON_HELP)
    scaling = dict(values.get("scaling") or {})
    rules = {"batch": _rule(spec_form, scaling.get("batch"), "batch") if batches else
             scaling.get("batch", "none"),
             "horizon": _rule(spec_form, scaling.get("horizon"), "horizon") if horizons else
             scaling.get("horizon", "none")}
    out: dict[str, Any] = {"batch_sizes": batches, "base_batch_size": base_batch,
                           "horizons": horizons, "base_horizon": base_horizon}
    if rules != {"batch": "none", "horizon": "none"}:
        out["scaling"] = rules
    return {k: v for k, v in out.items() if v is not None}
