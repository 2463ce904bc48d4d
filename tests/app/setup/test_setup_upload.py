"""Setup page uploads, in the real app (AppTest): an upload loads the form, Launch submits it.

The browser keeps each keyed widget's value on its side and sends it back with every rerun;
it replaces that value only when the server sets the widget's state (the widget's proto then
carries `set_value`). AppTest instead reads widget values back from the server, so on its own
it would not see a page that forgets to set them. `as_the_browser_sends` restores the browser's
side: every widget the server did not set is sent back with the value it had before.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import streamlit
import yaml
from streamlit.testing.v1 import AppTest

from experiments.spec.sweep import SweepSpec
from experiments.store import Store

ROOT = Path(__file__).resolve().parents[3]
LAUNCH = "FormSubmitter:setup_launch-Launch sweep"
# Small and unlike the quick preset (4 widths, 3 seeds, a 10-point log2 grid: 240 runs).
UPLOADED = {
    "name": "uploaded-small", "model": {"kind": "mlp", "depth": 2}, "task": {"name": "digits"},
    "widths": [32, 64], "base_width": 32, "parametrizations": ["sp", "mup"],
    "lrs": [0.001, 0.004, 0.016], "seeds": [0], "steps": 5, "batch_size": 16, "log_every": 1,
}
WIDGET_KINDS = ("text_input", "number_input", "selectbox", "radio", "multiselect", "checkbox")


def widget_values(at: AppTest) -> dict[str, Any]:
    """Every keyed setup widget's value, as the browser holds it after this run."""
    return {w.key: w.value for kind in WIDGET_KINDS for w in getattr(at, kind)
            if w.key and w.key.startswith("setup.")}


def as_the_browser_sends(at: AppTest, held: dict[str, Any]) -> None:
    """Stage, for the next run, the values a browser would send: a widget it already held and
    whose state the server did not set this run keeps the value it held."""
    for kind in WIDGET_KINDS:
        for w in getattr(at, kind):
            if w.key in held and not w.proto.set_value:
                w.set_value(held[w.key])


def upload(at: AppTest, text: str, name: str = "spec.yaml") -> AppTest:
    at.file_uploader(key="setup_upload").set_value((name, text.encode(), "application/x-yaml"))
    return at.run()


