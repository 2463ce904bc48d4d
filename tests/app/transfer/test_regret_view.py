"""The Transfer page's regret panel, pure parts: sentence, frame, table and chart from a report.

The report comes from the real analysis of exact parabolas (loss = 0.1 + 0.05 (log2 LR - opt)^2),
so the regrets are known: µP's optimum moves 0.2 log2 from width 64 to 512 (0.05 * 0.04 / 0.1
= 2%), SP's moves 2 log2 (0.05 * 4 / 0.1 = 200%).
"""

from __future__ import annotations

import pandas as pd
import pytest

from app.transfer.regret_view import (
    fmt_pct,
    regret_figure,
    regret_frame,
    regret_sentence,
    regret_table,
)
from experiments.analysis import analyze

GRID = [float(x) for x in range(-12, -2)]


def parabolas(optima: dict[str, dict[int, float]], grid: list[float] = GRID) -> pd.DataFrame:
    rows = [{"width": w, "parametrization": p, "lr": 2.0**x, "log2_lr": x, "seed": 0,
             "state": "done", "final_train_loss": 0.1 + 0.05 * (x - opt) ** 2,
             "final_val_loss": 0.1 + 0.05 * (x - opt) ** 2}
            for p, by_width in optima.items() for w, opt in by_width.items() for x in grid]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def report():
    return analyze(parabolas({"sp": {64: -7.0, 128: -8.0, 512: -9.0},
                              "mup": {64: -7.0, 128: -7.1, 512: -7.2}}))


def test_sentence_quotes_the_widest_width_under_both(report) -> None:
    assert regret_sentence(report) == (
        "Copying the LR tuned at width 64 costs 2.0% (+0.002) loss at width 512 under µP, "
        "200% (+0.2) under SP (standard).")
    assert regret_sentence(None) is None


def test_frame_and_table_rows(report) -> None:
    frame = regret_frame(report)
    assert len(frame) == 6 and set(frame["parametrization"]) == {"sp", "mup"}
    mup512 = frame[(frame["parametrization"] == "mup") & (frame["width"] == 512)].iloc[0]
    assert mup512["rel"] == pytest.approx(0.02) and mup512["abs"] == pytest.approx(0.002)
    table = regret_table(frame)
    assert list(table["regret"][frame["parametrization"] == "mup"]) == ["0%", "0.5%", "2.0%"]
    assert (table["95% interval"] == "—").all()  # one seed: no interval
    assert regret_frame(None).empty


def test_out_of_range_row_shows_its_note() -> None:
    frame = pd.concat([parabolas({"mup": {64: -7.0}}),
                       parabolas({"mup": {256: -3.0}}, grid=[-5.0, -4.0, -3.0, -2.0, -1.0])])
    table = regret_table(regret_frame(analyze(frame)))
    row = table[table["width"] == 256].iloc[0]
    assert row["regret"] == "—" and "outside the LRs trained at width 256" in row["note"]


def test_sentence_in_loss_units_when_the_best_loss_is_not_positive() -> None:
    # Loss = 0.05 (x - opt)^2 - 0.01: µP's regret at width 128 is 0.05 * 0.1^2 = 0.0005 loss.
    frame = parabolas({"mup": {64: -7.0, 128: -7.1}})
    frame["final_train_loss"] -= 0.11
    assert regret_sentence(analyze(frame)) == (
        "Copying the LR tuned at width 64 costs +0.0005 loss at width 128 under µP.")


def test_sentence_says_when_the_cost_is_within_the_seed_noise() -> None:
    # Two seeds 0.004 apart on a 0.1 bowl: µP's 0.5% cost at width 128 is below the seeds'
    # spread there, and the sentence says so; one seed (no noise estimate) says nothing more.
    one = parabolas({"mup": {64: -7.0, 128: -7.1}})
    two = pd.concat([one, one.assign(seed=1, final_train_loss=one["final_train_loss"] + 0.004)])
    report = analyze(two)
    row = report.regret["mup"].at(128)
    assert row is not None and row.rel is not None and row.noise_rel is not None
    assert row.rel < row.noise_rel
    sentence = regret_sentence(report)
    assert sentence is not None and sentence.endswith(
        f"Under µP that is within the seed-to-seed noise of the loss there "
        f"({fmt_pct(row.noise_rel)}).")
    assert "seed-to-seed" not in (regret_sentence(analyze(one)) or "")


def test_figure_drops_the_proxy_and_draws_the_tolerance(report) -> None:
    fig = regret_figure(regret_frame(report), tolerance=0.01)
    bars = {t.name: t for t in fig.data}
    assert set(bars) == {"SP (standard)", "µP"}
    assert list(bars["µP"].x) == ["128", "512"]  # width 64 is the proxy: regret 0, left out
    assert list(bars["µP"].y) == pytest.approx([0.5, 2.0])
    assert fig.layout.yaxis.type == "log"
    assert any(s.y0 == pytest.approx(1.0) for s in fig.layout.shapes)


def test_fmt_pct() -> None:
    assert [fmt_pct(v) for v in (0.0021, 0.052, 0.14, 4.03)] == ["0.21%", "5.2%", "14%", "403%"]


def test_figure_labels_the_seed_noise_floor_when_it_set_the_tolerance(report) -> None:
    fig = regret_figure(regret_frame(report), tolerance=0.56, floor=True)
    labels = [a.text for a in fig.layout.annotations]
    assert "tolerance 56% (seed-noise floor)" in labels, labels
