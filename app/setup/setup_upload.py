"""Loading an uploaded spec into the Setup form: read, validate, then load or refuse whole.

An upload is read by the engine's spec reader (`safety.parse_uploaded_spec`) and validated as
the form's own data is (`launch.validate`: the browser's rules, then `SweepSpec`). A valid spec
is what the form is then loaded with (its widgets set to it, so the page shows, estimates and
launches that spec). An invalid one is refused and the form is left as it was: a value of the
wrong type (`steps: {a: 1}`, `task: digits`) has no widget that could show it, and drawing it
anyway is how a typo became a Python traceback. The refusal names each field by its label on
the form and says what to type there.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from app import state
from app.setup import launch, safety
from app.widgets import form
from experiments.spec.sweep import SweepSpec

# Form labels of the fields the Setup page draws by hand (the generated ones are labelled by
# their field name, with spaces for underscores).
LABELS = {
    "": "the spec as a whole",
    "name": "Sweep name",
    "model": "Model",
    "model.kind": "Architecture",
    "model.name": "Registered model",
    "task": "Task",
    "task.name": "Task",
    "task.path": "Dataset file (or Token folder)",
    "task.seq_len": "sequence length",
    "task.vocab_size": "vocabulary size",
    "task.dtype": "id dtype",
    "widths": "width ladder",
    "base_width": "base width",
    "batch_size": "batch size",
    "hparam_grid": "knobs to sweep",
    "lr_grid": "log2 grid",
    "lr_grid.log2_min": "log2 min",
    "lr_grid.log2_max": "log2 max",
    "lr_grid.step": "step (log2)",
    "lrs": "explicit list",
    "search": "LR search",
    "search.kind": "LR search",
    "search.full_widths": "full-grid widths",
    "search.bracket": "bracket",
}
# The form section (heading) a top-level spec field is drawn under.
SECTIONS = {"model": "Model", "task": "Task", "lr_grid": "Learning rates", "lrs": "Learning rates",
            "search": "Learning rates", "name": "Before launch"}
UNKNOWN_KEY = "Extra inputs are not permitted"  # pydantic's message for a key the spec lacks
TYPE_MESSAGE = "Input should be"  # how pydantic's messages for a mistyped value begin
MODEL_KINDS = frozenset(form.discriminated_members(SweepSpec.model_fields["model"].annotation) or {})
_OPTION_KINDS = {"int": int, "float": float, "bool": bool, "str": str}


def label(path: str) -> str:
    """`Section › label` of a dotted spec path as the Setup form shows it.

    A zoo model's knob sits under its kind in validation paths (`model.mlp.depth`: "Model ›
    depth"); a registered model's option under `model.options`; a swept knob is "sweep <knob>".
    """
    parts = path.split(".") if path else []
    if len(parts) > 2 and parts[0] == "model" and parts[1] in MODEL_KINDS:
        parts = ["model", *parts[2:]]
    path = ".".join(parts)
    section = SECTIONS.get(parts[0], "Sweep") if parts else ""
    if path in LABELS:
        text = LABELS[path]
    elif parts[0] == "hparam_grid":
        text = f"sweep {parts[-1]}"
    elif len(parts) >= 3 and parts[:2] == ["model", "options"]:
        text = f"option {parts[2]}"
    else:
        text = " › ".join(p.replace("_", " ") for p in (parts[1:] if parts[0] == "model" else parts))
    return text if not section or text == section else f"{section} › {text}"


def _field_at(path: str) -> tuple[Any, Any]:
    """(type annotation, default) of a dotted spec path; the default is None when the field
    has none, both are None when the path leaves the models (a registered model's options,
    an unknown key)."""
    annotation: Any = SweepSpec
    default: Any = None
    for part in path.split(".") if path else []:
        annotation = _unwrap(annotation)
        members = form.discriminated_members(annotation)
        if members is not None:
            annotation, default = members.get(part), None
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            owner = annotation
            annotation = owner.model_fields[part].annotation if part in owner.model_fields else None
            default = form.default_of(owner, part) if annotation is not None else None
        elif get_origin(annotation) is dict:
            annotation, default = get_args(annotation)[1], None
        else:
            return None, None
        if annotation is None:
            return None, None
    return annotation, default


def _unwrap(annotation: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` (the wrappers say nothing about what to type)."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def expected(annotation: Any, example: Any = None) -> str | None:
    """What to type for a value of `annotation`, in words with an example (`example`, e.g.
    the field's default, else a generic one); None when the type says nothing useful."""
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in get_args(annotation))
    simple = {int: ("a whole number", 4), float: ("a number", 0.5), bool: ("`true` or `false`", None),
              str: ("text", None)}
    if annotation in simple:
        words, generic = simple[annotation]
        shown = example if isinstance(example, annotation) and not isinstance(example, bool) else generic
        return words + (f", e.g. `{shown}`" if shown is not None else "")
    if origin in (list, tuple):
        item = _unwrap(next(iter(get_args(annotation)), Any))
        if item is int:
            return "a list of whole numbers, e.g. `[64, 128]`"
        if item is float:
            return "a list of numbers, e.g. `[0.001, 0.01]`"
        return "a list, e.g. " + (f"`[{get_args(item)[0]}]`" if get_origin(item) is Literal else "`[...]`")
    members = form.discriminated_members(annotation)
    if members is not None:
        return ("a mapping with a `kind` (" + ", ".join(members) + ") and that kind's fields, "
                f"e.g. `{{kind: {next(iter(members))}}}`")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields
        example = [f"{n}: {get_args(_unwrap(f.annotation))[0]}" for n, f in fields.items()
                   if f.is_required() and get_origin(_unwrap(f.annotation)) is Literal]
        return ("a mapping of its fields (" + ", ".join(fields) + ")"
                + (f", e.g. `{{{', '.join(example)}}}`" if example else ""))
    if origin is dict:
        return "a mapping, e.g. `{key: [1, 2]}`"
    return None


