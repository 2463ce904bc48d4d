"""The LLaMA zoo model in the dashboard: the setup form renders its knobs (from LlamaConfig) and
launches a tied sweep; the coord-check and inspector pages offer it."""

from __future__ import annotations


def test_setup_launches_a_tied_llama_sweep(open_page, db_path, no_runner):
    from experiments.store import Store

    at = open_page("views/setup.py")
    at.selectbox(key="setup.model.kind").set_value("llama").run()
    at.selectbox(key="setup.task.name").set_value("bytes").run()
    at.checkbox(key="setup.model.llama.tie_embeddings").check().run()
    assert not at.error, [e.value for e in at.error]
    at.text_input(key="setup.name").set_value("llama-tied")
    at.button(key="FormSubmitter:setup_launch-Launch sweep").click().run()
    assert not at.exception
    store = Store(db_path)
    (sweep,) = store.list_sweeps()
    record = store.get_sweep(sweep.id)
    assert record is not None
    assert record.spec["model"]["kind"] == "llama" and record.spec["model"]["tie_embeddings"]
    assert len(no_runner) == 1


def test_coord_check_and_inspector_offer_llama(open_page):
    at = open_page("views/coord_check.py")
    assert "LLaMA (RMSNorm, RoPE, SwiGLU)" in at.selectbox(key="coord_model").options
    at.selectbox(key="coord_model").set_value("llama").run()
    assert not at.exception
    at = open_page("views/inspector.py")
    at.selectbox(key="insp_model").set_value("llama").run()
    assert not at.exception
