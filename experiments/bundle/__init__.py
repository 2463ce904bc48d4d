"""HP bundles: export the transferred hyperparameters of a sweep (`build`), the depth target
(`depth`) and the verification run at the target (`verify`).

    bundle = export_bundle(store, sweep_id, target_width=2048)
    write_bundle(bundle, "bundle.json"); bundle = read_bundle("bundle.json")
    result = verify_bundle(bundle, ...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.lazy import lazy_exports, type_checking_exports

if TYPE_CHECKING:  # static checkers see the eager imports; run time loads on first use
    from experiments.bundle.build import (
        HPBundle,
        apply,
        build_bundle,
        export_bundle,
        read_bundle,
        target_model,
        write_bundle,
    )
    from experiments.bundle.verify import verify_bundle

_EXPORTS = type_checking_exports(__name__, globals())
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
