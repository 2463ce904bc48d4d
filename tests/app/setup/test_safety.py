"""The browser may send data only, and read task data only from the allowed data folders."""

from __future__ import annotations

import os

import pytest

from app.setup import safety


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "datasets"
    d.mkdir()
    (d / "corpus.txt").write_text("hello world")
    (tmp_path / "secret.txt").write_text("do not read")
    return d.resolve()


def test_parse_uploaded_spec_is_plain_data():
    assert safety.parse_uploaded_spec(b"name: x\nwidths: [64, 128]\n") == {"name": "x", "widths": [64, 128]}
    with pytest.raises(safety.UnsafeSpecError, match="not valid YAML"):
        safety.parse_uploaded_spec(b"!!python/object/apply:os.system ['echo hi']")
    with pytest.raises(safety.UnsafeSpecError, match="mapping"):
        safety.parse_uploaded_spec(b"- 1\n- 2\n")
    with pytest.raises(safety.UnsafeSpecError, match="limit"):
        safety.parse_uploaded_spec(b"a" * (safety.MAX_SPEC_BYTES + 1))


def test_file_task_inside_folder_is_allowed(folder):
    out = safety.check_browser_spec({"task": {"name": "file", "path": "corpus.txt"}}, folder)
    assert out["task"]["path"] == str(folder / "corpus.txt")


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/passwd", "missing.txt", ""])
def test_file_task_outside_folder_is_refused(folder, path):
    with pytest.raises(safety.UnsafeSpecError):
        safety.check_browser_spec({"task": {"name": "file", "path": path}}, folder)


def test_symlink_out_of_folder_is_refused(folder):
    os.symlink(folder.parent / "secret.txt", folder / "link.txt")
    with pytest.raises(safety.UnsafeSpecError, match="outside"):
        safety.check_browser_spec({"task": {"name": "file", "path": "link.txt"}}, folder)


def test_code_keys_are_refused(folder):
    with pytest.raises(safety.UnsafeSpecError, match="CLI"):
        safety.check_browser_spec({"job": "os:system"}, folder)
    assert safety.check_browser_spec({"task": {"name": "digits"}}, folder) == {"task": {"name": "digits"}}


def test_refusals_name_the_setting_and_the_field(folder):
    with pytest.raises(safety.UnsafeSpecError, match="MUTRANSFER_DATA_DIRS") as exc:
        safety.check_browser_spec({"task": {"name": "file", "path": "../secret.txt"}}, folder)
    assert exc.value.field == "task.path"


def test_token_folders_and_several_allowed_folders(folder, tmp_path):
    other = tmp_path / "more"
    (other / "owt").mkdir(parents=True)
    spec = {"task": {"name": "tokens", "path": "owt", "vocab_size": 10}}
    out = safety.check_browser_spec(spec, [folder, other.resolve()])  # found in the second folder
    assert out["task"]["path"] == str((other / "owt").resolve())
    absolute = {"task": {**spec["task"], "path": str(other / "owt")}}
    with pytest.raises(safety.UnsafeSpecError, match="outside"):
        safety.check_browser_spec(absolute, [folder])
    with pytest.raises(safety.UnsafeSpecError, match="not a folder"):
        safety.check_browser_spec({"task": {"name": "tokens", "path": "corpus.txt"}}, [folder])
    with pytest.raises(safety.UnsafeSpecError, match="needs a path"):
        safety.check_browser_spec({"task": {"name": "tokens"}}, [folder])
