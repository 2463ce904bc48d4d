"""Spec and bundle files are read bounded: a size cap per kind of file, and YAML aliases that
may not expand the document past a node budget (the "billion laughs"), each refused with exit 2
and a message; ordinary files, aliases included, read as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.errors import UserError
from experiments.files import (
    MAX_BUNDLE_BYTES,
    MAX_SPEC_BYTES,
    MAX_SPEC_NODES,
    MAX_YAML_NODES,
    parse_yaml,
    read_structured,
)

ROOT = Path(__file__).resolve().parents[2]


def alias_bomb(levels: int, fan: int = 9, key: str = "options") -> str:
    """`levels` nested anchors, each listing the previous one `fan` times: a few hundred bytes
    that expand to fan**levels values, inline in one flow mapping (as a spec's options)."""
    parts = ["&a0 [" + ",".join(["x"] * fan) + "]"]
    for i in range(1, levels):
        parts.append(f"&a{i} [" + ",".join([f"*a{i - 1}"] * fan) + "]")
    return f"{key}: {{" + ", ".join(f"o{i}: {p}" for i, p in enumerate(parts)) + "}"


def test_a_650_byte_bomb_is_refused_before_it_is_built() -> None:
    text = alias_bomb(9)  # 9**9 = 387 million values
    assert len(text) < 650
    t0 = time.perf_counter()
    with pytest.raises(UserError, match=r"expands to more than 1,000,000 values.*aliases"):
        parse_yaml(text, "spec x.yaml")
    assert time.perf_counter() - t0 < 2.0


def test_the_node_count_counts_every_use_of_an_alias() -> None:
    text = "a: &x [1, 2]\nb: *x\n"  # mapping 1, a 1, [1, 2] 3, b 1, *x again 3
    assert parse_yaml(text, "f", max_nodes=9) == {"a": [1, 2], "b": [1, 2]}
    with pytest.raises(UserError, match="more than 8 values"):
        parse_yaml(text, "f", max_nodes=8)


def test_ordinary_yaml_with_aliases_still_reads() -> None:
    text = ("defaults: &d {seq_len: 32}\ntask: {name: bytes, <<: *d}\n"
            "lrs: &lrs [0.001, 0.01]\nagain: *lrs\n")
    data = parse_yaml(text, "spec")
    assert data["task"] == {"name": "bytes", "seq_len": 32} and data["again"] == [0.001, 0.01]
    assert parse_yaml("", "empty") is None


@pytest.mark.parametrize("text, want", [
    ("a: &a [*a]\n", "recursive anchor"),
    ("a: [1, 2\n", "YAML syntax error at line 2"),
    ("a: 1\n---\nb: 2\n", "YAML syntax error"),
    ("[" * 5000 + "]" * 5000, ""),  # deep, but within what the parser reads
])
def test_malformed_yaml_is_a_user_error(text: str, want: str) -> None:
    try:
        parse_yaml(text, "spec f.yaml")
    except UserError as exc:
        assert want in str(exc) and str(exc).startswith("spec f.yaml")
    else:
        assert not want


def test_files_over_their_cap_are_refused_unread(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("lrs: [" + ",".join(["0.001"] * (MAX_SPEC_BYTES // 6 + 10)) + "]\n")
    assert spec.stat().st_size > MAX_SPEC_BYTES
    with pytest.raises(UserError, match=r"over the 262,144-byte limit of a spec file"):
        read_structured(spec, "spec file")
    # A bundle may be larger than a spec (it lists every parameter of the target).
    big = tmp_path / "bundle.json"
    big.write_text(json.dumps({"rows": ["x" * 100] * 4000}))
    assert MAX_SPEC_BYTES < big.stat().st_size < MAX_BUNDLE_BYTES
    assert len(read_structured(big, "bundle", MAX_BUNDLE_BYTES)["rows"]) == 4000
    with pytest.raises(UserError, match="nested too deeply"):
        deep = tmp_path / "deep.json"
        deep.write_text("[" * 100_000 + "]" * 100_000)
        read_structured(deep, "bundle", MAX_BUNDLE_BYTES)


def test_the_budget_of_a_spec_is_one_node_per_byte_of_its_cap(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(alias_bomb(6))  # 9**6 = 531,441 values: over a spec's 262,144
    with pytest.raises(UserError, match="more than 262,144 values"):
        read_structured(path, "spec file")
    assert MAX_SPEC_NODES == MAX_SPEC_BYTES < 531_441 < MAX_YAML_NODES
    path.write_text(alias_bomb(5))  # 59,049: within it
    assert len(read_structured(path, "spec file")["options"]) == 5


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUTRANSFER_MODEL_DIRS": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "experiments", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_every_entry_point_refuses_a_bomb_with_exit_2(tmp_path: Path) -> None:
    # A bomb in a registered model's options (the spec), and in a YAML bundle.
    (tmp_path / "toy.py").write_text("def build(width: int, *, task, depth: int = 2):\n"
                                     "    raise RuntimeError\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: bomb\nwidths: [8, 16]\nbase_width: 8\nlrs: [0.01]\ntask: {name: "
                    "digits}\nmodel: {kind: custom, name: toy, " + alias_bomb(7) + "}\n")
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text("kind: mutransfer-hp-bundle\nschema_version: 1\n" + alias_bomb(7, key="spec")
                      + "\n")
    db = tmp_path / "s.duckdb"
    for args in (["sweep", "submit", str(spec), "--db", str(db)], ["bundle", "show", str(bundle)],
                 ["verify", str(bundle)]):
        r = _cli(tmp_path, *args)
        assert r.returncode == 2, (args, r.stderr[-2000:])
        assert "expands to more than" in r.stderr and "Traceback" not in r.stderr
    assert not db.exists()
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: x\nlrs: [" + ",".join(["0.001"] * 60_000) + "]\n")
    r = _cli(tmp_path, "sweep", "submit", str(huge), "--db", str(db))
    assert r.returncode == 2 and "over the 262,144-byte limit" in r.stderr
