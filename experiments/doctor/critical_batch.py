"""The critical-batch warning: a proxy trained above its gradient noise scale.

B_simple = tr(Sigma) / |G|^2 (McCandlish et al., 2018, appendix A; measured by
`experiments.doctor.noise_scale`) is the batch size past which a larger batch stops buying
proportionally fewer steps; above it the SDE square-root rule for Adam stops holding (Malladi
et al., 2022; Li et al., 2024). Torch-free, so the dashboard words it without importing torch.
"""

from __future__ import annotations

import math


def noise_scale_warning(batch_size: int, b_simple: float) -> str | None:
    """A warning when the proxy's batch is above the measured noise scale, else None."""
    if not math.isfinite(b_simple) or b_simple <= 0 or batch_size <= b_simple:
        return None
    return (f"batch size {batch_size} is above the gradient noise scale B_simple ~ "
            f"{b_simple:.3g}: past it larger batches stop paying off and the square-root "
            "(sqrt) batch rule stops holding; measure transfer below it or use a fitted "
            "power rule")
