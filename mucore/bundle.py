"""HP bundles on the model side: load one, check it, apply it to the wide target model.

Tensor Programs V (Yang et al., 2022), Section 1 / Algorithm 1 (µTransfer): parametrize the
target model in µP, tune HPs on a narrow proxy, then copy them to the target zero-shot. A bundle
is the "copy" step made explicit: the parametrization and its rules version, the base shapes the
width multipliers are measured against, the global HPs (sigma, alpha_out, ...), the LR and the
optimizer settings, plus the per-parameter table the exporter computed at the target width.

    bundle = mucore.load_bundle("bundle.json")          # verifies the content hash
    model, optimizer = mucore.apply_bundle(bundle, my_target_model, seed=0)

The bundle is a plain dict here (the pydantic schema lives in `experiments.bundle.build`; mucore
imports torch only). YAML bundles are parsed by `experiments.bundle.build.read_bundle` and passed in
as a dict. The content hash is the sha256 of the canonical JSON (sorted keys, no spaces, UTF-8)
of every field but `content_hash`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import nn

from mucore.context import MuSetup
from mucore.hparams import HParams
from mucore.init import parametrize
from mucore.optim import build_optimizer
from mucore.optimizers import build_kwargs
from mucore.parametrizations import get_parametrization
from mucore.roles import BaseShapes, ShapeInferenceError, canonical_name
from mucore.summary import describe

# The bundle's `kind` and `schema_version`, defined once: the Literal types are what the
# pydantic schema (`experiments.bundle.build.HPBundle`) declares its fields as, the constants are their
# single values. Bump the schema version on any incompatible change of the bundle's fields.
BundleKind = Literal["mutransfer-hp-bundle"]
SchemaVersion = Literal[1]
BUNDLE_KIND: BundleKind = get_args(BundleKind)[0]
SCHEMA_VERSION: SchemaVersion = get_args(SchemaVersion)[0]
REQUIRED_KEYS = ("kind", "schema_version", "parametrization", "rules_version", "base_shapes",
                 "hparams", "lr", "optimizer", "target_width", "param_table", "content_hash")
# Relative tolerance when comparing the applied model's µP table with the bundle's.
TABLE_RTOL = 1e-9
# How many mismatches an error names before "...".
MAX_NAMED = 5


class BundleError(ValueError):
    """A bundle that cannot be used: unreadable, edited, or not made for this model."""


def canonical_json(data: Any) -> str:
    """The canonical JSON text the content hash is taken over (sorted keys, compact)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def content_hash(bundle: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of every field except `content_hash`."""
    body = {k: v for k, v in bundle.items() if k != "content_hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def load_bundle(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Read a bundle (a JSON file or an already parsed dict) and verify it.

    Args:
        source: path to a .json bundle, or the bundle as a dict (e.g. parsed from YAML).

    Returns:
        The bundle as a plain dict.

    Raises:
        BundleError: the file is missing or not JSON, it is not an HP bundle, its schema
            version is unknown, a required key is missing, or the content hash does not match
            (the file was edited after export).
    """
    if isinstance(source, Mapping):
        data = dict(source)
        where = "bundle"
    else:
        path = Path(source)
        where = f"bundle {path}"
        if path.suffix.lower() in (".yaml", ".yml"):
            raise BundleError(f"{where} is YAML: mucore reads JSON only; load it with "
                              "experiments.bundle.build.read_bundle or pass the parsed dict")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BundleError(f"{where} does not exist: check the path") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{where} is not readable JSON ({exc}): re-export it") from None
    if not isinstance(data, dict) or data.get("kind") != BUNDLE_KIND:
        raise BundleError(f"{where} is not an HP bundle (kind must be '{BUNDLE_KIND}'): export "
                          "one with `python -m experiments export SWEEP_ID --target-width N`")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise BundleError(f"{where} has schema_version {data.get('schema_version')!r}; this "
                          f"mucore reads version {SCHEMA_VERSION}: re-export it")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise BundleError(f"{where} lacks keys {missing}: re-export it")
    try:
        actual = content_hash(data)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{where} holds values that are not plain JSON ({exc}): re-export it") from None
    if actual != data["content_hash"]:
        raise BundleError(f"{where}: content hash mismatch: the file was edited after export; "
                          "re-export it")
    return data


def _check_names_and_shapes(bundle: Mapping[str, Any], model: nn.Module) -> None:
    """Refuse a model whose parameter names, shapes or roles differ from the bundle's target."""
    table = {row["name"]: row for row in bundle["param_table"]}
    have = {canonical_name(n): tuple(p.shape) for n, p in model.named_parameters()}
    extra = [n for n in have if n not in table]
    missing = [n for n in table if n not in have]
    if extra or missing:
        parts = []
        if extra:
            parts.append(f"the model has parameters the bundle lacks: {extra[:MAX_NAMED]}")
        if missing:
            parts.append(f"the bundle has parameters the model lacks: {missing[:MAX_NAMED]}")
        raise BundleError("model does not match the bundle: " + "; ".join(parts) + ". Build "
                          "the target with the same model family and knobs as the sweep")
    shapes = BaseShapes.from_dict(bundle["base_shapes"])
    bad = []
    for name, shape in have.items():
        want = tuple(table[name]["shape"])
        if shape != want:
            base = shapes.params[name].base_shape
            role_here = _implied_role(shape, base)
            role = table[name]["role"]
            extra_words = f" (role here {role_here}, in the bundle {role})" if role_here else ""
            bad.append(f"'{name}' has shape {list(shape)} but {list(want)} in the bundle"
                       f"{extra_words}")
    if bad:
        raise BundleError(f"model does not match the bundle's target (width "
                          f"{bundle['target_width']}): " + "; ".join(bad[:MAX_NAMED]) +
                          ". Build the model at the bundle's target width, or re-export the "
                          "bundle for this width")


def _implied_role(shape: tuple[int, ...], base_shape: tuple[int, ...]) -> str | None:
    """The role the model's shape implies against the base (dims that differ are width-like)."""
    if len(shape) != len(base_shape):
        return f"rank {len(shape)} instead of {len(base_shape)}"
    if len(shape) <= 1:
        return "vector"
    grown = {d for d, (a, b) in enumerate(zip(shape, base_shape, strict=True)) if a != b}
    if {0, 1} <= grown:
        return "hidden"
    if 0 in grown:
        return "input"
    if 1 in grown:
        return "output"
    return None


def _check_table(bundle: Mapping[str, Any], rows: list[Any]) -> None:
    """The applied model's describe table must equal the bundle's (roles, inits, LR mults)."""
    table = {row["name"]: row for row in bundle["param_table"]}
    bad = []
    for row in rows:
        want = table[row.name]
        if row.role != want["role"]:
            bad.append(f"'{row.name}' is {row.role} here but {want['role']} in the bundle")
            continue
        for key in ("init_std", "lr_mult", "forward_mult"):
            got, exp = float(getattr(row, key)), float(want[key])
            if not math.isclose(got, exp, rel_tol=TABLE_RTOL, abs_tol=1e-12):
                bad.append(f"'{row.name}' {key} {got:.6g} here but {exp:.6g} in the bundle")
    if bad:
        raise BundleError("model does not match the bundle: " + "; ".join(bad[:MAX_NAMED]) +
                          ". Build the target with the same model family as the sweep")


def apply_bundle(
    bundle: str | Path | Mapping[str, Any],
    model: nn.Module,
    seed: int = 0,
    *,
    reinit: bool = True,
) -> tuple[nn.Module, torch.optim.Optimizer]:
    """Parametrize `model` with the bundle's rules and HPs and build its optimizer (µTransfer).

    Steps: 1. load and verify the bundle; 2. refuse a model whose parameter names or shapes
    differ from the bundle's target (the mismatches are named); 3. `parametrize` it with the
    bundle's base shapes, parametrization and global HPs (re-initialising with `seed`);
    4. check the resulting per-parameter roles, init stds, forward and LR multipliers against
    the bundle's table; 5. build the optimizer with the bundle's LR and settings. An LR
    schedule, if the bundle names one (`optimizer.schedule`), is the caller's: wrap the
    optimizer with `mucore.relative_schedule` so the per-group multipliers survive.

    Args:
        bundle: a path to a JSON bundle, or a bundle dict (from `load_bundle` or YAML).
        model: the target model, built by the sweep's model family at the target width.
        seed: init seed (weights are drawn per parameter from (seed, name)).
        reinit: re-initialise the weights (True) or keep them and set multipliers only.

    Returns:
        (model, optimizer): the same model object, parametrized in place, and its optimizer.

    Raises:
        BundleError: the bundle is invalid or edited, its rules version differs from this
            mucore's, or the model does not match it.
    """
    data = load_bundle(bundle)
    try:
        rules = get_parametrization(data["parametrization"])
    except ValueError as exc:
        raise BundleError(f"bundle parametrization: {exc}") from None
    if rules.version != data["rules_version"]:
        raise BundleError(f"bundle was exported with rules '{data['rules_version']}' but this "
                          f"mucore has '{rules.version}' for {rules.name}: re-export the bundle "
                          "(and re-run the sweep if the rules changed)")
    _check_names_and_shapes(data, model)
    try:
        shapes = BaseShapes.from_dict(data["base_shapes"])
        hparams = HParams.from_dict(dict(data["hparams"]))
        setup = parametrize(model, shapes, rules, hparams, seed=seed, reinit=reinit)
    except ShapeInferenceError as exc:
        raise BundleError(f"model does not match the bundle's base shapes: {exc}") from None
    except (KeyError, ValueError) as exc:
        raise BundleError(f"cannot apply the bundle: {exc}") from None
    opt = dict(data["optimizer"])
    try:
        rows = describe(setup, str(opt.get("name", "adam")), opt)
    except ValueError as exc:
        raise BundleError(f"bundle optimizer settings: {exc}") from None
    _check_table(data, rows)
    return model, _bundle_optimizer(data, model, setup)


def _bundle_optimizer(
    bundle: Mapping[str, Any], model: nn.Module, setup: MuSetup
) -> torch.optim.Optimizer:
    """The optimizer the bundle names, with its LR and settings, over `setup`'s groups."""
    opt = dict(bundle["optimizer"])
    name = str(opt.get("name", "adam"))
    try:
        return build_optimizer(model, setup, name, float(bundle["lr"]), **build_kwargs(name, opt))
    except ValueError as exc:
        raise BundleError(f"bundle optimizer settings: {exc}") from None
