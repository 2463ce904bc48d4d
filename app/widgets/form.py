"""Form widgets generated from pydantic models (the sweep spec is the one source of truth).

`field_input` draws the widget a field's type calls for (a selectbox for a Literal, a checkbox
for a bool, a number input with the field's bounds for an int or float, a text input for a
str), labelled with the field name and helped by the field's description or the "Attributes:"
entry of the model's docstring. Validation errors are mapped back to fields by their pydantic
location, so the page can show each one next to its widget.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticUndefined

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import ModelOption


def attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """Field help texts from a Google-style "Attributes:" docstring section.

    Continuation lines are joined, so each field gets its whole description.
    """
    doc = model.__doc__ or ""
    match = re.search(r"^\s*Attributes:\s*$(.*)", doc, flags=re.M | re.S)
    if not match:
        return {}
    out: dict[str, str] = {}
    current = None
    for line in match.group(1).splitlines():
        entry = re.match(r"^\s{4,8}(\w+)(?: \([^)]*\))?:\s*(.*)$", line)
        if entry and entry.group(1) in model.model_fields:
            current = entry.group(1)
            out[current] = entry.group(2).strip()
        elif current and line.strip() and not re.match(r"^\s*\w[\w ]*:\s*$", line):
            out[current] += " " + line.strip()
        elif not line.strip() and current:
            current = None
    return out


def field_help(model: type[BaseModel], name: str) -> str | None:
    """The field's description, else its docstring entry, else None."""
    info = model.model_fields[name]
    return info.description or attribute_docs(model).get(name)


def _bounds(metadata: list[Any]) -> tuple[Any, Any]:
    lo: Any = None
    hi: Any = None
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Gt):
            lo = m.gt
        elif isinstance(m, annotated_types.Le):
            hi = m.le
        elif isinstance(m, annotated_types.Lt):
            hi = m.lt
    return lo, hi


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def default_of(model: type[BaseModel], name: str) -> Any:
    """The field's default (calling a default factory), or None when it is required."""
    info = model.model_fields[name]
    if info.default is not PydanticUndefined:
        return info.default
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return None


def is_simple(model: type[BaseModel], name: str) -> bool:
    """Whether `field_input` can draw this field (scalar: Literal, bool, int, float, str)."""
    base, _ = _strip_optional(model.model_fields[name].annotation)
    return get_origin(base) is Literal or base in (bool, int, float, str)


# `start(key, widget_value, **keyword)` -> the keyword arguments that start a widget at a value
# (see `ModelForm.initial`); the default passes the widget's own initial-value keyword.
Starter = Callable[..., dict[str, Any]]


def _keyword(key: str, widget_value: Any, **keyword: Any) -> dict[str, Any]:
    return keyword


def field_input(
    st_container: Any,
    model: type[BaseModel],
    name: str,
    key: str,
    value: Any = None,
    label: str | None = None,
    format_func: Any = None,
    start: Starter = _keyword,
) -> Any:
    """Draw the widget for one scalar field and return its value.

    Args:
        st_container: `st` or a container/column to draw in.
        model: the pydantic model that owns the field.
        name: field name.
        key: the widget key.
        value: the initial value (default: the field's default).
        label: the widget label (default: the field name with spaces).
        format_func: option labels for Literal fields.
        start: how the widget is started at `value` (`ModelForm.initial`; default: the
            widget's `value=`/`index=` keyword).
    """
    info = model.model_fields[name]
    base, optional = _strip_optional(info.annotation)
    value = default_of(model, name) if value is None else value
    label = label or name.replace("_", " ")
    help_text = field_help(model, name)
    choices = getattr(model, "FIELD_OPTIONS", {}).get(name)  # a registry's names
    if get_origin(base) is Literal or choices is not None:
        options = list(get_args(base)) if choices is None else list(choices())
        index = options.index(value) if value in options else 0
        kwargs = {"format_func": format_func} if format_func else {}
        return st_container.selectbox(label, options, key=key, help=help_text,
                                      **start(key, options[index], index=index), **kwargs)
    if base is bool:
        return st_container.checkbox(label, key=key, help=help_text, **start(key, bool(value), value=bool(value)))
    if base in (int, float):
        lo, hi = _bounds(info.metadata)
        cast = int if base is int else float
        number = cast(value) if value is not None else None
        return st_container.number_input(
            label,
            min_value=cast(lo) if lo is not None else None,
            max_value=cast(hi) if hi is not None else None,
            step=1 if base is int else None,
            # Floats shown as typed: the default "%0.2f" shows Adam's eps 1e-8 as 0.00.
            format=None if base is int else "%g",
            key=key,
            help=help_text,
            placeholder="(unset)" if optional else None,
            **start(key, number, value=number),
        )
    text = "" if value is None else str(value)
    return st_container.text_input(label, key=key, help=help_text, **start(key, text, value=text)) or (
        None if optional else ""
    )


