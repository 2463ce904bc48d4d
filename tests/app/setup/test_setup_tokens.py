"""Setup page, "tokens" task: the pickers offer only what the allowed data folders hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

TOKENS_SPEC: dict[str, Any] = {
    "name": "tokens-form", "model": {"kind": "gpt", "depth": 1, "head_dim": 16},
    "task": {"name": "tokens", "path": "owt", "vocab_size": 512, "seq_len": 32},
    "widths": [32, 64], "base_width": 32, "parametrizations": ["mup"],
    "lr_grid": {"log2_min": -8, "log2_max": -6, "step": 1}, "seeds": [0], "steps": 10,
    "batch_size": 4, "log_every": 5, "device": "cpu",
}


@pytest.fixture
def token_folder(db_path: Path) -> Path:
    """A tokens folder in the default allowed folder: `datasets/` beside the test's store."""
    folder = db_path.parent / "datasets" / "owt"
    folder.mkdir(parents=True)
    ids = (np.arange(4000) % 512).astype(np.uint16)
    ids.tofile(folder / "train.bin")
    ids[:1000].tofile(folder / "val.bin")
    (db_path.parent / "datasets" / "notes.txt").write_text("x" * 2000)
    return folder.resolve()


def test_tokens_picker_lists_allowed_folders_and_launches(open_page, db_path, token_folder,
                                                          monkeypatch):
    from experiments.service import Service
    from experiments.store import Store

    monkeypatch.setattr(Service, "start_runner", lambda self: None)
    monkeypatch.delenv("MUTRANSFER_DATA_DIRS", raising=False)
    at = open_page("views/setup.py", setup_values=TOKENS_SPEC)
    picker = at.selectbox(key="setup.task.path")
    assert picker.options == ["owt  (" + str(token_folder.parent) + ")"]  # not notes.txt
    assert picker.value == str(token_folder)  # the spec's relative name, found in the folder
    assert at.number_input(key="setup.task.vocab_size").value == 512
    assert at.selectbox(key="setup.task.dtype").value == "uint16"
    assert not at.error, [e.value for e in at.error]
    at.button(key="FormSubmitter:setup_launch-Launch sweep").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (sweep,) = Store(db_path).list_sweeps()
    task = Store(db_path).get_sweep(sweep.id).spec["task"]  # type: ignore[union-attr]
    # The data's fingerprint is recorded at submit (a run on changed data is refused).
    fingerprint = task.pop("fingerprint")
    assert fingerprint.startswith("train.bin: ") and "; val.bin: " in fingerprint
    assert task == {"name": "tokens", "path": str(token_folder), "seq_len": 32,
                    "vocab_size": 512, "dtype": "uint16"}


def test_tokens_picker_says_where_to_put_data(open_page, db_path, monkeypatch, tmp_path):
    monkeypatch.setenv("MUTRANSFER_DATA_DIRS", str(tmp_path / "empty"))
    at = open_page("views/setup.py", setup_values=TOKENS_SPEC)
    assert at.selectbox(key="setup.task.path").options == []
    assert any("MUTRANSFER_DATA_DIRS" in i.value and "empty" in i.value for i in at.info)
