"""The Setup page's batch and horizon ladders (real app, AppTest): an uploaded batch/horizon
spec shows its ladders and rules and launches exactly that spec; typed ladders and a rule
launch as the spec's fields; a ladder that does not increase is named beside its input and
nothing is launched."""

from __future__ import annotations

from pathlib import Path

import yaml
from test_setup_upload import LAUNCH, UPLOADED, as_the_browser_sends, upload, widget_values

from experiments.spec.sweep import SweepSpec
from experiments.store import Store

ROOT = Path(__file__).resolve().parents[3]
PRESET = yaml.safe_load((ROOT / "experiments" / "configs" / "batch-horizon-gpt.yaml").read_text())


def test_an_uploaded_batch_horizon_spec_shows_its_ladders_and_launches_as_uploaded(
        open_page, db_path, no_runner) -> None:
    spec = {**PRESET, "scaling": {"batch": "sqrt", "horizon": {"power": -0.5}}}
    at = open_page("views/setup.py")
    held = widget_values(at)
    upload(at, yaml.safe_dump(spec))
    assert not at.exception and not at.error, [e.value for e in at.error]
    said = " ".join(w.value for w in [*at.warning, *at.success])
    assert "does not show all" not in said  # the form shows all of it
    # One width: the plan is judged along its batch ladder, not asked for more widths.
    assert "batch size verdict (at one width)" in said and "One width" not in said, said
    shown = widget_values(at)
    assert shown["setup.batch_sizes"] == "8, 16, 32, 64" and shown["setup.base_batch_size"] == 8
    assert shown["setup.horizons"] == "200, 400, 800" and shown["setup.base_horizon"] == 200
    assert shown["setup.scaling.batch"] == "sqrt" and shown["setup.scaling.horizon"] == "power"
    assert shown["setup.scaling.horizon.power"] == -0.5
    as_the_browser_sends(at, held)
    at.button(key=LAUNCH).click().run()
    assert not at.exception
    (sweep,) = Store(db_path).list_sweeps()
    record = Store(db_path).get_sweep(sweep.id)
    assert record is not None
    assert SweepSpec.model_validate(record.spec) == SweepSpec.model_validate(spec)


def test_typed_ladders_launch_and_a_bad_one_is_named_beside_it(open_page, db_path,
                                                               no_runner) -> None:
    at = open_page("views/setup.py")
    upload(at, yaml.safe_dump(UPLOADED))
    at.text_input(key="setup.batch_sizes").set_value("32, 16").run()
    assert any("Batch sizes must increase: got 16 after 32" in e.value for e in at.error), [
        e.value for e in at.error]
    at.button(key=LAUNCH).click().run()
    assert not Store(db_path).list_sweeps()  # nothing launched
    at.text_input(key="setup.batch_sizes").set_value("16, 32").run()
    # 5 steps at base batch 16 are not whole steps at batch 32: said beside the ladder.
    assert any("make steps a multiple of 2" in e.value for e in at.error)
    at.number_input(key="setup.steps").set_value(8).run()
    at.selectbox(key="setup.scaling.batch").set_value("sqrt").run()
    assert not at.error, [e.value for e in at.error]
    at.button(key=LAUNCH).click().run()
    assert not at.exception
    (sweep,) = Store(db_path).list_sweeps()
    record = Store(db_path).get_sweep(sweep.id)
    assert record is not None
    assert record.spec["batch_sizes"] == [16, 32] and record.spec["scaling"]["batch"] == "sqrt"
    assert record.spec.get("horizons") is None
