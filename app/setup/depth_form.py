"""The Setup form's depth ladder: `depths` and `base_depth` of the sweep spec.

An empty ladder is a width-only sweep (`depths: None`, so the spec and its hash are those of a
sweep made before depth ladders); a ladder like "2, 4, 8, 16" crosses every width with every
depth. The base depth defaults to the model's own `depth` and must be on the ladder; the spec's
validation says so beside these inputs (field `depths` / `base_depth`).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.widgets import form
from experiments.spec.sweep import depth_rule_names

DEPTHS_HELP = ("Comma-separated block counts, strictly increasing, e.g. 2, 4, 8, 16 (gpt, llama, "
               "or mlp with residual). Leave empty for a width-only sweep. Compare mup with "
               f"{' or '.join(depth_rule_names())}: their branch multipliers and block LRs follow "
               "depth, so the best LR should stay put as blocks are added.")
BASE_HELP = ("The proxy depth the depth rules are measured from (CompleteP equals µP there). "
             "Empty: the model's own depth. Must be one of the ladder's depths.")


def depth_inputs(spec_form: form.ModelForm, values: dict[str, Any]) -> dict[str, Any]:
    """Draw the ladder and base-depth inputs; returns the spec's `depths` and `base_depth`."""
    st.markdown("**depth ladder** (optional)", help=DEPTHS_HELP)
    left, right = st.columns(2)
    key, listed = spec_form.key("depths"), ", ".join(str(d) for d in values.get("depths") or [])
    text = left.text_input("depths", key=key, placeholder="e.g. 2, 4, 8, 16", help=DEPTHS_HELP,
                           **spec_form.initial(key, listed, value=listed))
    spec_form.slot(left, "depths")
    # No upper bound beyond the spec's own (ge=1): any valid loaded spec must fit the widget.
    key, given = spec_form.key("base_depth"), values.get("base_depth")
    base = right.number_input("base depth", min_value=1, step=1, key=key,
                              placeholder="model's", help=BASE_HELP,
                              **spec_form.initial(key, given, value=given))
    spec_form.slot(right, "base_depth")
    parsed = form.parse_number_list(text)
    return {"depths": parsed or None, "base_depth": int(base) if base is not None else None}
