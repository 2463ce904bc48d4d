"""Background jobs (verifications) as the Runs page and the Export page show them.

A verification is a job like a sweep's runs: it trains models one after the other, so it gets
a progress bar, its current run's step and loss, and an ETA, read from the progress file the
job rewrites (`Service.read_verify_progress`).
"""

from __future__ import annotations

import streamlit as st

from app import jobs, state
from app.widgets.tables import fmt_duration

REFRESH_S = 2


def progress_words(job: jobs.CliJob) -> tuple[float, str]:
    """(fraction done, one sentence) for a running job: runs done, the current run's step and
    loss, the ETA; before its first snapshot, how long it has been starting."""
    snap = state.service().read_verify_progress(job.progress_path)
    if snap is None:
        return 0.0, "starting (loading the task and building the target model)"
    loss = "no loss logged yet" if snap.loss is None else f"loss {snap.loss:.4g}"
    current = (f"run {snap.runs_done + 1} of {snap.runs_total}: {snap.current}, step {snap.step}/"
               f"{snap.steps}, {loss}" if snap.runs_done < snap.runs_total
               else f"all {snap.runs_total} runs trained, writing the report")
    eta = "" if snap.eta_s is None else f"; about {fmt_duration(snap.eta_s)} left"
    return snap.fraction, f"{current} ({fmt_duration(snap.elapsed_s)} so far{eta})"


def show_running(job: jobs.CliJob) -> None:
    """A running job's progress bar and sentence."""
    fraction, words = progress_words(job)
    st.progress(fraction, text=f"{job.label or 'Job'}: {words}")


@st.fragment(run_every=REFRESH_S)
def jobs_panel() -> None:
    """Every verification this server started: running ones with their progress, finished ones
    with their outcome (the result itself is on the Export page)."""
    started = [job for job in jobs.registry().started() if job.label]
    if not started:
        return
    st.subheader("Verifications")
    for job in reversed(started):
        status = job.status()
        if status == "running":
            show_running(job)
        elif status == "done":
            st.markdown(f":material/check_circle: {job.label}: finished; its result is on "
                        "**Export**.")
        else:
            st.markdown(f":material/error: {job.label}: failed; the reason is on **Export**.")
