"""Every model a sweep can name: the zoo's and the registered ones, with their options.

    for info in list_models():            # what `python -m experiments models` prints
        print(info.name, info.kind, [o.name for o in info.options])
    cfg = model_config("tiny_mixer", {"depth": 3})   # a CLI name and options -> a spec block

Zoo models' options are their config fields; registered models' are their `build` keyword
options (`experiments.models.registry`). Importing this module imports no torch; listing the
registered models imports their code.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined

from experiments.errors import UserError
from experiments.models.configs import ModelConfig
from experiments.models.registry import ModelOption, discover, get_model, zoo_classes


@dataclass(frozen=True)
class ModelInfo:
    """A model a spec can name.

    Attributes:
        name: the zoo kind ("mlp", ...) or the registered name.
        kind: "zoo" (`model: {kind: NAME, ...}`) or "custom"
            (`model: {kind: custom, name: NAME, options: {...}}`).
        source: the config class of a zoo model; the file or entry point of a registered one.
        options: what the spec may set, with types and defaults.
        description: one line about the model.
        error: a registered model that cannot be used: why (the file, line and fix, as a spec
            naming it is refused with); None for a usable model. Such an entry has no options.
    """

    name: str
    kind: Literal["zoo", "custom"]
    source: str
    options: tuple[ModelOption, ...]
    description: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `models --json` entry: name, kind, source, options, description (and `error`
        for a registered model that cannot be used)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "source": self.source,
                               "options": [o.to_dict() for o in self.options],
                               "description": self.description}
        if self.error is not None:
            out["error"] = self.error
        return out


def _field_type(annotation: Any) -> tuple[str, tuple[Any, ...] | None]:
    if get_origin(annotation) is Literal:
        return "literal", get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        names = [_field_type(a)[0] for a in get_args(annotation)]
        return " | ".join("None" if n == "NoneType" else n for n in names), None
    return getattr(annotation, "__name__", str(annotation)), None


def _zoo_info(kind: str, cls: type[BaseModel]) -> ModelInfo:
    options = []
    for name, info in cls.model_fields.items():
        if name == "kind":
            continue
        type_name, choices = _field_type(info.annotation)
        default = None if info.default is PydanticUndefined else info.default
        options.append(ModelOption(name, type_name, default, choices, info.description))
    doc = (cls.__doc__ or "").strip().split("\n", 1)[0]
    return ModelInfo(kind, "zoo", f"{cls.__module__}.{cls.__name__}", tuple(options), doc)


def zoo_models() -> list[ModelInfo]:
    """The zoo's models, in the order of the `ModelConfig` union."""
    return [_zoo_info(kind, cls) for kind, cls in zoo_classes().items()]


def list_models() -> list[ModelInfo]:
    """The zoo's models, then every registered model by name.

    A registered model that fails to import or breaks the contract is listed as an error entry
    (`ModelInfo.error`, naming its file and line), so one broken file hides neither the zoo nor
    the other registered models; a spec that names it is still refused with that message.

    Raises:
        UserError: the registry itself cannot be read: a model folder is missing, or two
            sources (or a zoo model) claim one name.
    """
    custom = []
    for name, cand in sorted(discover().items()):
        try:
            m = get_model(name)
        except UserError as exc:
            custom.append(ModelInfo(name, "custom", cand.source, (), error=str(exc)))
            continue
        custom.append(ModelInfo(m.name, "custom", m.source, m.options, m.description))
    return [*zoo_models(), *custom]


def model_block(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The spec's `model:` block for a model named on the command line.

    Raises:
        UserError: the name is neither a zoo model nor registered (both lists are named).
    """
    opts = dict(options or {})
    if name in zoo_classes():
        return {"kind": name, **opts}
    if name in discover():
        return {"kind": "custom", "name": name, "options": opts}
    registered = ", ".join(sorted(discover())) or "none"
    raise UserError(f"unknown model '{name}': zoo models are {', '.join(zoo_classes())}; "
                    f"registered models are {registered} (see `python -m experiments models`)")


def model_config(name: str, options: Mapping[str, Any] | None = None) -> ModelConfig:
    """`model_block` validated: the zoo config, or a registered model with checked options.

    Raises:
        UserError: unknown name, or options the model does not take (named).
    """
    block = model_block(name, options)
    try:
        cfg: ModelConfig = TypeAdapter(ModelConfig).validate_python(block)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'model'}: {e['msg']}"
                             for e in exc.errors())
        raise UserError(f"invalid options for model '{name}': {problems}") from None
    if block["kind"] == "custom":
        get_model(name).resolved_options(block["options"])
    return cfg


def parse_option_args(pairs: Sequence[str]) -> dict[str, Any]:
    """`["depth=3", "activation=gelu"]` (repeated `--option` flags) -> `{"depth": 3, ...}`.

    Values are read as JSON (`3`, `0.5`, `true`, `"3"`), else kept as text (`gelu`).

    Raises:
        UserError: a pair without `=`, or an option given twice.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--option {pair!r} must look like NAME=VALUE, e.g. --option depth=3")
        if key in out:
            raise UserError(f"--option {key} is given twice: keep one")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out
