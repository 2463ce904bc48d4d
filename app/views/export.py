"""Export: the tuned hyperparameters of a sweep as a bundle for the wide target model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from app import jobs, state
from app.export import bundles, training_pick, verify_view
from app.widgets import components, jobs_view
from experiments.service import TARGET_DOUBLINGS, ServiceError, VerifyReport

if TYPE_CHECKING:  # typing only
    from experiments.service import HPBundle, Service, SweepSummary

# Target width per sweep, kept outside the widget: Streamlit drops a widget's key when another
# page runs, and a running verification must still be found at its width on return.
KEPT_TARGETS = "export_target_by_sweep"
KEPT_FORCED = "export_forced_sweeps"


def pick_target(service: Service, sweep: SweepSummary) -> int:
    """The target width: the one last chosen for this sweep, else the default
    (`bundles.default_target`, never beyond 8x the widest trained width)."""
    widths = service.target_widths(sweep.id)
    if not widths:
        st.info("This sweep has no widths yet.")
        st.stop()
    trained = widths[: len(widths) - TARGET_DOUBLINGS]
    kept: dict[int, int] = st.session_state.setdefault(KEPT_TARGETS, {})
    start = kept.get(int(sweep.id))
    if start not in widths:
        start = bundles.default_target(widths, trained) or widths[-1]
    c1, _ = st.columns([2, 3])  # wide enough for "1,024 (2x the widest)" at 1024 px
    chosen: int = c1.selectbox(
        "Target width", widths, index=widths.index(start), key="export_target",
        format_func=lambda w: f"{w:,}" + (" (trained)" if w in trained else
                                           f" ({w // max(trained or widths):g}x the widest)"),
        help="The width of the model you will train with these hyperparameters. The sweep's own "
             "widths and doublings beyond its widest are offered.",
    )
    kept[int(sweep.id)] = chosen
    return chosen


def pick_bundle(service: Service, sweep: SweepSummary, target_width: int,
                training: training_pick.TrainingPick | None = None) -> HPBundle:
    """The sweep's bundle for the target (and its batch and horizon). Where the sweep does not
    confirm transfer, the bundle only once "Export anyway" is ticked; the page stops here until
    there is one."""
    t = training or training_pick.TrainingPick()

    def export(force: bool) -> HPBundle:
        return service.export(sweep.id, target_width, force, target_batch=t.target_batch,
                              target_steps=t.target_steps, rules=dict(t.rules) or None)

    try:
        return export(False)
    except ServiceError as exc:
        refusal = bundles.web_words(str(exc))
    # Kept per sweep outside the widget, like the target width: a verification started from a
    # forced bundle is found again after a visit to another page.
    kept: set[int] = st.session_state.setdefault(KEPT_FORCED, set())
    forced = st.checkbox(
        bundles.FORCE_LABEL, key="export_force", value=int(sweep.id) in kept,
        help="Export although transfer is not confirmed: the bundle records forced: true.",
    )
    (kept.add if forced else kept.discard)(int(sweep.id))
    if not forced:
        st.warning(f"No bundle yet: {refusal}", icon=":material/warning:")
        st.stop()
    try:
        bundle = export(True)
    except ServiceError as exc2:
        st.error(bundles.web_words(str(exc2)))
        st.stop()
    reason = refusal.split(": fix the sweep")[0]  # the way out is the ticked box itself
    st.caption(f"Exported anyway (the bundle records forced: true). Why it was refused: {reason}.")
    return bundle


def preview_section(service: Service, bundle: HPBundle, stem: str) -> None:
    """The bundle's headline facts, its body, and its JSON and YAML downloads."""
    st.subheader("Bundle preview")
    facts = list(bundles.summary(bundle).items())
    # The verdict is a sentence, not a tile: "not confirmed (forced)" does not fit one.
    # Nor is the loss the LR was chosen by: "validation loss" is cut in a tile at 1024 px.
    sentences = {label: value for label, value in facts if label in ("Verdict", "LR chosen by")}
    facts = [(label, value) for label, value in facts if label not in sentences]
    # Two tiles a row: three truncate the LR and the loss at 1024 px with the sidebar open.
    for start in range(0, len(facts), 2):
        row = facts[start:start + 2]
        for col, (label, value) in zip(st.columns(2), row, strict=False):
            col.metric(label, value)
    words = []
    if "LR chosen by" in sentences:
        words.append(f"Learning rate chosen by the best **{sentences['LR chosen by']}**.")
    if "Verdict" in sentences:
        words.append(f"Transfer verdict of the sweep: **{sentences['Verdict']}**.")
    if words:
        st.markdown(" ".join(words))
    for line in bundles.ladder_verdict_words(bundle):
        st.markdown(line)
    st.caption(bundles.forecast_words(bundle))
    st.json(bundle.body(), expanded=1)
    d1, d2 = st.columns(2)
    d1.download_button(
        "Download JSON", data=service.bundle_json(bundle), file_name=f"{stem}.json", mime="application/json",
        key="export_json", type="primary", icon=":material/download:",
    )
    d2.download_button(
        "Download YAML", data=service.bundle_yaml(bundle), file_name=f"{stem}.yaml", mime="application/x-yaml",
        key="export_yaml", icon=":material/download:",
    )


