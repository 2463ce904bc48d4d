"""AppTest tests of every page against a real store (no browser; reruns driven by `at.run()`).

Sweeps are created through the same spec + store calls the pages use and trained by the
engine's real foreground runner with a few steps, so the pages see genuine rows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.setup import presets

ROOT = Path(__file__).resolve().parents[2]

TINY_STEPS = "12"


@pytest.fixture
def tiny_quick(monkeypatch):
    monkeypatch.setenv(presets.QUICK_STEPS_ENV, TINY_STEPS)


def make_sweep(db_path, **overrides) -> int:
    """Create the (tiny) quick-demo sweep in the store at `db_path`; returns its id."""
    from experiments.spec.sweep import SweepSpec
    from experiments.store import Store
    from experiments.sweep.submit import create_sweep

    spec = SweepSpec.model_validate({**presets.quick_spec_data(), **overrides})
    return int(create_sweep(Store(db_path), spec))


def run_all(db_path, sweep_id) -> None:
    from experiments.runner import run_sweep

    run_sweep(db_path, sweep_id, workers=1)


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """One tiny quick-demo sweep trained to the end, shared by the read-only page tests."""
    mp = pytest.MonkeyPatch()
    mp.setenv(presets.QUICK_STEPS_ENV, TINY_STEPS)
    db = tmp_path_factory.mktemp("finished") / "store.duckdb"
    sweep_id = make_sweep(db)
    run_all(db, sweep_id)
    mp.undo()
    return db, sweep_id


def test_home_counts_and_quick_demo(open_page, db_path, no_runner, tiny_quick):
    at = open_page()
    assert at.title[0].value == "µTransfer dashboard"
    assert any(str(db_path.name) in c.value for c in at.caption)
    assert at.metric[0].value == "0"
    at.button(key="home_quick_demo").click().run()
    from experiments.store import Store

    sweeps = Store(db_path).list_sweeps()
    assert len(sweeps) == 1 and no_runner == [db_path.resolve()]
    assert at.session_state["current_sweep_id"] == sweeps[0].id


def test_a_runner_that_cannot_start_leaves_the_sweep_queued_and_says_so(
        open_page, db_path, tiny_quick, monkeypatch):
    """The quick demo is stored and queued; the page names the runner's failure and the command
    that runs the queued sweep, never "Nothing was launched"."""
    import experiments.runner as runner_pkg
    from experiments.runner.loop import RunnerStartError
    from experiments.store import Store

    def refuse(db_path: object) -> None:
        raise RunnerStartError("the background runner could not start (exit 2): disk full")

    monkeypatch.setattr(runner_pkg, "ensure_background_runner", refuse)
    at = open_page()
    at.button(key="home_quick_demo").click().run()
    sweeps = Store(db_path).list_sweeps()
    assert len(sweeps) == 1 and at.session_state["current_sweep_id"] == sweeps[0].id
    text = " ".join(w.value for w in at.warning)
    assert "disk full" in text and f"sweep resume {sweeps[0].id}" in text, text
    assert not any("Nothing was launched" in e.value for e in at.error)


def test_setup_bad_field_shows_error_and_launches_nothing(open_page, db_path, no_runner):
    at = open_page("views/setup.py")
    assert not at.error
    at.text_input(key="setup.widths").set_value("256, 128").run()
    assert any("increas" in e.value for e in at.error), [e.value for e in at.error]
    at.button(key="FormSubmitter:setup_launch-Launch sweep").click().run()
    assert any("Nothing was launched" in e.value for e in at.error)
    from experiments.store import Store

    assert Store(db_path).list_sweeps() == [] and no_runner == []


def test_setup_valid_form_creates_sweep(open_page, db_path, no_runner):
    at = open_page("views/setup.py")
    at.text_input(key="setup.name").set_value("from-form")
    at.button(key="FormSubmitter:setup_launch-Launch sweep").click().run()
    assert not at.exception
    from experiments.store import Store

    sweeps = Store(db_path).list_sweeps()
    assert [s.name for s in sweeps] == ["from-form"] and len(no_runner) == 1


def test_setup_sweeps_a_global_knob_from_the_form(open_page, db_path, no_runner):
    from experiments.spec.run import GLOBAL_KNOBS
    from experiments.store import Store

    at = open_page("views/setup.py")
    for knob in GLOBAL_KNOBS:  # one input per knob of mucore.HParams, empty by default
        assert at.text_input(key=f"setup.hparam_grid.{knob}").value == ""
    at.text_input(key="setup.hparam_grid.input_mult").set_value("0, 2").run()
    assert any("hparam_grid.input_mult" in e.value for e in at.error), [e.value for e in at.error]
    at.button(key="FormSubmitter:setup_launch-Launch sweep").click().run()
    assert Store(db_path).list_sweeps() == []

    at.text_input(key="setup.hparam_grid.input_mult").set_value("0.5, 2").run()
    at.text_input(key="setup.name").set_value("knobs")
    at.button(key="FormSubmitter:setup_launch-Launch sweep").click().run()
    assert not at.exception and not at.error
    store = Store(db_path)
    (sweep,) = store.list_sweeps()
    record = store.get_sweep(sweep.id)
    assert record is not None and record.spec["hparam_grid"] == {"input_mult": [0.5, 2.0]}
    runs = store.runs_frame(sweep.id)
    assert sorted(runs["input_mult"].unique()) == [0.5, 2.0]
    assert (runs["input_mult"] == 0.5).sum() == (runs["input_mult"] == 2.0).sum() == len(runs) // 2


def test_setup_refuses_file_task_outside_datasets(open_page, db_path, no_runner, tmp_path):
    from app.setup import launch

    at = open_page("views/setup.py")  # gives the page's session a store path
    outside = tmp_path / "secret.txt"
    outside.write_text("x" * 1000)
    data = {**presets.quick_spec_data(), "task": {"name": "file", "path": str(outside)}}
    spec, errors = launch.validate(data)
    assert spec is None and any("MUTRANSFER_DATA_DIRS" in m for m in errors["task.path"])
    assert not at.exception
    from experiments.store import Store

    assert Store(db_path).list_sweeps() == [] and no_runner == []  # refused: nothing written


def test_runs_table_updates_as_runs_finish(open_page, db_path, tiny_quick):
    sweep_id = make_sweep(db_path)
    at = open_page("views/runs.py", current_sweep_id=sweep_id)
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["queued"]) > 0 and metrics["done"] == "0"
    run_all(db_path, sweep_id)
    at.run()  # what run_every would do
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["queued"] == "0" and int(metrics["done"]) + int(metrics["diverged"]) > 0
    assert at.get("plotly_chart"), "loss curves drawn for finished runs"


def test_transfer_page_panels_and_verdict(open_page, finished_sweep, monkeypatch):
    db, sweep_id = finished_sweep
    monkeypatch.setenv("MUTRANSFER_DB_PATH", str(db))
    at = open_page("views/transfer.py", current_sweep_id=sweep_id)
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # transfer, optimum vs width, curves
    fig = json.loads(charts[0].proto.spec)
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert "SP (standard)" in titles and "µP" in titles
    verdicts = [s.value for s in at.success] + [e.value for e in at.error] + [
        w.value for w in at.warning]
    assert any("Transfer" in v for v in verdicts), verdicts
    from app.transfer.regret_view import regret_sentence
    from experiments.analysis import analyze
    from experiments.store import Store

    # The page reads the validation loss by default (the digits task has a split), says so,
    # and forecasts the best loss at its target width (the widest width x 4 by default).
    target = int(at.selectbox(key="transfer_target").value)
    report = analyze(Store(db).runs_frame(sweep_id), loss="auto", target_width=target)
    assert report.loss == "final_val_loss"
    assert any(c.value.startswith("Loss used: validation loss") for c in at.caption)
    # The regret panel: the sentence the report gives, and its chart and table.
    sentence = regret_sentence(report)
    assert sentence is not None and sentence in [m.value for m in at.markdown]
    assert any(h.value == "What copying the proxy's learning rate costs" for h in at.subheader)
    # The forecast panel: best loss vs width, and µP against tuned SP in one sentence.
    from app.transfer.forecast_view import forecast_sentence

    assert any(h.value == "Best loss vs width: the forecast" for h in at.subheader)
    said = forecast_sentence(report)
    assert said is not None and said in [m.value for m in at.markdown], said
    # The strict rule (whole drift interval within tolerance) gives the analysis' own verdict.
    strict = analyze(Store(db).runs_frame(sweep_id), loss="auto", strict_interval=True).verdict
    at.checkbox(key="transfer_strict").check().run()
    assert not at.exception
    want = {"confirmed": "Transfer confirmed", "not_confirmed": "Transfer not confirmed",
            "inconclusive": "Transfer inconclusive"}[strict]
    verdicts = [s.value for s in at.success] + [e.value for e in at.error] + [
        w.value for w in at.warning]
    assert any(want in v for v in verdicts), (want, verdicts)
    # The next step the analysis names is on the page, beside the verdict.
    step = analyze(Store(db).runs_frame(sweep_id), strict_interval=True).next_step
    assert any(step in i.value for i in at.info), (step, [i.value for i in at.info])


@pytest.fixture
def served_files(monkeypatch) -> Callable[[str], Any]:
    """`served(url)` -> the file a page's `st.download_button` offers at `url` (its bytes and
    file name), read from the media storage of the AppTest run that drew it."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    storages: list[MemoryMediaFileStorage] = []
    init = MemoryMediaFileStorage.__init__

    def recording_init(self: MemoryMediaFileStorage, media_endpoint: str) -> None:
        init(self, media_endpoint)
        storages.append(self)

    monkeypatch.setattr(MemoryMediaFileStorage, "__init__", recording_init)
    return lambda url: storages[-1].get_file(url.rsplit("/", 1)[-1])