def errors_by_field(exc: ValidationError) -> dict[str, list[str]]:
    """Validation messages keyed by dotted location (`model.depth`, `widths`, `` for the root)."""
    out: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
        msg = err["msg"].removeprefix("Value error, ")
        out.setdefault(loc, []).append(msg)
    return out


def pop_errors(errors: dict[str, list[str]], prefix: str) -> list[str]:
    """Remove and return the messages at `prefix` or below it (`model` takes `model.depth`)."""
    keys = [k for k in errors if k == prefix or k.startswith(prefix + ".")]
    return [msg for k in keys for msg in errors.pop(k)]


def discriminated_members(annotation: Any) -> dict[str, type[BaseModel]] | None:
    """`{kind: class}` for a union of models that each have a Literal `kind`, else None."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) not in (Union, types.UnionType):
        return None
    members: dict[str, type[BaseModel]] = {}
    for arg in get_args(annotation):
        if not (isinstance(arg, type) and issubclass(arg, BaseModel)) or "kind" not in arg.model_fields:
            return None
        kinds = get_args(arg.model_fields["kind"].annotation)
        if len(kinds) != 1:
            return None
        members[kinds[0]] = arg
    return members


def literal_options(model: type[BaseModel], name: str) -> list[Any]:
    """The allowed values of a Literal field, or of a field whose choices a registry supplies
    (the model's `FIELD_OPTIONS`)."""
    choices = getattr(model, "FIELD_OPTIONS", {}).get(name)
    if choices is not None:
        return list(choices())
    base, _ = _strip_optional(model.model_fields[name].annotation)
    return list(get_args(base))


def list_options(model: type[BaseModel], name: str, item: Any) -> list[Any] | None:
    """The choices of a list field: its items' Literal values, else the model's `FIELD_OPTIONS`
    entry for it (choices a registry supplies at run time, e.g. the parametrization tables), else
    None (not a choice field)."""
    if get_origin(item) is Literal:
        return list(get_args(item))
    options = getattr(model, "FIELD_OPTIONS", {}).get(name)
    return None if options is None else list(options())


def _list_item(annotation: Any) -> Any | None:
    base, _ = _strip_optional(annotation)
    if get_origin(base) in (list, tuple):
        args = [a for a in get_args(base) if a is not Ellipsis]
        return args[0] if args else None
    return None


def parse_number_list(text: str) -> list[Any]:
    """`"64, 128 256"` -> `[64, 128, 256]`; a token that is not a number stays a string, so the
    model's validation names it instead of it vanishing."""
    out: list[Any] = []
    for token in re.split(r"[,\s]+", text.strip()):
        if not token:
            continue
        try:
            out.append(int(token))
        except ValueError:
            try:
                out.append(float(token))
            except ValueError:
                out.append(token)
    return out


class ModelForm:
    """Draws widgets for a pydantic model's fields and shows validation errors beside them.

    Each drawn field leaves an empty slot under its widget; `show_errors` fills the slots of
    the fields that failed validation. Widget keys are `<prefix>.<dotted path>`, with the kind
    of a discriminated union in the path so switching kinds never reuses a widget of another
    type.

    With `state` (the page's `st.session_state`) the widgets start from their session state,
    which `initial` writes; `reload` marks the run after a spec was loaded into the form, when
    every widget drawn is set to the loaded value.
    """

    def __init__(self, prefix: str, state: MutableMapping[Any, Any] | None = None,
                 reload: bool = False) -> None:
        self.prefix = prefix
        self.slots: dict[str, Any] = {}
        self.state = state
        self.reload = reload

    def key(self, path: str) -> str:
        """The widget key of a field path."""
        return f"{self.prefix}.{path}"

    def initial(self, key: str, widget_value: Any, **keyword: Any) -> dict[str, Any]:
        """The keyword arguments that start widget `key` at `widget_value`.

        Without a session state: the widget's own initial-value keyword (`keyword`, e.g.
        `value=...` or `index=...`). With one: the value is written to the widget's state when
        the form is reloaded or the widget is new, and no keyword is passed (Streamlit takes a
        widget's value from one place). Writing the state is what makes the browser show the
        loaded value: a keyed widget's `value=` counts only the first time the browser sees
        the widget, so after a load the browser would keep showing, and sending back, the
        values it held before.
        """
        if self.state is None:
            return keyword
        if self.reload or key not in self.state:
            self.state[key] = widget_value
        return {}

    def slot(self, container: Any, path: str) -> None:
        """Reserve the error slot of `path` (for fields drawn by hand)."""
        self.slots[path] = container.empty()

    def render(
        self,
        container: Any,
        model: type[BaseModel],
        values: dict[str, Any],
        path: str = "",
        skip: tuple[str, ...] = (),
        columns: int = 2,  # three cut checkbox labels ("resid…") at 1024 px
        labels: dict[str, str] | None = None,
        widget_path: str | None = None,
    ) -> dict[str, Any]:
        """Draw every drawable field of `model` (not in `skip`); return the values as a dict.

        Fields it cannot draw (dicts, nested lists) keep their value from `values`. Error slots
        are keyed by `path` (where validation reports errors); widget keys by `widget_path`
        when given (e.g. with a registered model's name in it, so switching models never
        reuses a widget of another type).
        """
        out: dict[str, Any] = {}
        widget_path = path if widget_path is None else widget_path
        names = [n for n in model.model_fields if n not in skip and n != "kind"]
        cols = container.columns(columns) if names else []
        i = 0
        for name in names:
            info = model.model_fields[name]
            sub = f"{path}.{name}" if path else name
            wkey = self.key(f"{widget_path}.{name}" if widget_path else name)
            current = values.get(name, default_of(model, name))
            nested = info.annotation if isinstance(info.annotation, type) else None
            if nested is not None and issubclass(nested, BaseModel):
                container.markdown(f"**{(labels or {}).get(name, name.replace('_', ' '))}**")
                out[name] = self.render(container, nested, current if isinstance(current, dict) else
                                        (current.model_dump() if isinstance(current, BaseModel) else {}), sub,
                                        widget_path=f"{widget_path}.{name}" if widget_path else name)
                self.slot(container, sub)
                continue
            col = cols[i % len(cols)]
            i += 1
            # A model may name its own fields shortly (a checkbox label is cut at 1024 px).
            label = (labels or {}).get(name) or getattr(model, "FIELD_LABELS", {}).get(name)
            item = _list_item(info.annotation)
            if is_simple(model, name):
                out[name] = field_input(col, model, name, wkey, value=current, label=label, start=self.initial)
            elif item is not None and (options := list_options(model, name, item)) is not None:
                chosen = [v for v in (current or []) if v in options]
                out[name] = col.multiselect(
                    label or name.replace("_", " "), options, key=wkey, help=field_help(model, name),
                    **self.initial(wkey, chosen, default=chosen),
                )
            elif item in (int, float):
                text = ", ".join(str(v) for v in (current or []))
                out[name] = parse_number_list(col.text_input(
                    label or name.replace("_", " "), key=wkey, help=field_help(model, name),
                    **self.initial(wkey, text, value=text),
                ))
            else:
                if current is not None:
                    out[name] = current.model_dump() if isinstance(current, BaseModel) else current
                continue
            self.slot(col, sub)
        return out

    def show_errors(self, errors: dict[str, list[str]]) -> dict[str, list[str]]:
        """Fill the slots of fields with errors (deepest slot first); return the rest."""
        left = dict(errors)
        for path in sorted(self.slots, key=lambda p: -p.count(".")):
            messages = pop_errors(left, path)
            if messages:
                self.slots[path].error("\n\n".join(messages), icon=":material/error:")
        return left


_SI_PREFIXES = ["", "k", "M", "G", "T", "P", "E", "Z"]


def si_units(value: float, unit: str) -> str:
    """`1.46e12, "FLOP"` -> `1.46 TFLOP`: short enough for a metric tile, whole."""
    if not value:
        return f"0 {unit}"
    power = min(len(_SI_PREFIXES) - 1, max(0, int(math.floor(math.log10(abs(value)) / 3))))
    return f"{value / 1000 ** power:.3g} {_SI_PREFIXES[power]}{unit}"


def widths_lines(frame: pd.DataFrame) -> list[str]:
    """The plan's per-width facts as one line each ("width 64: 8.97 k params, 3.44 M FLOP per
    step, 5 MiB, 60 runs"): five table columns do not fit the Setup summary column at 1024 px
    (the last two were cut), a line wraps instead."""
    return [f"**width {int(r.width):,}**: {si_units(r.params, '').strip()} params, "
            f"{si_units(r.flops_per_step, '').strip()} FLOP per step, "
            # A small model's memory is under 1 MiB: "0 MiB" would say it needs none.
            f"{r.memory_MiB:,.{1 if r.memory_MiB < 10 else 0}f} MiB, "
            f"{int(r.runs):,} runs" for r in frame.itertuples(index=False)]


_OPTION_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}


def options_model(title: str, options: Sequence[ModelOption]) -> type[BaseModel]:
    """A pydantic model of a registered model's options, so `ModelForm` can draw them.

    Each option becomes a field of its type (a Literal of its choices for "literal") with its
    default and help text. Drawing only: the engine validates the options of a spec.
    """
    fields: dict[str, Any] = {}
    for option in options:
        if option.choices is not None:
            annotation: Any = Literal[tuple(option.choices)]
        else:
            annotation = _OPTION_TYPES.get(option.type, str)
        fields[option.name] = (annotation, Field(default=option.default, description=option.help))
    return create_model(title, __config__=ConfigDict(protected_namespaces=()), **fields)  # type: ignore[call-overload,no-any-return]