@pytest.fixture
def downloads(monkeypatch) -> list[Any]:
    """The payloads the pages hand to `st.download_button` (the real widget still draws)."""
    seen: list[Any] = []
    real = streamlit.download_button

    def spy(label: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(data)
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", spy)
    return seen


def test_the_parametrization_choices_are_the_registered_tables(open_page):
    """The spec names tables by the registry (no Literal to read them from): the form still
    offers each one, the defaults first."""
    at = open_page("views/setup.py")
    (box,) = [w for w in at.multiselect if w.key == "setup.parametrizations"]
    assert box.options == ["sp", "mup", "completep", "depth-mup"]
    assert box.value == ["sp", "mup"]


def test_an_upload_is_what_the_page_shows_downloads_and_launches(open_page, db_path, no_runner,
                                                                 downloads):
    at = open_page("views/setup.py")
    held = widget_values(at)
    assert held["setup.widths"] == "64, 128, 256, 512"  # the quick preset to start with
    upload(at, yaml.safe_dump(UPLOADED))
    assert not at.exception and not at.error, [e.value for e in at.error]
    # Two widths cannot decide transfer: the page says so (and nothing else warns).
    assert [w.icon for w in at.warning] == [":material/help:"]
    assert "verdict" in at.warning[0].value and "width" in at.warning[0].value
    expected = SweepSpec.model_validate(UPLOADED)
    # The widgets show the upload ...
    shown = widget_values(at)
    assert shown["setup.widths"] == "32, 64" and shown["setup.seeds"] == "0"
    assert shown["setup.lr_mode"] == "explicit list" and shown["setup.lrs"] == "0.001, 0.004, 0.016"
    assert shown["setup.name"] == "uploaded-small"
    # ... and so does the plan, and the download gives the uploaded spec back.
    assert at.metric[0].value == str(expected.n_runs()) == "12"
    assert SweepSpec.model_validate(yaml.safe_load(downloads[-1])) == expected

    as_the_browser_sends(at, held)
    at.button(key=LAUNCH).click().run()
    assert not at.exception
    store = Store(db_path)
    (sweep,) = store.list_sweeps()
    record = store.get_sweep(sweep.id)
    assert record is not None
    assert SweepSpec.model_validate(record.spec) == expected
    assert len(store.runs_frame(sweep.id)) == 12 and len(no_runner) == 1


def test_a_field_edited_after_the_upload_is_launched_with_the_rest_of_the_upload(
        open_page, db_path, no_runner):
    at = open_page("views/setup.py")
    held = widget_values(at)
    upload(at, yaml.safe_dump(UPLOADED))
    as_the_browser_sends(at, held)
    at.run()  # a rerun between the upload and the edit (the browser sends what it holds)
    at.text_input(key="setup.seeds").set_value("0, 1")
    at.text_input(key="setup.name").set_value("edited")
    at.button(key=LAUNCH).click().run()
    (sweep,) = Store(db_path).list_sweeps()
    record = Store(db_path).get_sweep(sweep.id)
    assert record is not None
    assert record.spec["name"] == "edited" and record.spec["seeds"] == [0, 1]
    assert record.spec["widths"] == [32, 64] and record.spec["lrs"] == [0.001, 0.004, 0.016]


def test_the_preset_button_after_an_upload_sets_the_widgets_back(open_page):
    at = open_page("views/setup.py")
    upload(at, yaml.safe_dump(UPLOADED))
    held = widget_values(at)
    at.button(key="setup_load_quick").click().run()
    as_the_browser_sends(at, held)
    at.run()
    assert widget_values(at)["setup.widths"] == "64, 128, 256, 512"
    assert at.metric[0].value == "240"


def test_an_upload_the_form_cannot_show_whole_is_flagged(open_page, db_path, no_runner):
    # Valid, but a classification task has no sequence-length field on the form: the page
    # would launch seq_len 64, so it says so instead of silently launching another spec.
    at = open_page("views/setup.py")
    upload(at, yaml.safe_dump({**UPLOADED, "task": {"name": "digits", "seq_len": 128}}))
    assert not at.exception
    assert any("does not show all of the uploaded spec" in w.value and "Task" in w.value
               for w in at.warning), [w.value for w in at.warning]


@pytest.fixture
def example_models(tmp_path, monkeypatch) -> Path:
    """The example model folder (examples/models) registered through the setting."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "models" / "tiny_mixer.py", folder / "tiny_mixer.py")
    monkeypatch.setenv("MUTRANSFER_MODEL_DIRS", str(folder))
    return folder


@pytest.mark.parametrize(("text", "label", "what"), [
    ("steps: {a: 1}\n", "Sweep › steps", "a whole number"),
    ("model: {kind: mlp, depth: [1, 2]}\n", "Model › depth", "a whole number"),
    ("task: digits\n", "Task", "a mapping of its fields"),
    ("model: {kind: custom, name: tiny_mixer, options: {depth: abc}}\n", "Model › option depth",
     "a whole number"),
], ids=["steps-mapping", "depth-list", "task-string", "option-string"])
def test_a_mistyped_upload_names_the_field_and_changes_nothing(open_page, db_path, no_runner,
                                                             example_models, text, label, what):
    at = open_page("views/setup.py")
    before = widget_values(at)
    upload(at, text, name="bad.yaml")
    assert not at.exception, [e.value for e in at.exception]
    messages = [e.value for e in at.error]
    refusal = [m for m in messages if "bad.yaml" in m and "was not loaded" in m]
    assert refusal and f"**{label}**" in refusal[0] and f"Type {what}" in refusal[0], messages
    assert widget_values(at) == before  # the form still shows (and would launch) what it did
    assert at.metric[0].value == "240"
    at.run()  # the refusal stays while the file stays in the uploader
    assert not at.exception and any("was not loaded" in e.value for e in at.error)
    assert Store(db_path).list_sweeps() == [] and no_runner == []


def test_unreadable_and_non_mapping_uploads_are_refused_with_the_reason(open_page, db_path,
                                                                        no_runner):
    at = open_page("views/setup.py")
    upload(at, "widths: [64, 128\n", name="broken.yaml")
    assert not at.exception
    assert any("YAML syntax error at line 2" in e.value and "broken.yaml" in e.value
               for e in at.error), [e.value for e in at.error]
    upload(at, "- 1\n- 2\n", name="list.yaml")
    assert not at.exception and any("must hold a mapping" in e.value for e in at.error)
    assert Store(db_path).list_sweeps() == [] and no_runner == []


@pytest.mark.parametrize(("path", "shown"), [
    ("model.gpt.n_heads", "Model › n heads"),  # a zoo knob: labelled without its kind
    ("model.custom.name", "Model › Registered model"),
    ("hparam_grid.output_mult", "Sweep › sweep output_mult"),
    ("lr_grid.log2_min", "Learning rates › log2 min"),
    ("optimizer.betas", "Sweep › optimizer › betas"),
])
def test_refusals_name_fields_by_their_form_labels(path, shown):
    from app.setup import setup_upload

    assert setup_upload.label(path) == shown
    line = setup_upload.field_line(path, ["Input should be a valid list"], {})
    assert line.startswith(f"- **{shown}** (`{path}`)")
    # The spec's own checks already say what to change: no generic type hint is added.
    assert "Type" not in setup_upload.field_line(path, ["width ladder must increase"], {})