def _option_expected(data: dict[str, Any], option: str) -> str | None:
    """What to type for a registered model's option (its declared type and choices)."""
    model = data.get("model")
    name = model.get("name") if isinstance(model, dict) else None
    registered = {m.name: m for m in state.service().models()} if isinstance(name, str) else {}
    info = registered.get(str(name))
    found = [o for o in info.options if o.name == option] if info is not None else []
    if not found:
        return None
    if found[0].choices is not None:
        return "one of " + ", ".join(f"`{c}`" for c in found[0].choices)
    return expected(_OPTION_KINDS.get(found[0].type))


def field_line(path: str, messages: list[str], data: dict[str, Any]) -> str:
    """One refusal line: the field's form label, what validation said and, for a value of the
    wrong type or shape (pydantic's "Input should be ..."), what to type; the spec's own
    checks already say what to change."""
    parts = path.split(".")
    if not any(m.startswith(TYPE_MESSAGE) for m in messages):
        hint = None
    elif len(parts) >= 3 and parts[:2] == ["model", "options"]:
        hint = _option_expected(data, parts[2])
    else:
        hint = expected(*_field_at(path)) if path else None
    said = "; ".join("not a spec key: remove it or check its spelling" if m == UNKNOWN_KEY
                     else m.rstrip(".") for m in messages)
    return f"- **{label(path)}** (`{path or 'spec'}`): {said}." + (f" Type {hint}." if hint else "")


def read(filename: str, raw: bytes) -> tuple[SweepSpec | None, str | None]:
    """Read and validate an uploaded spec.

    Returns:
        (the validated spec, None), or (None, the refusal as markdown: one line per field, by
        its form label, with what to type).
    """
    refused = f"The spec in `{filename}` was not loaded; the form is unchanged."
    try:
        data = safety.parse_uploaded_spec(raw, filename)
    except safety.UnsafeSpecError as exc:
        return None, f"{refused} {exc}"
    spec, errors = launch.validate(data)
    if spec is not None:
        return spec, None
    lines = [field_line(path, messages, data) for path, messages in errors.items()]
    return None, (f"{refused} Fix these fields in the file and upload it again (or set them "
                  "in the form):\n\n" + "\n".join(lines))


def unshown(loaded: dict[str, Any], shown: SweepSpec | None) -> list[str]:
    """The top-level spec fields whose value on the page differs from the spec just loaded
    (empty when the form shows, and would launch, exactly the loaded spec)."""
    if shown is None:
        return ["the spec as a whole (it does not validate as the form shows it)"]
    page = shown.model_dump(mode="json")
    return [label(k) for k in sorted(set(loaded) | set(page)) if loaded.get(k) != page.get(k)]
