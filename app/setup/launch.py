"""Turning a spec into a sweep: validate, check what the browser may ask for, create, start.

Launch = `Service.launch`: the sweep is created in the store and the engine's background
runner is started if none is running. The page never trains anything itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st
from pydantic import ValidationError

from app import nav, state
from app.setup import messages, presets, safety
from app.widgets import form
from experiments.service import RunnerNotStarted, ServiceError
from experiments.spec.sweep import SweepSpec


class LaunchError(Exception):
    """The spec could not be launched; the message says why in plain words."""


class QueuedWithoutRunner(Exception):
    """The sweep is stored and queued, but the background runner could not start.

    Attributes:
        sweep_id: the queued sweep; Runs' Resume (or `sweep resume`) runs it once the cause
            (the message) is fixed.
    """

    def __init__(self, message: str, sweep_id: int) -> None:
        super().__init__(message)
        self.sweep_id = sweep_id


def validate(data: dict[str, Any], in_form_words: bool = False
             ) -> tuple[SweepSpec | None, dict[str, list[str]]]:
    """Validate browser-supplied spec data.

    Args:
        data: the spec data.
        in_form_words: messages rewritten for the Setup form (`messages`: labels, which
            entry, what to type); else pydantic's own (an upload's refusal adds its hints).

    Returns:
        (spec, {}) when valid, else (None, errors by dotted field path; "" for the whole spec).
    """
    try:
        data = safety.check_browser_spec(data, state.service().data_dirs())
        spec = SweepSpec.model_validate(data)
    except safety.UnsafeSpecError as exc:
        return None, {exc.field: [str(exc)]}
    except ValidationError as exc:
        return None, (messages.errors_by_field(exc) if in_form_words
                      else form.errors_by_field(exc))
    return spec, {}  # model_validate ran check_spec: a submit validates once


def launch_and_follow(start: Callable[[], int], refused: str = "") -> None:
    """Launch with `start` (a spec or the quick demo) and open the Runs page on the new sweep;
    or say, in place, why nothing was launched (`refused` prefixes that message), or that the
    sweep is stored but no runner could start."""
    try:
        sweep_id = start()
    except LaunchError as exc:
        st.error(f"{refused}{exc}", icon=":material/block:")
    except QueuedWithoutRunner as exc:
        state.set_current_sweep(exc.sweep_id)
        st.warning(queued_without_runner(exc), icon=":material/warning:")
    else:
        state.set_current_sweep(sweep_id)
        st.switch_page(nav.page("runs.py"))


def queued_without_runner(exc: QueuedWithoutRunner) -> str:
    """What the page says when the sweep is stored but no runner started: the cause, and how
    to run the queued sweep once it is fixed (nothing stored is lost)."""
    return (f"Sweep {exc.sweep_id} is stored and queued, but nothing is training it: {exc}. "
            f"Fix the cause, then run `python -m experiments sweep resume {exc.sweep_id}` "
            "(or launch again from this page).")


def launch(spec: SweepSpec) -> int:
    """Create the sweep for a validated spec and start the background runner.

    Returns:
        The new sweep's id.

    Raises:
        LaunchError: the engine refused the sweep (the message says why); nothing is stored.
        QueuedWithoutRunner: the sweep is stored but no runner could start.
    """
    try:
        return state.service().launch(spec)
    except RunnerNotStarted as exc:
        if exc.sweep_id is None:
            raise LaunchError(str(exc)) from exc
        raise QueuedWithoutRunner(str(exc), exc.sweep_id) from exc
    except ServiceError as exc:
        raise LaunchError(str(exc)) from exc


def launch_quick_demo() -> int:
    """Launch the quick-demo preset (steps lowered by MUTRANSFER_QUICK_STEPS if set)."""
    try:
        data = presets.quick_spec_data()
    except (OSError, ValueError) as exc:
        raise LaunchError(f"cannot read the quick-demo preset: {exc}") from exc
    spec, errors = validate(data)
    if spec is None:
        raise LaunchError("the quick-demo preset is invalid: " + "; ".join(m for ms in errors.values() for m in ms))
    return launch(spec)
