"""The Export page's verification as a comparison, and its bundle helpers (pure)."""

from __future__ import annotations

import pytest

from app.export import bundles, verify_view
from experiments.service import VerifyPoint, VerifyReport


def point(param: str, k: int | None, log2_lr: float, seeds: list[float | None]) -> VerifyPoint:
    done = [s for s in seeds if s is not None]
    mean = sum(done) / len(done) if len(done) == len(seeds) else None
    return VerifyPoint(parametrization=param, offset_steps=k, log2_lr=log2_lr, loss=mean,
                       seed_losses=seeds, states=["done" if s is not None else "diverged" for s in seeds])


def report(sp_seeds: list[float | None] | None = (0.0060, 0.0061, 0.0062), **changes) -> VerifyReport:
    points = [point("mup", -1, -8.04, [0.0300, 0.0310, 0.0320]),
              point("mup", 0, -7.04, [0.0216, 0.0226, 0.0236]),
              point("mup", 1, -6.04, [None, 0.5, 0.6])]
    sp = None if sp_seeds is None else point("sp", None, -9.5, list(sp_seeds))
    data = dict(target_width=1024, parametrization="mup", transferred_log2_lr=-7.04, step=1.0,
                bracket=1, opt_log2_lr=-7.1, opt_refined=True, opt_at_edge=None,
                within_one_step=True, transferred_loss=0.0226, best_log2_lr=-7.04,
                best_loss=0.0226, loss_gap=0.0, points=points, sp_baseline=sp,
                sp_gap=None if sp is None or sp.loss is None else sp.loss - 0.0226,
                loss="final_train_loss",
                seeds=[0, 1, 2], steps=150, device="cpu", wall_s=60.0)
    return VerifyReport(**{**data, **changes})


def test_the_result_names_the_sp_baseline_and_the_mup_loss_with_the_gap_in_seed_noise():
    r = report()
    assert verify_view.bracket_sentence(r) == (
        "At width 1,024, µP at the transferred LR 2^-7.04 reached a train loss of 0.0226, "
        "the best of the bracket it was tried in.")
    # Seed noise: both points' seeds spread by 0.001 and 0.0001 (sample std): pooled
    # sqrt((1e-6 + 1e-8) / 2).
    noise = ((1e-6 + 1e-8) / 2) ** 0.5
    text = verify_view.baseline_sentence(r)
    assert text.startswith("The SP baseline at its extrapolated LR 2^-9.50 reached 0.0061 "
                           "against µP's 0.0226: SP is better than µP by 0.0165 (73% of the "
                           "larger loss), ")
    assert f"{0.0165 / noise:.1f}x the seed noise ({noise:.4f})" in text


def test_a_gap_within_the_seed_noise_is_said_to_be_within_it():
    r = report(sp_seeds=[0.0216, 0.0236, 0.0229])
    assert "less than 2x: with these seeds the two cannot be told apart" in verify_view.baseline_sentence(r)
    assert "µP is better than SP" in verify_view.baseline_sentence(report(sp_seeds=[0.03, 0.031, 0.032]))


def test_the_chart_lists_only_what_it_draws():
    fig = verify_view.comparison_figure(report())
    names = [t.name for t in fig.data]
    assert names == ["µP bracket", "µP at the transferred LR", "SP baseline"]
    assert list(fig.data[0].x) == [-8.04, -7.04]  # the diverged point is left out
    assert fig.data[2].error_y.array[0] == pytest.approx(0.0001)
    diverged = report(sp_seeds=[None, 0.1, 0.1])
    assert "SP baseline" not in [t.name for t in verify_view.comparison_figure(diverged).data]
    assert "diverged: µP is better" in verify_view.baseline_sentence(diverged)
    assert verify_view.forecast_of(report()) is None  # drawn once reports carry one


def test_export_defaults_within_8x_and_speaks_the_pages_words():
    trained = [64, 128, 256, 512]
    offered = [*trained, 1024, 2048, 4096, 8192]
    assert bundles.default_target(offered, trained) == 1024
    assert bundles.default_target([64, 128], [64, 128]) == 128
    assert bundles.default_target([64, 8192], [64]) == 64  # nothing within 8x but the trained
    assert bundles.default_target([32, 64, 128, 256], [32]) == 32  # one width: no width transfer
    assert bundles.default_target([], []) is None
    refusal = ("transfer is not confirmed for sweep 3: add widths or seeds to the sweep, or "
               "pass --force to export anyway (the bundle records forced: true)")
    assert "--force" not in bundles.web_words(refusal)
    assert 'tick "Export anyway" below' in bundles.web_words(refusal)
    assert "MUTRANSFER_MODEL_DIRS" in bundles.load_snippet("b.json", "tiny_mixer")
    assert "MUTRANSFER_MODEL_DIRS" not in bundles.load_snippet("b.json")
