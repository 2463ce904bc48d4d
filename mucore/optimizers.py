"""The optimizer registry: one entry per optimizer name, as torch-free data.

An entry says which µP rule family the optimizer follows (TP5, Yang et al., 2022, Table 8:
Adam-like entry-wise normalised updates and SGD scale their per-group LRs differently), which
torch class builds it and which of `mucore.build_optimizer`'s settings it takes. The builder,
the checker, the sweep spec, the CLI and the dashboard all read this table, so a new optimizer
is one `register_optimizer` call (a dotted class path: torch's own or the user's).

This module imports no torch: the spec and form layers validate optimizer names without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mucore.parametrizations import MUON_FAMILIES, OptimizerFamily

# The `build_optimizer` settings an entry may pass on to its torch class.
OPTIONS = ("betas", "eps", "momentum", "nesterov", "adjust_lr_fn")
# torch.optim.Muon's LR adjustments (its `adjust_lr_fn`): "original" (Keller Jordan's, the
# default) scales the update by sqrt(max(1, fan_out / fan_in)); "match_rms_adamw" (Moonshot's,
# Liu et al., 2025, arXiv 2502.16982) by 0.2 sqrt(max(fan_out, fan_in)).
MUON_ADJUSTMENTS = ("original", "match_rms_adamw")


@dataclass(frozen=True)
class OptimizerEntry:
    """One registered optimizer.

    Attributes:
        name: registry key, as written in specs, bundles and `--optimizer` ("adamw").
        family: the µP rule family of its per-group LRs.
        torch_class: dotted path of the class ("torch.optim.AdamW"), imported when built;
            its constructor takes the param groups and `lr=` plus `options`.
        options: the `build_optimizer` settings passed to the class (a subset of `OPTIONS`).
        label: display name for pages; empty: the name.
    """

    name: str
    family: OptimizerFamily
    torch_class: str
    options: tuple[str, ...] = ()
    label: str = ""

    def __post_init__(self) -> None:
        unknown = [o for o in self.options if o not in OPTIONS]
        if unknown:
            raise ValueError(f"optimizer '{self.name}': unknown options {unknown}; "
                             f"choose from {list(OPTIONS)}")
        if "." not in self.torch_class:
            raise ValueError(f"optimizer '{self.name}': torch_class must be a dotted path such "
                             f"as 'torch.optim.Adam', got {self.torch_class!r}")

    @property
    def display_label(self) -> str:
        """The label, or the name when the entry has none."""
        return self.label or self.name


_ADAM_OPTIONS = ("betas", "eps")
_REGISTRY: dict[str, OptimizerEntry] = {}


def register_optimizer(entry: OptimizerEntry) -> OptimizerEntry:
    """Add (or replace) an optimizer under `entry.name`; returns the entry."""
    _REGISTRY[entry.name] = entry
    return entry


def optimizer_names() -> list[str]:
    """The registered optimizer names, in registration order (the default first)."""
    return list(_REGISTRY)


def get_optimizer(name: str) -> OptimizerEntry:
    """The entry registered under `name`.

    Raises:
        ValueError: unknown name (the message lists the registered ones).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown optimizer '{name}': choose one of "
                         f"{', '.join(optimizer_names())}") from None


def optimizer_family(name: str) -> OptimizerFamily:
    """The µP rule family of an optimizer name (with its default settings: for `muon`, the
    "original" adjustment; `rule_family` reads the settings).

    Raises:
        ValueError: unknown name.
    """
    return get_optimizer(name).family


def check_adjustment(adjust_lr_fn: str | None) -> str:
    """Muon's adjustment, "original" when None.

    Raises:
        ValueError: not one of `MUON_ADJUSTMENTS`.
    """
    adjust = adjust_lr_fn or "original"
    if adjust not in MUON_ADJUSTMENTS:
        raise ValueError(f"adjust_lr_fn must be one of {', '.join(MUON_ADJUSTMENTS)}, got "
                         f"{adjust_lr_fn!r}")
    return adjust