def test_export_offers_the_clis_exact_bytes(open_page, finished_sweep, monkeypatch, tmp_path,
                                            served_files):
    db, sweep_id = finished_sweep
    monkeypatch.setenv("MUTRANSFER_DB_PATH", str(db))
    at = open_page("views/export.py", current_sweep_id=sweep_id)
    target = int(at.selectbox(key="export_target").value)
    # A tiny sweep may not confirm transfer: then the page offers the CLI's --force.
    force = any(c.key == "export_force" for c in at.checkbox)
    if force:
        at.checkbox(key="export_force").check().run()
    assert not at.exception
    assert any(h.value == "Bundle preview" for h in at.subheader)
    page_json = served_files(at.download_button(key="export_json").proto.url)
    page_yaml = served_files(at.download_button(key="export_yaml").proto.url)
    out = tmp_path / "cli.json"
    r = subprocess.run(
        [sys.executable, "-m", "experiments", "export", str(sweep_id), "--db", str(db),
         "--target-width", str(target), "--out", str(out), *(["--force"] if force else [])],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert page_json.content == out.read_bytes(), "the page offers the CLI's exact bytes"
    assert page_json.filename.endswith(f"-w{target}.json")
    assert page_yaml.filename == page_json.filename.removesuffix(".json") + ".yaml"
    assert yaml.safe_load(page_yaml.content) == json.loads(page_json.content)


def test_coord_check_waits_for_its_button_and_the_inspector_shows_its_describe_jobs(open_page):
    from app import jobs

    at = open_page("views/coord_check.py")
    run = at.button(key="FormSubmitter:coord_form-Run coordinate check")
    assert run.label == "Run coordinate check" and not run.disabled
    assert "coord_key" not in at.session_state  # nothing starts before the click
    assert any("press **Run coordinate check**" in i.value for i in at.info)

    at = open_page("views/inspector.py")
    assert at.selectbox(key="insp_model").value == "mlp"
    started = jobs.registry().started()
    assert sorted(j.args[j.args.index("--width") + 1] for j in started) == ["1024", "64"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not at.dataframe and not at.error:
        time.sleep(0.5)
        at.run()
    assert not at.error, [e.value for e in at.error]
    assert all(j.proc.poll() == 0 for j in started)  # both describe jobs ran and exited
    assert any(s.value == "Base width 64 → target width 1024" for s in at.subheader)
    table = at.dataframe[0].value.set_index("name")
    # µP with Adam (TP5 Table 8): a hidden matrix's LR is divided by m = 1024 / 64, the input
    # layer's is not.
    assert table.loc["hidden.0.weight", "lr_mult"] == 1 / 16
    assert table.loc["input.weight", "lr_mult"] == 1.0


def test_export_shows_the_stored_verification(open_page, finished_sweep, monkeypatch, tmp_path):
    db, sweep_id = finished_sweep
    monkeypatch.setenv("MUTRANSFER_DB_PATH", str(db))
    from experiments.service import VerifyReport

    at = open_page("views/export.py", current_sweep_id=sweep_id)
    target = int(at.selectbox(key="export_target").value)
    assert any("Not verified yet" in c.value for c in at.caption)
    bundle, out = tmp_path / "b.json", tmp_path / "verify.json"
    for args in (["export", str(sweep_id), "--db", str(db), "--target-width", str(target),
                  "--out", str(bundle), "--force"],
                 ["verify", str(bundle), "--db", str(db), "--bracket", "1", "--steps", "2",
                  "--no-sp-baseline", "--json", str(out)]):
        r = subprocess.run([sys.executable, "-m", "experiments", *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    report = VerifyReport.from_json(json.loads(out.read_text()))  # the real job's report
    at.run()
    verdict = at.success if report.within_one_step else at.error
    assert any("erified**" in v.value for v in verdict), [v.value for v in verdict]
    (frame,) = [d.value for d in at.dataframe if "what" in d.value.columns]
    table = frame.set_index("what")["value"]
    assert table["target width"] == str(target)
    assert table["transferred log2 lr"] == str(report.transferred_log2_lr)
    assert "points" not in table.index  # the bracket's list is not a table cell
    if report.forecast is not None:  # the bundle's forecast against the measured loss
        boxes = [b.value for b in (*at.info, *at.success, *at.warning)]
        assert any(f"Loss forecast: {report.forecast.status}" in b for b in boxes), boxes


# --- Registered models (a user's build function) ------------------------------------------------


@pytest.fixture
def registered_mixer(tmp_path, monkeypatch) -> Path:
    """The example model in a temporary model folder, registered through the setting."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "models" / "tiny_mixer.py", folder / "tiny_mixer.py")
    monkeypatch.setenv("MUTRANSFER_MODEL_DIRS", str(folder))
    return folder


def test_setup_picks_a_registered_model_and_launches_a_sweep(open_page, db_path, no_runner,
                                                             registered_mixer):
    from experiments.store import Store

    at = open_page("views/setup.py")
    assert "Registered model" in at.selectbox(key="setup.model.kind").options  # once registered
    at.selectbox(key="setup.model.kind").set_value("custom").run()
    assert at.selectbox(key="setup.model.name").value == "tiny_mixer"
    depth = "setup.model.options.tiny_mixer.depth"
    assert at.number_input(key=depth).value == 2  # the option's default, as a form field
    # A bad option value is refused beside the model and launches nothing.
    at.number_input(key="setup.model.options.tiny_mixer.patch").set_value(3).run()
    assert any("patch 3 must divide" in e.value for e in at.error), [e.value for e in at.error]
    at.button(key="FormSubmitter:setup_launch-Launch sweep").click().run()
    assert Store(db_path).list_sweeps() == [] and no_runner == []

    at.number_input(key="setup.model.options.tiny_mixer.patch").set_value(2)
    at.number_input(key=depth).set_value(1)
    at.selectbox(key="setup.model.options.tiny_mixer.activation").set_value("relu").run()
    assert not at.error, [e.value for e in at.error]
    at.text_input(key="setup.name").set_value("mine")
    at.button(key="FormSubmitter:setup_launch-Launch sweep").click().run()
    assert not at.exception
    store = Store(db_path)
    (sweep,) = store.list_sweeps()
    record = store.get_sweep(sweep.id)
    assert record is not None and record.spec["model"] == {
        "kind": "custom", "name": "tiny_mixer",
        "options": {"depth": 1, "patch": 2, "activation": "relu"}}
    assert len(no_runner) == 1


def test_coord_check_and_inspector_offer_registered_models_with_options(open_page,
                                                                        registered_mixer):
    at = open_page("views/coord_check.py")
    assert any(o.startswith("tiny_mixer") for o in at.selectbox(key="coord_model").options)
    at.selectbox(key="coord_model").set_value("tiny_mixer").run()
    assert at.number_input(key="coord.tiny_mixer.options.tiny_mixer.depth").value == 2
    assert at.selectbox(key="coord.tiny_mixer.task").value == "digits"
    at = open_page("views/inspector.py")
    at.selectbox(key="insp_model").set_value("tiny_mixer").run()
    assert not at.exception
    assert at.selectbox(key="insp.tiny_mixer.options.tiny_mixer.activation").value == "gelu"


def test_a_broken_model_file_is_shown_and_the_zoo_stays_usable(open_page, registered_mixer):
    (registered_mixer / "broken.py").write_text("import torch\n\nraise ImportError('no')\n")
    at = open_page("views/setup.py")
    assert any("registered model 'broken' cannot be used" in e.value and "broken.py, line 3"
               in e.value for e in at.error), [e.value for e in at.error]
    # The zoo and the working registered model stay offered; the broken one is not.
    assert "Registered model" in at.selectbox(key="setup.model.kind").options
    assert at.selectbox(key="setup.model.kind").value == "mlp"
    # The pages sharing `model_picker.model_select` say so too and keep the other models.
    for page, key in (("views/coord_check.py", "coord_model"), ("views/doctor.py", "doctor_model"),
                      ("views/inspector.py", "insp_model")):
        at = open_page(page)
        assert any("registered model 'broken' cannot be used" in e.value and "broken.py, line 3"
                   in e.value for e in at.error), (page, [e.value for e in at.error])
        options = at.selectbox(key=key).options
        assert at.selectbox(key=key).value == "mlp"
        assert any(o.startswith("tiny_mixer") for o in options)
        assert not any(o.startswith("broken") for o in options)
