"""The Setup form's LR search: `search: {kind, full_widths, bracket}` of the spec.

`grid` trains every LR at every width (the spec then hashes and prints as before the field
existed); `adaptive` trains the full grid at the narrowest widths and a bracket around the
predicted optimum at each wider one (`experiments.sweep.adaptive`), so it shows a range of runs.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import state
from app.widgets import form
from experiments.spec.sweep import SweepSpec

KIND_LABELS = {"grid": "grid (every LR at every width)",
               "adaptive": "adaptive (full grid at the narrowest widths, a bracket elsewhere)"}
SEARCH_HELP = ("How the LR grid is searched. Grid trains every LR at every width. Adaptive "
               "trains the full grid at the narrowest width(s), then at each wider width only "
               "a bracket of grid points around the optimum predicted from the narrower ones, "
               "grown while the best point is on its edge: about the same optima for a "
               "fraction of the runs (SP and µP are searched separately).")


def search_inputs(spec_form: form.ModelForm, values: dict[str, Any]) -> dict[str, Any]:
    """Draw the search inputs; returns the spec's `search` data (the default for grid)."""
    current = dict(values.get("search") or {})
    left, mid, right = st.columns([2, 1, 1])
    kinds = list(KIND_LABELS)
    key, index = spec_form.key("search.kind"), kinds.index(current.get("kind", "grid"))
    kind = left.selectbox("LR search", kinds, format_func=KIND_LABELS.__getitem__, key=key,
                          help=SEARCH_HELP, **spec_form.initial(key, kinds[index], index=index))
    spec_form.slot(left, "search")
    if kind != "adaptive":
        return {"kind": "grid"}
    key, given = spec_form.key("search.full_widths"), int(current.get("full_widths", 1))
    full = mid.number_input("full-grid widths", min_value=1, step=1, key=key,
                            help="How many of the narrowest widths train the whole LR grid.",
                            **spec_form.initial(key, given, value=given))
    spec_form.slot(mid, "search.full_widths")
    key, given = spec_form.key("search.bracket"), int(current.get("bracket", 3))
    bracket = right.number_input("bracket", min_value=3, step=2, key=key,
                                 help="Grid points first trained at each wider width (odd).",
                                 **spec_form.initial(key, given, value=given))
    spec_form.slot(right, "search.bracket")
    return {"kind": "adaptive", "full_widths": int(full), "bracket": int(bracket)}


def expected_runs(spec: SweepSpec) -> None:
    """The runs the search will make, under the Setup summary's metrics."""
    fewest, most = state.service().run_bounds(spec)
    if fewest == most:
        st.caption(f"Grid search: {most:,} runs.")
        return
    st.metric("Expected runs (adaptive)", f"{fewest:,} to {most:,}",
              help="Fewest: the full grid at the full-grid widths plus one bracket per wider "
                   "width. A bracket grows while its best point is on its edge, up to the full "
                   "grid (the most).")
    st.caption(f"Adaptive search: at least {fewest:,} runs ({fewest / most:.0%} of the "
               f"{most:,}-run grid); the Compute above is the full grid's, an upper bound.")