def rule_family(name: str, adjust_lr_fn: str | None = None,
                hidden_lr_correction: bool = True) -> OptimizerFamily:
    """The rule family an optimizer trains with, given Muon's settings.

    Muon with "match_rms_adamw" scales its update by 0.2 sqrt(max(fan_out, fan_in)), so a
    hidden matrix's update grows like sqrt(m) in spectral norm and µP divides the hidden LR by
    sqrt(m) (`OptimizerFamily.MUON_RMS`). `hidden_lr_correction=False` leaves that correction
    out: a deliberately wrong setup, for tests and the doctor to show what it breaks.

    Raises:
        ValueError: unknown name or adjustment, or Muon settings on a non-Muon optimizer.
    """
    family = get_optimizer(name).family
    if family not in MUON_FAMILIES:
        if adjust_lr_fn not in (None, "original") or not hidden_lr_correction:
            raise ValueError(f"adjust_lr_fn and hidden_lr_correction are Muon settings; "
                             f"optimizer '{name}' takes neither: drop them or use muon")
        return family
    adjust = check_adjustment(adjust_lr_fn)
    if adjust == "match_rms_adamw" and hidden_lr_correction:
        return OptimizerFamily.MUON_RMS
    return OptimizerFamily.MUON


def settings_family(name: str, settings: Mapping[str, Any]) -> OptimizerFamily:
    """`rule_family` of an optimizer block (a spec's or a bundle's `optimizer` mapping, or
    `build_optimizer`'s keyword arguments): reads `adjust_lr_fn` and `hidden_lr_correction`."""
    return rule_family(name, settings.get("adjust_lr_fn"),
                       bool(settings.get("hidden_lr_correction", True)))


def build_kwargs(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """`mucore.build_optimizer` keyword arguments from an optimizer block (a spec's or a
    bundle's `optimizer` mapping). Muon's momentum is `muon_momentum` (default 0.95, torch's),
    since `momentum` is SGD's (default 0); the Muon settings reach only Muon.
    """
    family = get_optimizer(name).family
    muon = family in MUON_FAMILIES
    momentum = settings.get("muon_momentum", 0.95) if muon else settings.get("momentum", 0.0)
    out: dict[str, Any] = {
        "betas": tuple(settings.get("betas", (0.9, 0.999))),
        "eps": float(settings.get("eps", 1e-8)),
        "momentum": float(momentum),
        "weight_decay": float(settings.get("weight_decay", 0.0)),
        "wd_mode": settings.get("wd_mode", "coupled"),
        "scale_eps": bool(settings.get("scale_eps", False)),
    }
    if muon:
        out["adjust_lr_fn"] = settings.get("adjust_lr_fn")
        out["hidden_lr_correction"] = bool(settings.get("hidden_lr_correction", True))
    return out


register_optimizer(OptimizerEntry("adam", OptimizerFamily.ADAM, "torch.optim.Adam",
                                  _ADAM_OPTIONS, "Adam"))
register_optimizer(OptimizerEntry("adamw", OptimizerFamily.ADAM, "torch.optim.AdamW",
                                  _ADAM_OPTIONS, "AdamW"))
register_optimizer(OptimizerEntry("sgd", OptimizerFamily.SGD, "torch.optim.SGD",
                                  ("momentum", "nesterov"), "SGD"))
# torch.optim.Muon on the 2-D hidden weights, AdamW on the rest, as one optimizer object
# (`mucore.muon.MuonAdamW`); its hidden LR rule depends on `adjust_lr_fn` (`rule_family`).
register_optimizer(OptimizerEntry("muon", OptimizerFamily.MUON, "mucore.muon.MuonAdamW",
                                  ("betas", "eps", "momentum", "nesterov", "adjust_lr_fn"),
                                  "Muon (+AdamW)"))
# Lion (Chen et al., 2023): a sign update, entry-wise +-1 like Adam's, so Adam's table.
register_optimizer(OptimizerEntry("lion", OptimizerFamily.ADAM, "mucore.lion.Lion",
                                  ("betas",), "Lion"))
