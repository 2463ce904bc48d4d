"""Overview: what µTransfer is, where the store lives, what is in it, and the quick demo."""

from __future__ import annotations

import streamlit as st

from app import nav, state
from app.setup import launch
from experiments.service import RunState

st.title("µTransfer dashboard")
st.markdown(
    "Wide neural networks are expensive to tune. **µTransfer** parametrizes a model in **µP** "
    "(the Maximal Update Parametrization), which scales each layer's initialisation and "
    "learning rate with width so that training behaves the same at every size. Then the best "
    "hyperparameters found on a narrow, cheap proxy can be copied unchanged to the wide target "
    "model, and this dashboard shows whether that actually held for your model."
)

sweeps = state.service().sweeps()
counts: dict[str, int] = {}
for s in sweeps:
    for name, n in (s.counts or {}).items():
        counts[name] = counts.get(name, 0) + n
c1, c2, c3, c4 = st.columns(4)
c1.metric("Sweeps", len(sweeps))
c2.metric("Runs", sum(counts.values()))
c3.metric("Running or queued", counts.get(RunState.RUNNING, 0) + counts.get(RunState.QUEUED, 0))
c4.metric("Finished", counts.get(RunState.DONE, 0) + counts.get(RunState.DIVERGED, 0))
st.caption(f"Store: `{state.db_path()}`")

st.divider()
demo, steps = st.columns([2, 3])  # the button's label fits at 1024 px
with demo:
    st.subheader("Quick demo")
    st.markdown(
        "Train a small MLP on a toy task at a few widths and learning rates, in SP and in µP, "
        "on this machine's CPU (about two minutes). Then look at **Transfer**."
    )
    if st.button("Launch the quick demo", key="home_quick_demo", type="primary", icon=":material/rocket_launch:"):
        launch.launch_and_follow(launch.launch_quick_demo)
with steps:
    st.subheader("How to use it")
    st.markdown(
        "1. **Coord check**: make sure the model is really in µP (activations stay flat with width).\n"
        "2. **µP doctor**: if it is not, find which parameter breaks µP and how to fix it.\n"
        "3. **µP inspector**: see each parameter's multipliers, init and effective LR.\n"
        "4. **Setup**: choose the model, widths and learning-rate grid; launch a sweep.\n"
        "5. **Runs**: watch progress, cancel or retry.\n"
        "6. **Transfer**: see whether the best learning rate stays put as width grows.\n"
        "7. **Export**: save the tuned hyperparameters for the wide model as a bundle, and "
        "verify them at the target width."
    )
    st.page_link(nav.page("setup.py"), label="Set up a sweep", icon=":material/tune:")
