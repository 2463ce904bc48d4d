"""Registered models in the browser: picked from the server's list, options drawn as fields.

The list is `Service.models()`: what the server's `MUTRANSFER_MODEL_DIRS` folders and installed
`mutransfer.models` entry points register. The browser only ever sends a name from that list
and option values; it never names a file, a module or a folder, and cannot add one.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from app import state
from app.widgets import form
from experiments.service import ModelInfo, ServiceError

CUSTOM = "custom"  # the spec's `model.kind` of a registered model
# Tasks a registered model can be checked on (it says nothing about its task up front).
CHECK_TASKS = ["digits", "synthetic", "bytes", "synthetic-lm"]


def registered() -> tuple[dict[str, ModelInfo], str | None]:
    """The registered models by name, and the registry's error when it cannot be read.

    A broken model file must not take the zoo, or the other registered models, down with it:
    the page shows its error (by name, with file and line) and still offers the rest.
    """
    try:
        models = state.service().models()
    except ServiceError as exc:
        return {}, str(exc)
    # A registered model that cannot be used is listed with its error: named here, not offered.
    broken = "; ".join(f"registered model '{m.name}' cannot be used: {m.error}"
                       for m in models if m.kind == CUSTOM and m.error is not None)
    return {m.name: m for m in models if m.kind == CUSTOM and m.error is None}, broken or None


def model_select(container: Any, zoo: dict[str, str], key: str) -> tuple[str, dict[str, ModelInfo]]:
    """The pages' model picker: the zoo's models (`zoo`: kind -> label), then the registered
    ones; a registry that cannot be read is shown as an error and leaves the zoo.

    Returns:
        (the picked kind or registered name, the registered models by name).
    """
    models, error = registered()
    if error:
        st.error(f"Registered models are unavailable: {error}", icon=":material/error:")
    picked = container.selectbox(
        "Model", [*zoo, *models], key=key,
        format_func=lambda k: zoo.get(k) or label(models[k]),
        help="The zoo's models, then the models registered on this server (MUTRANSFER_MODEL_DIRS).",
    )
    return str(picked), models


def label(model: ModelInfo) -> str:
    """A selectbox label: the name and its one-line description."""
    return f"{model.name} — {model.description}" if model.description else model.name


def option_inputs(container: Any, spec_form: form.ModelForm, model: ModelInfo,
                  values: dict[str, Any], path: str) -> dict[str, Any]:
    """Draw one widget per option of `model` (errors slotted at `path.<option>`); return the
    values. Widget keys carry the model's name, so two models' same-named options never share
    a widget."""
    options_cls = form.options_model(f"{model.name} options", model.options)
    return spec_form.render(container, options_cls, values, path=path,
                            widget_path=f"{path}.{model.name}")


def cli_args(container: Any, model: ModelInfo, prefix: str) -> list[str]:
    """Draw a registered model's task and options; return the `--task`/`--option` CLI flags
    that ask for them (coord-check and describe take the same ones)."""
    task = container.selectbox(
        "Task", CHECK_TASKS, key=f"{prefix}.task", help="A registered model says nothing about "
        "its task: pick one it can be built for (digits and synthetic are images, bytes and "
        "synthetic-lm are byte-level text).",
    )
    values = option_inputs(container, form.ModelForm(prefix), model, {}, "options")
    args = ["--task", str(task)]
    for name, value in values.items():
        args += ["--option", f"{name}={json.dumps(value)}"]
    return args
