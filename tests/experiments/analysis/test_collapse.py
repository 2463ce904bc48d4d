"""The curve collapse check on synthetic training curves: curves that share one shape across
widths (up to seed noise) collapse (ratio near 1); curves whose shape changes with width do not
(ratio well above 1). Both directions, since a check that false-alarms on a healthy ladder is as
bad as one that misses a broken one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.analysis.collapse import collapse_check

WIDTHS = (64, 128, 256, 512)
STEPS = np.arange(10, 210, 10)


def frames(shape_by_width: dict[int, float], noise: float = 0.01) -> tuple[pd.DataFrame,
                                                                           pd.DataFrame]:
    """Runs at two LRs (the lower one best at every width) and their train-loss curves
    loss(t) = final * (1 + 3 * (1 - t)^k), k the width's shape, plus per-seed noise."""
    rng = np.random.default_rng(0)
    runs, metrics = [], []
    for w, k in shape_by_width.items():
        final = 0.5 * w**-0.3
        for x, penalty in ((-7.0, 0.0), (-5.0, 0.2)):
            for seed in (0, 1, 2):
                run_id = len(runs) + 1
                curve = (final + penalty) * (1 + 3 * (1 - STEPS / STEPS[-1]) ** k)
                curve = curve * (1 + rng.normal(0, noise, size=curve.size))
                runs.append({"run_id": run_id, "parametrization": "mup", "width": w,
                             "lr": 2.0**x, "log2_lr": x, "seed": seed, "state": "done",
                             "final_train_loss": float(curve[-1])})
                metrics += [{"run_id": run_id, "step": int(s), "name": "train_loss",
                             "value": float(v)} for s, v in zip(STEPS, curve, strict=True)]
    return pd.DataFrame(runs), pd.DataFrame(metrics)


def test_one_shape_collapses_and_a_shape_that_moves_with_width_does_not() -> None:
    runs, metrics = frames(dict.fromkeys(WIDTHS, 2.0))
    healthy = collapse_check(runs, metrics, "mup", l_inf=0.0)
    assert healthy.widths == list(WIDTHS) and healthy.ratio is not None
    assert healthy.ratio < 2.0, healthy
    runs, metrics = frames({64: 1.0, 128: 2.0, 256: 3.0, 512: 4.0})
    broken = collapse_check(runs, metrics, "mup", l_inf=0.0)
    assert broken.ratio is not None and broken.ratio > 5 * healthy.ratio, (broken, healthy)


def test_proxy_lr_reads_the_narrowest_widths_best_lr_and_one_seed_has_no_noise() -> None:
    runs, metrics = frames(dict.fromkeys(WIDTHS, 2.0))
    proxy = collapse_check(runs, metrics, "mup", l_inf=0.0, lr="proxy")
    assert proxy.lr == "proxy" and proxy.ratio is not None
    one = runs[runs["seed"] == 0]
    single = collapse_check(one, metrics, "mup", l_inf=0.0)
    assert single.spread is not None and single.ratio is None and "one seed" in (single.note or "")
    few = collapse_check(runs[runs["width"] == 64], metrics, "mup", l_inf=0.0)
    assert few.ratio is None and "fewer than two widths" in (few.note or "")
