"""Export: the tuned hyperparameters of a sweep as a bundle for the wide target model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from app import jobs, state
from app.export import bundles
from app.widgets import components
from experiments.service import ServiceError, VerifyReport

if TYPE_CHECKING:  # typing only
    from experiments.service import HPBundle, Service, SweepSummary

def pick_bundle(service: Service, sweep: SweepSummary) -> tuple[int, HPBundle]:
    """The target width and the sweep's bundle for it. Where the sweep does not confirm
    transfer, the bundle only once "Export anyway" is ticked (like the CLI's --force); the page
    stops here until there is one."""
    widths = service.target_widths(sweep.id)
    c1, c2 = st.columns([1, 3])
    target_width = c1.selectbox(
        "Target width", widths, index=len(widths) - 1 if widths else None, key="export_target",
        help="The width of the model you will train with these hyperparameters.",
    )
    if target_width is None:
        st.info("This sweep has no widths yet.")
        st.stop()

    try:
        bundle = service.export(sweep.id, int(target_width))
    except ServiceError as exc:
        st.warning(f"No bundle yet: {exc}", icon=":material/warning:")
        if not st.checkbox(
            "Export anyway", key="export_force",
            help="Like the CLI's --force: the bundle records that transfer was not confirmed "
            "(the verdict was not confirmed or inconclusive).",
        ):
            st.stop()
        try:
            bundle = service.export(sweep.id, int(target_width), force=True)
        except ServiceError as exc2:
            st.error(str(exc2))
            st.stop()
    return target_width, bundle


def preview_section(service: Service, bundle: HPBundle, stem: str) -> None:
    """The bundle's headline facts, its body, and its JSON and YAML downloads."""
    st.subheader("Bundle preview")
    facts = list(bundles.summary(bundle).items())
    # Three tiles a row: five in one row truncate the LR and the verdict.
    for start in range(0, len(facts), 3):
        row = facts[start:start + 3]
        for col, (label, value) in zip(st.columns(3), row, strict=False):
            col.metric(label, value)
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
    st.code(bundles.load_snippet(f"{stem}.json"), language="python", wrap_lines=True)

    st.subheader("Verify")
    st.caption(
        "Trains the target width at the transferred LR and at its neighbours on the grid, "
        "checks that the transferred LR is within one grid step of the best, and compares the "
        "loss it reaches with the bundle's forecast."
    )
    verify_key = bundles.verify_key(sweep_id, bundle)
    if st.button("Launch verification", key="export_verify", icon=":material/verified:"):
        jobs.registry().start(verify_key, bundles.verify_args(service, bundle), restart=True)
    verify_panel(service, verify_key, sweep_id, width)


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
        st.info("Verification running in the background...", icon=":material/hourglass_top:")
    elif status == "failed":
        st.error(f"Verification failed:\n\n```\n{job.error()}\n```")
    else:
        show_result(job.result(VerifyReport.from_json))


def show_result(report: VerifyReport) -> None:
    """A verification's verdict and its table."""
    if report.within_one_step:
        st.success("**Verified**: the transferred LR is within one grid step of the target's best.")
    else:
        st.error("**Not verified**: the target's best LR is more than one grid step away.")
    check = report.forecast
    if check is not None:
        say = {"inside": st.info, "better": st.success, "worse": st.warning}[check.status]
        say(f"**Loss forecast: {check.status}**. {check.sentence()}.")
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
target_width, bundle = pick_bundle(service, sweep)
stem = f"{sweep.name}-w{target_width}"
preview, use = st.columns([3, 2], gap="large")
with preview:
    preview_section(service, bundle, stem)
with use:
    use_section(service, int(sweep.id), int(target_width), bundle, stem)
