"""The µP doctor's findings in plain words: shared by the Doctor page and the Setup page.

`show_report` draws the doctor's report (a `DoctorResult`, parsed from `doctor --json`: verdict, then each finding with its fix and
evidence chart); `launch_checks` runs the static checks of a spec before launch (through the
service) and shows what fails beside the Launch button.
"""

from __future__ import annotations

import re

import streamlit as st

from app import state
from app.doctor import doctor_charts
from experiments.service import DoctorFinding, DoctorResult, ServiceError
from experiments.spec.sweep import SweepSpec

# What each check means, in one line (the README's doctor section says the same).
CHECK_HELP = {
    "metadata": "every parameter has µP metadata (a role and width multipliers)",
    "parametrization": "which rules table is in force (SP is reported as SP)",
    "readout": "the output layer applies the readout multiplier alpha_out / m",
    "multipliers": "every module's forward constants match the setup",
    "attention": "attention scores use the table's scale (1/d_head under µP)",
    "tied": "weights shared by the embedding and the head are handled on purpose",
    "optimizer": "the optimizer's groups carry the table's per-group LR multipliers",
    "weight_decay": "every decayed group shrinks alike per step",
    "eps": "Adam eps is one value or scaled by the table",
    "lr_schedule": "the LR schedule keeps the groups' LR ratios",
    "coord_check": "no activation (logits included) grows with width over 30 steps",
    "update_size": "each weight's |dW|/|W| scales with width as µP prescribes for its role",
    "ablation": "which single ingredient, switched to µP's value, restores flat slopes",
}
_BOX = {"pass": st.success, "warn": st.warning, "fail": st.error}
_ICON = {"pass": ":material/check_circle:", "warn": ":material/warning:",
         "fail": ":material/error:"}
_CHARTS = {"coord_check": doctor_charts.activation_slopes_figure,
           "update_size": doctor_charts.update_slopes_figure,
           "ablation": doctor_charts.ablation_figure}


# mucore's internal names, and what a user reads instead (longest first when replacing); a
# finding that used any shows the original, exact text in an expander for whoever edits the
# model.
PLAIN = {
    "alpha_out / m": "the output multiplier divided by the width multiplier",
    "alpha_out": "the output multiplier",
    "forward_exp": "the forward multiplier's width exponent",
    "mu_configure": "the model's µP setup method",
    "width_mult": "the width multiplier",
    "lr_mult": "the LR multiplier",
}
RAW_DICT = re.compile(r"\{[^{}]*:[^{}]*\}")


def _plain(text: str) -> str:
    for term in sorted(PLAIN, key=len, reverse=True):
        text = text.replace(term, PLAIN[term])
    return RAW_DICT.sub("(listed in the details)", text)


def by_cause(problems: list[DoctorFinding]) -> list[DoctorFinding]:
    """The ablation's finding first (it names the ingredient that, switched alone, fixes the
    model: the cause), then the other failures, then the warnings; check order otherwise."""
    rank = {"fail": 1, "warn": 2}
    return sorted(problems, key=lambda f: 0 if f.check == "ablation" and f.status == "fail"
                  else rank.get(f.status, 3))


def plain_words(finding: DoctorFinding) -> tuple[str, str | None]:
    """(what the page says: the message and fix with internal names in plain words, the
    original text when it used any, else None)."""
    title = finding.check.replace("_", " ")
    original = f"**{title}**: {finding.message}" + (f"\n\n**Fix:** {finding.fix}" if finding.fix else "")
    text = f"**{title}**: {_plain(finding.message)}" + (
        f"\n\n**Fix:** {_plain(finding.fix)}" if finding.fix else "")
    return text, (None if text == original else original)


def show_report(report: DoctorResult, key: str = "doctor") -> None:
    """The verdict, then the problems by cause (the ablation's culprit first; each with its fix
    and evidence chart), then what passed."""
    bad = by_cause(report.problems)
    if report.healthy:
        st.success(f"**Healthy.** {report.model} ({report.param}): no check failed.",
                   icon=":material/verified:")
    else:
        n = sum(f.status == "fail" for f in report.findings)
        st.error(f"**Problems.** {n} checks failed for {report.model} ({report.param}).",
                 icon=":material/healing:")
    for i, f in enumerate(bad):
        text, original = plain_words(f)
        _BOX[f.status](text, icon=_ICON[f.status])
        if original is not None:
            with st.expander("Details, in mucore's terms"):
                st.markdown(original)
        if f.check in _CHARTS:
            st.plotly_chart(_CHARTS[f.check](f.evidence), key=f"{key}.bad.{i}")
    passed = report.passed
    with st.expander(f"{len(passed)} checks passed", expanded=not bad):
        for i, f in enumerate(passed):
            st.markdown(f":green[✔] **{f.check}** — {f.message}", help=CHECK_HELP.get(f.check))
            if f.check in _CHARTS:
                st.plotly_chart(_CHARTS[f.check](f.evidence), key=f"{key}.ok.{i}")


@st.cache_data(show_spinner=False, max_entries=64)
def _static_findings(spec_json: str) -> list[DoctorFinding]:
    # Keyed by the spec's JSON: a redraw with the same model, widths and optimizer is free.
    return state.service().doctor_static(SweepSpec.model_validate_json(spec_json))


def launch_checks(spec: SweepSpec | None) -> None:
    """Setup's hook: the static µP checks of a registered model's spec, failures shown."""
    if spec is None or spec.model.kind != "custom":
        return
    keyed = spec.model_copy(update={"name": "sweep"})  # the name changes nothing checked
    try:
        findings = _static_findings(keyed.model_dump_json())
    except ServiceError as exc:
        st.error(f"The µP checks could not run: {exc}", icon=":material/error:")
        return
    failed = [f for f in findings if f.status == "fail"]
    warned = [f for f in findings if f.status == "warn"]
    if not findings:
        st.caption(":green[✔] µP static checks pass for this model.")
        return
    if failed:
        st.error("**µP checks fail for this model**: the sweep would not transfer.",
                 icon=":material/healing:")
    else:
        st.warning("**µP checks warn about this model**: read before launching.",
                   icon=":material/warning:")
    for f in [*failed, *warned]:
        st.markdown(f"- *{f.param}* · **{f.check}** ({f.status}): {f.message}  \n"
                    f"  **Fix:** {f.fix}")
