"""`analyze --regret-tolerance`: the flag reaches the verdict and the JSON; a bad value exits 2.

The commands run in-process through `experiments.cli.main` (the entry point `python -m
experiments` calls), so the test pays for one tiny sweep and no interpreter start-ups.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from experiments.cli import main


def test_regret_tolerance_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "tiny-regret", "model": {"kind": "mlp", "depth": 2},
        "task": {"name": "synthetic"}, "widths": [32, 64], "base_width": 32,
        "parametrizations": ["sp", "mup"], "lrs": [2.0**-9, 2.0**-7], "seeds": [0],
        "steps": 10, "batch_size": 16, "log_every": 5, "device": "cpu",
    }))
    db = tmp_path / "store.duckdb"
    assert main(["sweep", "run", str(spec), "--db", str(db)]) == 0
    sweep_id = capsys.readouterr().out.strip().splitlines()[-1]

    for bad in ("0", "1.5", "nan"):
        out = tmp_path / f"bad-{bad}.json"
        code = main(["analyze", sweep_id, "--db", str(db), "--json", str(out),
                     "--regret-tolerance", bad])
        err = capsys.readouterr().err
        assert code == 2 and "--regret-tolerance must be a fraction" in err, (bad, err)
        assert not out.exists()  # refused before anything is written

    out = tmp_path / "a.json"
    assert main(["analyze", sweep_id, "--db", str(db), "--json", str(out),
                 "--regret-tolerance", "0.05"]) == 0
    stdout = capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["regret_tolerance"] == 0.05
    for param in ("sp", "mup"):
        rows = doc["parametrizations"][param]["regret"]
        assert [row["width"] for row in rows] == [32, 64]
        assert rows[0]["abs"] == 0.0  # the proxy's own width
    assert "regret of copying the LR tuned at width 32" in stdout
