"""Turning a spec into a sweep: validate, check what the browser may ask for, create, start.

Launch = `Service.launch`: the sweep is created in the store and the engine's background
runner is started if none is running. The page never trains anything itself.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app import form, presets, safety, state
from experiments.service import ServiceError
from experiments.spec import SweepSpec


class LaunchError(Exception):
    """The spec could not be launched; the message says why in plain words."""


def validate(data: dict[str, Any]) -> tuple[SweepSpec | None, dict[str, list[str]]]:
    """Validate browser-supplied spec data.

    Returns:
        (spec, {}) when valid, else (None, errors by dotted field path; "" for the whole spec).
    """
    try:
        data = safety.check_browser_spec(data, state.service().data_dirs())
        spec = SweepSpec.model_validate(data)
    except safety.UnsafeSpecError as exc:
        return None, {exc.field: [str(exc)]}
    except ValidationError as exc:
        return None, form.errors_by_field(exc)
    return spec, {}  # model_validate ran check_spec: a submit validates once


def launch(spec: SweepSpec) -> int:
    """Create the sweep for a validated spec and start the background runner.

    Returns:
        The new sweep's id.

    Raises:
        LaunchError: the engine refused the sweep (the message says why).
    """
    try:
        return state.service().launch(spec)
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
