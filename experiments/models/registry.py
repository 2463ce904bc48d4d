"""Registered models: a user's own model family, swept, charted and exported like a zoo model.

A model registers in one of two ways (the contract users write files against):

1. A file `NAME.py` in a folder listed in the setting `MUTRANSFER_MODEL_DIRS`
   (os.pathsep-separated) that defines::

       def build(width: int, *, task, depth: int = 2, act: Literal["relu", "gelu"] = "relu"):
           ...                                  # -> torch.nn.Module, same names at every width

   Files whose name starts with `_` are skipped (helpers). The file needs only torch and
   mucore; use `mucore.Readout` for the output layer.
2. An installed package's entry point in the group `mutransfer.models`, e.g. in its
   pyproject.toml: `[project.entry-points."mutransfer.models"] NAME = "package.module:build"`.

`task` is an `experiments.tasks.config.TaskInfo` (input shape, number of outputs, sequence
length). The options are `build`'s other keyword-only parameters: each needs a default, and
its annotation (int, float, bool, str, or a Literal of them; none: the default's type) types
it. A spec names the model as `model: {kind: custom, name: NAME, options: {...}}`.

Listing names imports nothing; a model's code is imported on first use, once per process (and
again if its file changed). Child processes (runner, workers, Ray tasks) resolve names the same
way: they read the same setting (`Settings.child_env` hands it to them explicitly).
Everything here raises `UserError` with a message that names the file, line or option to fix.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from experiments.errors import UserError
from experiments.models.configs import CUSTOM_NAME_PATTERN, ModelConfig
from experiments.settings import get_settings

ENTRY_POINT_GROUP = "mutransfer.models"
BUILD_FUNCTION = "build"
# Option types a form can draw and a YAML file can hold.
SCALAR_TYPES: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "str"}
_EXAMPLE = "def build(width: int, *, task, depth: int = 2) -> torch.nn.Module"


@dataclass(frozen=True)
class ModelOption:
    """One option of a model: a registered model's keyword option, or a zoo config field.

    Attributes:
        name: the keyword (`model.options.<name>` in a spec; a field of a zoo config).
        type: "int", "float", "bool", "str" or "literal" (zoo fields may read "int | None").
        default: the value used when the spec leaves it out.
        choices: the allowed values of a "literal" option, else None.
        help: what it does (the `Args:` entry of `build`'s docstring, or the field's doc).
    """

    name: str
    type: str
    default: Any
    choices: tuple[Any, ...] | None = None
    help: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: name, type, default (and choices, help when known)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "default": self.default}
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.help:
            out["help"] = self.help
        return out


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model, imported and checked against the contract.

    Attributes:
        name: the registered name.
        source: where it comes from: the file's path, or "entry point module:attr (dist)".
        build: the user's `build(width, *, task, **options)`.
        options: its keyword options, in signature order.
        file: the source file of `build` (for error lines), when known.
        description: the first line of `build`'s (or the module's) docstring.
    """

    name: str
    source: str
    build: Callable[..., Any]
    options: tuple[ModelOption, ...]
    file: Path | None = None
    description: str = ""
    _options_model: type[BaseModel] | None = field(default=None, repr=False, compare=False)

    def options_model(self) -> type[BaseModel]:
        """A strict pydantic model of the options (unknown keys forbidden)."""
        assert self._options_model is not None  # set by _register
        return self._options_model

    def option_problems(self, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(option name, message) for every unknown or mistyped option; empty when valid."""
        try:
            self.options_model().model_validate(dict(options))
        except ValidationError as exc:
            return [_option_problem(self, e) for e in exc.errors()]
        return []

    def resolved_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options with defaults filled, validated.

        Raises:
            UserError: unknown or mistyped options, each as `model.options.NAME: message`.
        """
        problems = self.option_problems(options)
        if problems:
            raise UserError("; ".join(f"model.options.{k}: {msg}" if k else msg
                                      for k, msg in problems))
        return self.options_model().model_validate(dict(options)).model_dump()


def _option_problem(model: RegisteredModel, err: Any) -> tuple[str, str]:
    name = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        known = ", ".join(o.name for o in model.options) or "none"
        return name, (f"unknown option of model '{model.name}': its options are {known} "
                      f"({model.source})")
    option = next((o for o in model.options if o.name == name), None)
    if option is None or option.choices is not None:  # the message lists the choices
        return name, f"{err['msg']}, got {err['input']!r}"
    return name, f"{err['msg']}, got {err['input']!r}: option '{name}' takes {option.type}"


# --- Discovery (no imports) ----------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    """A registered name and where its code is, before anything is imported."""

    name: str
    source: str
    path: Path | None = None
    entry_point: EntryPoint | None = None


def model_dirs() -> list[Path]:
    """The folders of the `MUTRANSFER_MODEL_DIRS` setting (absolute)."""
    return list(get_settings().model_dirs)


def _file_candidates() -> list[_Candidate]:
    out = []
    for folder in model_dirs():
        if not folder.is_dir():
            raise UserError(f"model folder {folder} (setting MUTRANSFER_MODEL_DIRS) does not exist "
                            "or is not a folder: create it or fix the setting")
        for path in sorted(folder.glob("*.py")):
            name = path.stem
            if name.startswith("_") or not re.match(CUSTOM_NAME_PATTERN, name):
                continue
            out.append(_Candidate(name, str(path), path=path))
    return out


def _entry_point_candidates() -> list[_Candidate]:
    out = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        owner = f" ({dist.name} {dist.version})" if dist is not None else ""
        if not re.match(CUSTOM_NAME_PATTERN, ep.name):
            raise UserError(f"entry point '{ep.name}' in group {ENTRY_POINT_GROUP}{owner} is not a "
                            "usable model name: use letters, digits, '_', '-' and '.'")
        out.append(_Candidate(ep.name, f"entry point {ep.value}{owner}", entry_point=ep))
    return out


def zoo_classes() -> dict[str, type[BaseModel]]:
    """{kind: config class} of the zoo models (every member of `ModelConfig` but custom):
    the names a registered model may not take."""
    members = get_args(get_args(ModelConfig)[0])
    out = {}
    for cls in members:
        kind = get_args(cls.model_fields["kind"].annotation)[0]
        if kind != "custom":
            out[kind] = cls
    return out


def _zoo_kinds() -> set[str]:
    return set(zoo_classes())


def discover() -> dict[str, _Candidate]:
    """Every registered name and its source, without importing any model code.

    Raises:
        UserError: a model folder is missing, or two sources (or a zoo model) claim one name.
    """
    zoo = _zoo_kinds()
    found: dict[str, _Candidate] = {}
    for cand in [*_file_candidates(), *_entry_point_candidates()]:
        if cand.name in zoo:
            raise UserError(f"registered model '{cand.name}' ({cand.source}) has the name of a zoo "
                            f"model: rename it (zoo models: {', '.join(sorted(zoo))})")
        if cand.name in found:
            raise UserError(f"two registered models are named '{cand.name}': "
                            f"{found[cand.name].source} and {cand.source}; rename one")
        found[cand.name] = cand
    return found


def registered_names() -> list[str]:
    """The registered model names, sorted (imports no model code)."""
    return sorted(discover())


# --- Loading ---------------------------------------------------------------------------------

# (source, mtime_ns, size) -> model: a file is imported again only when it changed.
_LOADED: dict[tuple[str, int, int], RegisteredModel] = {}


def get_model(name: str) -> RegisteredModel:
    """The registered model `name`, imported and checked against the contract.

    Raises:
        UserError: unknown name (the message lists the registered ones), a file that fails to
            import (file, line, exception), or a `build` that does not fit the contract.
    """
    found = discover()
    cand = found.get(name)
    if cand is None:
        have = ", ".join(sorted(found)) or "none"
        where = ", ".join(str(d) for d in model_dirs()) or "no folders set"
        raise UserError(f"unknown registered model '{name}': registered models are {have} "
                        f"(MUTRANSFER_MODEL_DIRS: {where}; entry points group "
                        f"{ENTRY_POINT_GROUP}); add {name}.py to a model folder or fix the name")
    if cand.path is not None:
        stat = cand.path.stat()
        key = (cand.source, stat.st_mtime_ns, stat.st_size)
    else:
        key = (cand.source, 0, 0)
    model = _LOADED.get(key)
    if model is None:
        build = _load_file(cand) if cand.path is not None else _load_entry_point(cand)
        model = _register(cand, build)
        _LOADED[key] = model
    return model


def registered_models() -> list[RegisteredModel]:
    """Every registered model, imported and checked, by name.

    Raises:
        UserError: as `get_model`, for the first model that fails.
    """
    return [get_model(name) for name in registered_names()]


def blame(exc: BaseException, file: Path | None) -> str:
    """"FILE, line N" of the deepest frame of `exc` in the user's `file` (or, when unknown,
    outside this engine and the import machinery): where the user should look."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{exc.filename}, line {exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    engine = str(Path(__file__).resolve().parents[1])
    if file is not None:
        mine = [f for f in frames if Path(f.filename) == file]
    else:
        mine = [f for f in frames if not f.filename.startswith(("<", engine))]
    if not mine:
        return str(file) if file is not None else "its code"
    return f"{mine[-1].filename}, line {mine[-1].lineno}"


def _load_file(cand: _Candidate) -> Any:
    assert cand.path is not None
    module_name = "mutransfer_model_" + re.sub(r"\W", "_", cand.name)
    spec = importlib.util.spec_from_file_location(module_name, cand.path)
    if spec is None or spec.loader is None:
        raise UserError(f"model file {cand.path} cannot be imported: name it NAME.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise UserError(f"model file {cand.path} failed to import ({blame(exc, cand.path)}): "
                        f"{type(exc).__name__}: {exc}. Fix the file; it may import only torch, "
                        "mucore and the standard library") from exc
    build = getattr(module, BUILD_FUNCTION, None)
    if build is None:
        raise UserError(f"model file {cand.path} defines no `{BUILD_FUNCTION}` function: add "
                        f"`{_EXAMPLE}` (files starting with '_' are skipped as helpers)")
    return build


def _load_entry_point(cand: _Candidate) -> Any:
    assert cand.entry_point is not None
    try:
        return cand.entry_point.load()
    except Exception as exc:
        raise UserError(f"registered model '{cand.name}' ({cand.source}) failed to import "
                        f"({blame(exc, None)}): {type(exc).__name__}: {exc}. Fix the package or "
                        "reinstall it") from exc


def _register(cand: _Candidate, build: Any) -> RegisteredModel:
    if not callable(build):
        raise UserError(f"registered model '{cand.name}' ({cand.source}): `{BUILD_FUNCTION}` is "
                        f"a {type(build).__name__}, not a function: define `{_EXAMPLE}`")
    try:
        file = Path(inspect.getsourcefile(build) or "")
    except TypeError:
        file = Path()
    options = _options_of(cand, build)
    doc = inspect.getdoc(build) or inspect.getdoc(sys.modules.get(build.__module__)) or ""
    fields: dict[str, Any] = {o.name: (_python_type(o), o.default) for o in options}
    try:
        options_model = create_model(  # type: ignore[call-overload]
            f"{cand.name} options",
            __config__=ConfigDict(extra="forbid", strict=True, protected_namespaces=()),
            **fields,
        )
    except (NameError, TypeError, ValueError) as exc:
        raise UserError(f"registered model '{cand.name}' ({cand.source}): its options cannot be "
                        f"used ({exc}): rename them") from None
    return RegisteredModel(
        name=cand.name, source=cand.source, build=build, options=options,
        file=file if file.name else None, description=doc.split("\n", 1)[0].strip(),
        _options_model=options_model,
    )


# --- The signature contract ------------------------------------------------------------------


def _options_of(cand: _Candidate, build: Callable[..., Any]) -> tuple[ModelOption, ...]:
    """The keyword options of `build`, checked against the contract (see the module doc)."""
    where = f"registered model '{cand.name}' ({cand.source})"
    try:
        params = list(inspect.signature(build).parameters.values())
    except (TypeError, ValueError):
        raise UserError(f"{where}: `{BUILD_FUNCTION}` has no signature: define `{_EXAMPLE}`") \
            from None
    P = inspect.Parameter
    varargs = [p.name for p in params if p.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD)]
    if varargs:
        raise UserError(f"{where}: `{BUILD_FUNCTION}` takes *{varargs[0]}: list each option as a "
                        f"keyword-only parameter with a default, e.g. `{_EXAMPLE}`")
    positional = [p for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    keyword = {p.name: p for p in params if p.kind is P.KEYWORD_ONLY}
    if len(positional) != 1 or "task" not in keyword:
        raise UserError(f"{where}: `{BUILD_FUNCTION}` must take the width as its one positional "
                        f"parameter and the task as a keyword-only one: `{_EXAMPLE}`")
    docs = _arg_docs(inspect.getdoc(build) or "")
    return tuple(_option(where, p, build, docs.get(p.name))
                 for name, p in keyword.items() if name != "task")


def _option(where: str, p: inspect.Parameter, build: Callable[..., Any],
            help_text: str | None) -> ModelOption:
    if p.default is inspect.Parameter.empty:
        raise UserError(f"{where}: option '{p.name}' has no default: give it one, e.g. "
                        f"`{p.name}: int = 2` (a sweep must be able to leave it out)")
    annotation = p.annotation
    if annotation is inspect.Parameter.empty:
        annotation = type(p.default)
    elif isinstance(annotation, str):
        try:
            # The user's own annotation, evaluated in their module (postponed annotations).
            annotation = eval(annotation, getattr(build, "__globals__", {}))
        except Exception as exc:
            raise UserError(f"{where}: the annotation of option '{p.name}' ({p.annotation}) "
                            f"cannot be evaluated: {exc}; import what it names") from None
    kind, choices = _option_type(where, p.name, annotation)
    option = ModelOption(p.name, kind, p.default, choices, help_text)
    if not _value_fits(option, p.default):
        want = f"one of {choices!r}" if choices else f"of type {kind}"
        raise UserError(f"{where}: option '{p.name}' defaults to {p.default!r}, which is not "
                        f"{want}: fix the default")
    return option


def _option_type(where: str, name: str, annotation: Any) -> tuple[str, tuple[Any, ...] | None]:
    if annotation in SCALAR_TYPES:
        return SCALAR_TYPES[annotation], None
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        if choices and all(type(c) in SCALAR_TYPES for c in choices):
            return "literal", choices
    raise UserError(f"{where}: option '{name}' has type {annotation!r}: options must be int, "
                    "float, bool, str or a Literal of them (e.g. Literal['relu', 'gelu'])")


def _value_fits(option: ModelOption, value: Any) -> bool:
    if option.choices is not None:
        return any(value == c and type(value) is type(c) for c in option.choices)
    if option.type == "float":
        return type(value) in (int, float)
    return type(value).__name__ == option.type


def _python_type(option: ModelOption) -> Any:
    if option.choices is not None:
        return Literal[option.choices]  # Literal[(a, b)] is Literal[a, b]
    return {v: k for k, v in SCALAR_TYPES.items()}[option.type]


def _arg_docs(doc: str) -> dict[str, str]:
    """Entries of a Google-style "Args:" section: the form's help texts."""
    match = re.search(r"^Args:\s*$(.*?)(?:^\S|\Z)", doc, flags=re.M | re.S)
    out: dict[str, str] = {}
    current = None
    for line in (match.group(1) if match else "").splitlines():
        entry = re.match(r"^\s{2,8}(\w+)(?: \([^)]*\))?:\s*(.*)$", line)
        if entry:
            current = entry.group(1)
            out[current] = entry.group(2).strip()
        elif current and line.strip():
            out[current] += " " + line.strip()
    return out
