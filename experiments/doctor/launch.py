"""The doctor's static checks before a sweep launches (the pre-launch hook of the µP doctor).

A sweep of a registered model costs hours; a model that is silently not µP (a plain nn.Linear
head, an attention module that cannot take the µP scale, metadata that does not resolve)
wastes all of them. `launch_findings` runs `mucore.check` on the spec's widest model, built on
the meta device against the spec's base width with the optimizer the runner will build, once
per parametrization of the spec: fast enough (well under a second, see
bench/bench_check_static.py) to run whenever the Setup page redraws.

This module imports no torch at import time (the service and the dashboard import it); the
checks load it when they run.
"""

from __future__ import annotations

from experiments.errors import UserError
from experiments.job_results import DoctorFinding
from experiments.spec.sweep import SweepSpec, optimizer_names, parametrization_names


def launch_findings(spec: SweepSpec) -> list[DoctorFinding]:
    """The static checks of every parametrization of `spec` that did not pass.

    Returns:
        Failures and warnings, in check order per parametrization; empty when all pass. A
        model that cannot be built at the spec's widths is one "build" failure.
    """
    from experiments.doctor.diagnose import model_family, static_findings  # loads torch

    widest = max(spec.widths)
    if widest == spec.base_width:  # roles need a second width to compare with
        widest = 2 * spec.base_width
    try:
        factory = model_family(spec.model, spec.task, list(spec.widths), spec.base_width)
    except UserError as exc:
        return [DoctorFinding("", "build", "fail", str(exc), "fix the model or the widths")]
    out: list[DoctorFinding] = []
    for param in spec.parametrizations:
        lr = 1e-3  # any positive LR: the checks compare group LRs with each other
        for f in static_findings(factory, param, widest, spec.base_width,
                                 spec.optimizer.name, lr):
            if f.status != "pass":
                out.append(DoctorFinding(param, f.check, f.status, f.message, f.fix))
    return out


def doctor_args(model_args: list[str], param: str, widths: list[int],
                optimizer: str = "adam") -> list[str]:
    """The `python -m experiments doctor` arguments (without `--json`) of one request.

    Args:
        model_args: `--model NAME` and its `--option k=v` flags.
        param: a registered parametrization (`mucore.parametrization_names()`).
        widths: at least two increasing widths (3-4 are enough).
        optimizer: a registered optimizer name (`mucore.optimizer_names()`).

    Raises:
        UserError: naming the field and what to change.
    """
    if param not in parametrization_names():
        raise UserError(f"parametrization must be one of {', '.join(parametrization_names())} "
                        f"for the doctor, got {param!r}")
    if optimizer not in optimizer_names():
        raise UserError(f"optimizer must be one of {', '.join(optimizer_names())} for the "
                        f"doctor, got {optimizer!r}")
    if len(widths) < 2 or any(b <= a for a, b in zip(widths, widths[1:], strict=False)):
        raise UserError(f"widths must be at least two increasing numbers, got {widths}")
    return ["doctor", *model_args, "--param", param,
            "--widths", ",".join(str(int(w)) for w in widths), "--optimizer", optimizer]
