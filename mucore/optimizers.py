"""The optimizer registry: one entry per optimizer name, as torch-free data.

An entry says which µP rule family the optimizer follows (TP5, Yang et al., 2022, Table 8:
Adam-like entry-wise normalised updates and SGD scale their per-group LRs differently), which
torch class builds it and which of `mucore.build_optimizer`'s settings it takes. The builder,
the checker, the sweep spec, the CLI and the dashboard all read this table, so a new optimizer
is one `register_optimizer` call (a dotted class path: torch's own or the user's).

This module imports no torch: the spec and form layers validate optimizer names without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mucore.parametrizations import OptimizerFamily

# The `build_optimizer` settings an entry may pass on to its torch class.
OPTIONS = ("betas", "eps", "momentum", "nesterov")


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
    """The µP rule family of an optimizer name.

    Raises:
        ValueError: unknown name.
    """
    return get_optimizer(name).family


register_optimizer(OptimizerEntry("adam", OptimizerFamily.ADAM, "torch.optim.Adam",
                                  _ADAM_OPTIONS, "Adam"))
register_optimizer(OptimizerEntry("adamw", OptimizerFamily.ADAM, "torch.optim.AdamW",
                                  _ADAM_OPTIONS, "AdamW"))
register_optimizer(OptimizerEntry("sgd", OptimizerFamily.SGD, "torch.optim.SGD",
                                  ("momentum", "nesterov"), "SGD"))