def use_section(service: Service, sweep_id: int, width: int, bundle: HPBundle, stem: str) -> None:
    """How to load the bundle, and its verification at the target width (launch and result)."""
    st.subheader("Use it")
    st.caption("Load the bundle, check its hash, and get the target model and its optimizer:")
    st.code(bundles.load_snippet(f"{stem}.json", bundles.registered_name(bundle)),
            language="python", wrap_lines=True)

    st.subheader("Verify")
    st.caption(
        "Trains the target width at the transferred LR and at its neighbours on the grid, and "
        "SP at its own extrapolated LR as a baseline, then compares them, and the loss it "
        "reaches with the bundle's forecast."
    )
    cost_note(service, sweep_id, bundle)
    verify_key = bundles.verify_key(sweep_id, bundle)
    if st.button("Launch verification", key="export_verify", icon=":material/verified:"):
        jobs.registry().start(verify_key, bundles.verify_args(service, bundle), restart=True,
                              label=f"Verification of sweep #{sweep_id} at width {width:,}",
                              progress_flag="--progress")
    verify_panel(service, verify_key, sweep_id, width)


def cost_note(service: Service, sweep_id: int, bundle: HPBundle) -> None:
    """What the verification will cost, before the click (kept per bundle: sizing the target
    loads the task and counts parameters)."""
    cache: dict[str, str] = st.session_state.setdefault("export_verify_costs", {})
    if bundle.content_hash not in cache:
        try:
            cache[bundle.content_hash] = verify_view.cost_words(
                service.verify_estimate(sweep_id, bundle), bundle.target_width)
        except ServiceError as exc:
            cache[bundle.content_hash] = f"The cost could not be estimated: {exc}"
    st.markdown(cache[bundle.content_hash])


@st.fragment(run_every=2)
def verify_panel(service: Service, verify_key: str, sweep_id: int, width: int) -> None:
    """The verification job's state and result, polled; without a job, the latest stored one."""
    job = jobs.registry().get(verify_key)
    if job is None:
        # Verifications are kept in the store beside their sweep: show the latest one.
        stored = service.verifications(sweep_id, target_width=width)
        if not stored:
            st.caption("Not verified yet at this width.")
            return
        last = stored[0]
        st.caption(f"Last verification, {last.created:%Y-%m-%d %H:%M} UTC:")
        show_result(last.report)
        return
    status = job.status()
    if status == "running":
        jobs_view.show_running(job)
    elif status == "failed":
        st.error(f"Verification failed:\n\n```\n{job.error()}\n```")
    else:
        show_result(job.result(VerifyReport.from_json))


def show_result(report: VerifyReport) -> None:
    """A verification as a comparison: its outcome, two sentences, the chart, the details."""
    if report.within_one_step:
        st.success("**Verified**: the transferred LR is within one grid step of the target's best.")
    else:
        st.error("**Not verified**: the target's best LR is more than one grid step away.")
    st.markdown(verify_view.bracket_sentence(report))
    st.markdown(verify_view.baseline_sentence(report))
    check = report.forecast
    if check is not None:
        say = {"inside": st.info, "better": st.success, "worse": st.warning}[check.status]
        say(f"**Loss forecast: {check.status}**. {check.sentence()}.")
    st.plotly_chart(verify_view.comparison_figure(report), key="export_verify_chart")
    for warning in report.warnings:
        st.caption(f":material/warning: {warning}")
    with st.expander("Every number of the report"):
        st.dataframe(bundles.verify_table(report), hide_index=True, key="export_verify_table")


st.title("Export a hyperparameter bundle")
st.caption(
    "A bundle records the model, the parametrization, the base width and the hyperparameters "
    "tuned on the sweep, with a hash, so the wide target model can be trained with exactly them."
)

sweep = components.sweep_picker("export_sweep")
if sweep is None:
    st.stop()

service = state.service()
target_width = pick_target(service, sweep)
training = training_pick.pick_training(service.spec(sweep.id))
bundle = pick_bundle(service, sweep, target_width, training)
stem = f"{sweep.name}-w{target_width}{training.stem()}"
preview, use = st.columns([3, 2], gap="large")
with preview:
    preview_section(service, bundle, stem)
with use:
    use_section(service, int(sweep.id), int(target_width), bundle, stem)
