"""`analyze --json --target-width N`: the forecast, the loss used (`--loss train|val`, validation
by default where the task has one) and the curve collapse reach the JSON; a bad `--loss` exits 2.

One tiny sweep (synthetic task, four widths, two seeds, two LRs, a few steps), run in-process
through `experiments.cli.main`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from experiments.cli import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("fc-cli")
    spec = tmp / "tiny.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "tiny-forecast", "model": {"kind": "mlp", "depth": 2},
        "task": {"name": "synthetic"}, "widths": [16, 32, 64, 128], "base_width": 16,
        "parametrizations": ["sp", "mup"], "lrs": [2.0**-8, 2.0**-6], "seeds": [0, 1],
        "steps": 12, "batch_size": 16, "log_every": 3, "device": "cpu",
    }))
    db = tmp / "store.duckdb"
    assert main(["sweep", "run", str(spec), "--db", str(db)]) == 0
    return db, "1"  # the first sweep of a fresh store


def analyze_json(db: Path, sweep_id: str, out: Path, *extra: str) -> dict:
    assert main(["analyze", sweep_id, "--db", str(db), "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_forecast_loss_used_and_collapse(tiny: tuple[Path, str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    db, sid = tiny
    doc = analyze_json(db, sid, tmp_path / "a.json", "--target-width", "1024")
    assert doc["loss_used"] == "val" and doc["loss"] == "final_val_loss"
    assert set(doc["forecast"]) == {"sp", "mup"}
    for f in doc["forecast"].values():
        if "refused" in f:  # 12 steps need not give falling losses: then it says why
            assert f["refused"] and "points" in f
        else:
            assert {"form", "params", "at", "fit_quality"} <= set(f)
            assert f["at"][0]["width"] == 1024
            assert f["at"][0]["ci_low"] <= f["at"][0]["loss"] <= f["at"][0]["ci_high"]
    for param in ("sp", "mup"):
        for lr in ("own", "proxy"):
            c = doc["collapse"][param][lr]
            assert c["widths"] == [16, 32, 64, 128] and c["ratio"] is not None and c["ratio"] > 0
    out = capsys.readouterr().out
    assert "loss: validation loss: the task has a validation split" in out
    assert "curve collapse" in out
    train = analyze_json(db, sid, tmp_path / "t.json", "--loss", "train")
    assert train["loss_used"] == "train" and train["loss"] == "final_train_loss"
    assert train["forecast"]["mup"].get("at", []) == []  # no target width: no forecast row
    old = analyze_json(db, sid, tmp_path / "o.json", "--loss", "final_val_loss")
    assert old["loss_used"] == "val"  # the documented column names still work


def test_bad_loss_exits_2(tiny: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    db, sid = tiny
    with pytest.raises(SystemExit) as exc:
        main(["analyze", sid, "--db", str(db), "--loss", "test"])
    assert exc.value.code == 2 and "--loss" in capsys.readouterr().err
