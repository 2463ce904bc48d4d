"""Muon on the hidden matrices and AdamW on the rest, as one optimizer object.

`torch.optim.Muon` (Jordan et al., 2024; torch >= 2.9) orthogonalises each 2-D update with a
Newton-Schulz iteration, so the update's singular values are ~1 whatever the gradient: its
spectral norm is set by the optimizer, and by its LR adjustment:

- "original": update x sqrt(max(1, fan_out / fan_in)): width-constant for a hidden matrix;
- "match_rms_adamw" (Liu et al., 2025, arXiv 2502.16982): update x 0.2 sqrt(max(fan_out,
  fan_in)), which grows like sqrt(m) with the width mult m.

The spectral condition (Yang, Simon & Bernstein, 2023, arXiv 2310.17813: |W| and |dW| of order
sqrt(fan_out / fan_in) in spectral norm; = 1 for a hidden matrix) then gives µP's hidden LR:
width-constant with "original", / sqrt(m) with "match_rms_adamw" (`mucore.parametrizations`,
`OptimizerFamily.MUON` / `MUON_RMS`; docs/optimizers.md has the derivation). Embeddings, the
readout, gains, biases and tensors of rank > 2 stay on AdamW with µP's Adam rules (TP5, Table
8), as `mucore.parametrizations.muon_owns` says.

`MuonAdamW` holds a torch Muon and a torch AdamW and shares their param-group dicts, so LR
schedulers (`mucore.relative_schedule`), `zero_grad` and the checker see one optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

# The param-group key that says which inner optimizer trains the group.
UPDATE_KEY = "update"


class MuonAdamW(torch.optim.Optimizer):
    """torch.optim.Muon on the groups marked `update: "muon"`, torch.optim.AdamW on the rest.

    Args:
        params: param groups as `mucore.param_groups(model, setup, "muon", lr)` makes them
            (each says `update`: "muon" or "adamw").
        lr: default LR of a group without its own.
        betas, eps: AdamW's.
        momentum, nesterov: Muon's (torch's defaults 0.95 and True).
        adjust_lr_fn: Muon's LR adjustment, "original" (None) or "match_rms_adamw"; the groups'
            LRs must follow its rule (`mucore.rule_family`).

    Raises:
        ValueError: a group without `update`, or Muon given a parameter that is not 2-D.
    """

    def __init__(self, params: Iterable[dict[str, Any]], lr: float = 1e-3, *,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 momentum: float = 0.95, nesterov: bool = True,
                 adjust_lr_fn: str | None = None) -> None:
        groups = list(params)
        if any(not isinstance(g, dict) or UPDATE_KEY not in g for g in groups):
            raise ValueError("MuonAdamW takes param groups that say which optimizer trains them "
                             "('update': 'muon' | 'adamw'): build it with mucore.build_optimizer"
                             "(model, setup, 'muon', lr) or pass mucore.param_groups(model, "
                             "setup, 'muon', lr)")
        muon_groups = [g for g in groups if g[UPDATE_KEY] == "muon"]
        adam_groups = [g for g in groups if g[UPDATE_KEY] != "muon"]
        self.adjust_lr_fn = adjust_lr_fn or "original"
        # Weight decay defaults to 0: mucore's groups set their own (coupled / independent).
        self.muon = (torch.optim.Muon(muon_groups, lr=lr, weight_decay=0.0, momentum=momentum,
                                      nesterov=nesterov, adjust_lr_fn=self.adjust_lr_fn)
                     if muon_groups else None)
        self.adamw = (torch.optim.AdamW(adam_groups, lr=lr, betas=betas, eps=eps,
                                        weight_decay=0.0) if adam_groups else None)
        # The inner optimizers hold these very dicts: a scheduler writing group["lr"] here
        # reaches them.
        super().__init__(self._inner_groups(), {"lr": lr})

    def _inner(self) -> list[torch.optim.Optimizer]:
        return [o for o in (self.muon, self.adamw) if o is not None]

    def _inner_groups(self) -> list[dict[str, Any]]:
        return [g for o in self._inner() for g in o.param_groups]

    @property  # type: ignore[override]
    def state(self) -> dict[Any, Any]:  # type: ignore[override]
        """Both inner optimizers' per-parameter state (read-only view)."""
        merged: dict[Any, Any] = {}
        for o in self._inner():
            merged.update(o.state)
        return merged

    @state.setter
    def state(self, _value: Any) -> None:
        """torch's constructor assigns an empty state; the inner optimizers keep the real one."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One Muon step on the hidden matrices and one AdamW step on the rest."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for o in self._inner():
            o.step()
        return loss

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """{"muon": ..., "adamw": ...}: each inner optimizer's own state dict."""
        return {"muon": None if self.muon is None else self.muon.state_dict(),
                "adamw": None if self.adamw is None else self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        """Load what `state_dict` saved; the groups stay shared with the inner optimizers.

        Raises:
            ValueError: a state dict of another shape (a plain optimizer's, say).
        """
        if set(state_dict) != {"muon", "adamw"}:
            raise ValueError("MuonAdamW.load_state_dict takes what MuonAdamW.state_dict "
                             "returned ({'muon': ..., 'adamw': ...})")
        for name in ("muon", "adamw"):
            inner = getattr(self, name)
            if (inner is None) != (state_dict[name] is None):
                raise ValueError(f"MuonAdamW.load_state_dict: the saved optimizer's '{name}' "
                                 "part does not match this one's parameters")
            if inner is not None:
                inner.load_state_dict(state_dict[name])
        # torch rebuilds group dicts on load: share the new ones again.
        self.param_groups = self._inner_groups()
