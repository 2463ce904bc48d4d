"""Setup: build a sweep spec with a form generated from `experiments.spec.sweep.SweepSpec`.

Every edit re-validates the spec, so errors show next to their fields and the summary (runs,
parameters per width, compute and memory) is always current. Launching goes through a form:
nothing reaches the store until the spec is valid and the user presses Launch.

One spec object per run: the widgets' values (name included) are validated once into `spec`,
and the estimate, the LR preview, the YAML download and Launch all use that object. Loading a
spec (the preset, or a valid upload: `setup_upload`) writes every widget's session state, so
the browser shows, and sends back, the loaded values rather than the ones it held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st
import yaml
from streamlit.delta_generator import DeltaGenerator

from app import state
from app.doctor import doctor_panel
from app.setup import batch_form, depth_form, launch, presets, search_form, setup_upload
from app.widgets import charts, components, form, model_picker
from experiments.models.configs import ModelConfig
from experiments.service import ModelInfo
from experiments.spec.run import GLOBAL_KNOBS, HParamsConfig
from experiments.spec.sweep import SweepSpec, spec_log2_lrs, zoo_labels
from experiments.tasks.config import LM_TASKS, TaskConfig

if TYPE_CHECKING:  # typing only
    from experiments.service import VerdictReach

MODEL_CLASSES = form.discriminated_members(ModelConfig) or {}
TASK_NAMES = form.literal_options(TaskConfig, "name")
TOKEN_DTYPES = form.literal_options(TaskConfig, "dtype")

PREFIX = "setup"
VALUES = "setup_values"  # the spec data the widgets start from (a preset or an upload)
LOADING = "setup_loading"  # set by a load: the next run writes every widget's state from VALUES
LOADED = "setup_loaded"  # an uploaded spec (as data), to check the form shows all of it
UPLOAD_ID = "setup_upload_id"  # the upload already read (a rerun must not load it again)
UPLOAD_MESSAGE = "setup_upload_message"  # why that upload was refused, shown while it stays
MODEL_LABELS = zoo_labels(pickable_only=False)
# Spec fields the form has no inputs for yet (the batch and horizon ladders): kept from the
# preset or uploaded spec unchanged.
# No inputs yet (the ladders and their scaling rules): a loaded spec's values pass through as is.
# Drawn by `batch_form`, not by the generated form.
LADDER_FIELDS = ("batch_sizes", "base_batch_size", "horizons", "base_horizon", "scaling")

FIELD_LABELS = {
    "widths": "width ladder",
    "base_width": "base width",
    "parametrizations": "parametrizations",
    "batch_size": "batch size",
}


def load_values(data: dict[str, Any]) -> None:
    """Start the form over from `data`: drop every setup widget's state, and have the next run
    write each widget's state from `data` (`form.ModelForm.initial`)."""
    for key in [k for k in st.session_state if str(k).startswith(PREFIX + ".")]:
        del st.session_state[key]
    st.session_state[VALUES] = data
    st.session_state[LOADING] = True


def upload_section() -> None:
    """The spec uploader: a valid spec is loaded into the form (and the page reruns with it);
    an invalid one is refused with one line per field, shown while that file stays here."""
    upload = st.file_uploader(
        "Load a spec (YAML)", type=["yaml", "yml", "json"], key="setup_upload",
        help="Data only. Task data must be in an allowed data folder (MUTRANSFER_DATA_DIRS; by "
        "default the datasets folder next to the store).",
    )
    if upload is None:
        st.session_state.pop(UPLOAD_MESSAGE, None)
        return
    if st.session_state.get(UPLOAD_ID) != upload.file_id:
        st.session_state[UPLOAD_ID] = upload.file_id
        spec, message = setup_upload.read(upload.name, upload.getvalue())
        st.session_state[UPLOAD_MESSAGE] = message
        if spec is not None:
            loaded = spec.model_dump(mode="json")
            load_values(loaded)
            st.session_state[LOADED] = loaded
            st.rerun()
    if st.session_state.get(UPLOAD_MESSAGE):
        st.error(st.session_state[UPLOAD_MESSAGE], icon=":material/block:")


def lr_inputs(values: dict[str, Any]) -> dict[str, Any]:
    """The LR widgets; returns `{"lr_grid": {...}}` or `{"lrs": [...]}` (exactly one, as the
    spec requires)."""
    grid = dict(values.get("lr_grid") or {})
    explicit = values.get("lrs")
    modes = ["log2 grid", "explicit list"]
    index = 1 if explicit and not grid else 0
    mode = st.radio(
        "Learning rates", modes, key=spec_form.key("lr_mode"), horizontal=True, label_visibility="collapsed",
        **spec_form.initial(spec_form.key("lr_mode"), modes[index], index=index),
    )
    if mode == "explicit list":
        listed = ", ".join(str(x) for x in explicit or [1e-3, 3e-3, 1e-2])
        text = st.text_input(
            "learning rates", key=spec_form.key("lrs"), **spec_form.initial(spec_form.key("lrs"), listed, value=listed),
            help="Comma-separated learning rates, e.g. 0.001, 0.003, 0.01.",
        )
        return {"lrs": form.parse_number_list(text)}
    out: dict[str, float] = {}
    for col, (field, label, default, step, help_text) in zip(st.columns(3), (
        ("log2_min", "log2 min", -14.0, 0.5, "log2 of the smallest LR."),
        ("log2_max", "log2 max", -4.0, 0.5, "log2 of the largest LR."),
        ("step", "step (log2)", 1.0, 0.25, "Spacing of the grid: 1 doubles the LR per point, 0.5 is finer."),
    ), strict=True):
        key, value = spec_form.key(f"lr_grid.{field}"), float(grid.get(field, default))
        out[field] = col.number_input(label, step=step, key=key, help=help_text,
                                      **spec_form.initial(key, value, value=value))
    return {"lr_grid": out}


def knob_grid_inputs(values: dict[str, Any]) -> dict[str, list[Any]]:
    """One "sweep" input per global µP knob (`GLOBAL_KNOBS`); returns the spec's `hparam_grid`.

    An empty input keeps the knob at its `hparams` value; values are crossed with the LR grid,
    so the LR is re-tuned at every knob setting (TP5, Section 6: the knobs transfer like the LR).
    """
    grid = dict(values.get("hparam_grid") or {})
    cols = st.columns(2)
    out: dict[str, list[Any]] = {}
    for i, knob in enumerate(GLOBAL_KNOBS):
        key, listed = spec_form.key(f"hparam_grid.{knob}"), ", ".join(f"{v:g}" for v in grid.get(knob, []))
        text = cols[i % 2].text_input(
            f"sweep {knob}", key=key, placeholder="e.g. 0.5, 1, 2", **spec_form.initial(key, listed, value=listed),
            help=f"{form.field_help(HParamsConfig, knob) or knob}. Comma-separated values to "
            f"sweep; leave empty to keep hparams.{knob} fixed.",
        )
        parsed = form.parse_number_list(text)
        if parsed:
            out[knob] = parsed
    return out


def data_inputs(task_name: str, task_values: dict[str, Any]) -> dict[str, Any]:
    """The data pickers of a "file" or "tokens" task: what the allowed data folders hold
    (`Service.data_files`), and for tokens the vocabulary size and id dtype."""
    entries = state.service().data_files(task_name)
    labels = {e.path: f"{e.name}  ({e.folder})" for e in entries}
    paths = list(labels)
    given = task_values.get("path")
    match = [e.path for e in entries if given in (e.path, e.name)]
    if not entries:
        what = ("a folder holding train.bin and val.bin" if task_name == "tokens"
                else "a .txt (byte LM) or .npz (x, y arrays)")
        folders = ", ".join(f"`{d}`" for d in state.service().data_dirs())
        st.info(f"No data yet. Put {what} in {folders} (setting MUTRANSFER_DATA_DIRS).")
    key = spec_form.key("task.path")
    out: dict[str, Any] = {"path": st.selectbox(
        "Token folder" if task_name == "tokens" else "Dataset file", paths, key=key,
        format_func=lambda p: labels.get(p, p), placeholder="Choose from the allowed data folders",
        **spec_form.initial(key, match[0] if match else None, index=paths.index(match[0]) if match else None),
    )}
    if task_name == "tokens":
        v1, v2 = st.columns(2)
        key, vocab = spec_form.key("task.vocab_size"), int(task_values.get("vocab_size") or 50257)
        out["vocab_size"] = v1.number_input(
            "vocabulary size", min_value=2, max_value=2**32, key=key, **spec_form.initial(key, vocab, value=vocab),
            help="Token ids run 0..vocab_size-1 (50257 for GPT-2's tokenizer).",
        )
        key, dtype = spec_form.key("task.dtype"), task_values.get("dtype")
        index = TOKEN_DTYPES.index(dtype) if dtype in TOKEN_DTYPES else 0
        out["dtype"] = v2.selectbox(
            "id dtype", TOKEN_DTYPES, key=key, **spec_form.initial(key, TOKEN_DTYPES[index], index=index),
            help="How train.bin and val.bin store ids: uint16 (vocabularies up to 65,536) or uint32.",
        )
    return out


def registered_model_inputs(models: dict[str, ModelInfo], model_values: dict[str, Any]) -> dict[str, Any]:
    """A registered model: its name, picked from the server's list, and its options as fields."""
    names = list(models)
    given = model_values.get("name")
    key, index = spec_form.key("model.name"), names.index(given) if given in names else 0
    name = st.selectbox(
        "Registered model", names, key=key, **spec_form.initial(key, names[index], index=index),
        format_func=lambda n: model_picker.label(models[n]),
        help="Models registered on this server (its MUTRANSFER_MODEL_DIRS folders and installed packages). "
        "The browser picks from this list only.",
    )
    spec_form.slot(st, "model.name")
    st.caption(f"Source: `{models[name].source}`")
    options = dict(model_values.get("options") or {}) if given == name else {}
    return {"kind": model_picker.CUSTOM, "name": name,
            "options": model_picker.option_inputs(st, spec_form, models[name], options, "model.options")}


def model_inputs(model_values: dict[str, Any]) -> dict[str, Any]:
    """The spec's model block: a zoo architecture and its knobs, or a registered model and its options."""
    registered, registry_error = model_picker.registered()
    if registry_error:
        st.error(f"Registered models are unavailable: {registry_error}", icon=":material/error:")
    kinds = [k for k in MODEL_CLASSES if k != model_picker.CUSTOM] + ([model_picker.CUSTOM] if registered else [])
    given = model_values.get("kind", "mlp")
    if given == model_picker.CUSTOM and model_values.get("name") not in registered:
        st.warning(f"The loaded spec uses the registered model '{model_values.get('name')}', which this server "
                   "does not register: pick another model.", icon=":material/warning:")
    key, index = spec_form.key("model.kind"), kinds.index(given) if given in kinds else 0
    kind = st.selectbox(
        "Architecture", kinds, key=key, **spec_form.initial(key, kinds[index], index=index),
        format_func=lambda k: "Registered model" if k == model_picker.CUSTOM else MODEL_LABELS.get(k, k),
        help="The model zoo, or a model registered on this server. Its width is set by the ladder below.",
    )
    if model_values.get("kind") != kind:
        model_values = {}
    if kind == model_picker.CUSTOM:
        return registered_model_inputs(registered, model_values)
    return {"kind": kind, **spec_form.render(st, MODEL_CLASSES[kind], model_values, path=f"model.{kind}")}


def launch_form(values: dict[str, Any]) -> tuple[str, Any, bool, DeltaGenerator]:
    """The sweep name and the Launch button, in a form (typing a name does not rerun the page).

    Returns:
        (the name, the slot for its errors, whether Launch was pressed, the slot right under
        the button where the launch's outcome is said).
    """
    with st.form("setup_launch"):
        key, given = spec_form.key("name"), str(values.get("name", "sweep"))
        name = st.text_input("Sweep name", key=key, **spec_form.initial(key, given, value=given),
                             help="A label for this sweep in the Runs and Transfer pages.")
        name_slot = st.empty()
        submitted = st.form_submit_button("Launch sweep", type="primary", icon=":material/rocket_launch:")
    return name, name_slot, submitted, st.container()


def plan_summary(spec: SweepSpec) -> None:
    """Before launch: runs, steps, compute, memory and parameters per width of `spec`, and the
    YAML download of that same spec."""
    plan = state.service().estimate(spec)
    # One metric per row: at 1024 px half of this column holds 4 digits at metric size
    # ("36,000" steps and "1.46 T" FLOP were cut to "36,…" and "1.4…" side by side).
    m1 = m2 = m3 = m4 = st.container()
    m1.metric("Runs", f"{plan.n_runs:,}")
    m2.metric("Training steps", f"{plan.total_steps:,}")
    # The unit in the label: "291 GFLOP" does not fit this column at 1024 px.
    m3.metric("Compute (FLOP)", form.si_units(plan.total_flops, "").strip(),
              help=f"{plan.total_flops:.3g} FLOP: about 6 x parameters x tokens, summed over runs.")
    m4.metric("Peak memory / run", f"{plan.peak_memory_bytes / 2**20:,.0f} MiB",
              help="Widest model: weights, gradients, optimizer state and activations.")
    search_form.expected_runs(spec)
    verdict_reach(plan.reach)
    st.markdown("  \n".join(form.widths_lines(plan.widths_frame())))
    st.caption(
        "Parametrizations: " + ", ".join(charts.param_label(p) for p in spec.parametrizations)
        + f". {components.HELP['base_width']}"
    )
    st.download_button(
        "Download spec (YAML)", data=yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False),
        file_name=f"{spec.name}.yaml", mime="application/x-yaml", key="setup_download",
        icon=":material/download:",
    )


def verdict_reach(reach: VerdictReach | None) -> None:
    """Whether the plan can reach a transfer verdict, and the step that would help, before
    the Launch button is pressed (the engine's prediction, `experiments.spec.reach`)."""
    if reach is None:
        return
    text = reach.message + (f" **Next step:** {reach.next_step}." if reach.next_step else "")
    if reach.level == "likely":
        st.success(text, icon=":material/check_circle:")
    else:
        st.warning(text, icon=":material/help:")


def load_row() -> DeltaGenerator:
    """The preset button and the spec uploader, side by side; returns the uploader's column
    (a load that the form cannot show in full is reported there)."""
    load_col, upload_col = st.columns([2, 3])  # the button's label fits at 1024 px
    with load_col:
        if st.button("Load the quick-demo preset", key="setup_load_quick", icon=":material/bolt:"):
            load_values(presets.quick_spec_data())
            st.session_state.pop(LOADED, None)
            st.rerun()
    with upload_col:
        upload_section()
    return upload_col


def task_inputs(task_values: dict[str, Any]) -> dict[str, Any]:
    """The spec's task block: the task, its sequence length (LM tasks) and data (file, tokens)."""
    task_names = TASK_NAMES
    t1, t2 = st.columns(2)
    task_key = spec_form.key("task.name")
    task_index = task_names.index(task_values["name"]) if task_values.get("name") in task_names else 0
    task_name = t1.selectbox(
        "Task", task_names, key=task_key, **spec_form.initial(task_key, task_names[task_index], index=task_index),
        help="digits and synthetic are image classification (MLP, CNN); bytes and synthetic-lm "
        "are byte-level language modelling (GPT, LLaMA); file is your own .txt or .npz and tokens your "
        "own pre-tokenized train.bin/val.bin, both from the allowed data folders.",
    )
    task: dict[str, Any] = {"name": task_name}
    if task_name in LM_TASKS:  # drawn with the spec field's bounds, so any valid value fits
        task["seq_len"] = form.field_input(
            t2, TaskConfig, "seq_len", spec_form.key("task.seq_len"), value=task_values.get("seq_len"),
            label="sequence length", start=spec_form.initial,
        )
    if task_name in ("file", "tokens"):
        task.update(data_inputs(task_name, task_values))
    return task


def parametrization_input(values: dict[str, Any]) -> list[str]:
    """The parametrizations, on a row of their own: two or more chips beside the clear button
    do not fit a third of the form."""
    options = form.literal_options(SweepSpec, "parametrizations")  # the registered tables
    chosen = [p for p in values.get("parametrizations") or [] if p in options]
    key = spec_form.key("parametrizations")
    picked: list[str] = st.multiselect(
        FIELD_LABELS["parametrizations"], options, key=key,
        help=form.field_help(SweepSpec, "parametrizations"), **spec_form.initial(key, chosen, default=chosen),
    )
    spec_form.slot(st, "parametrizations")
    return picked


def spec_inputs(values: dict[str, Any]) -> tuple[dict[str, Any], DeltaGenerator]:
    """Every field of the spec but its name, section by section, starting from `values`.

    Returns:
        (the spec data the widgets hold, the slot under the LR inputs for the grid's preview).
    """
    data: dict[str, Any] = {}
    # --- Model: the kind picks which knobs exist ------------------------------------------
    st.subheader("Model")
    data["model"] = model_inputs(dict(values.get("model") or {}))
    spec_form.slot(st, "model")

    # --- Task -------------------------------------------------------------------------------
    st.subheader("Task")
    data["task"] = task_inputs(dict(values.get("task") or {}))
    spec_form.slot(st, "task")

    # --- Everything else, generated from the spec model -------------------------------------
    st.subheader("Sweep")
    rest = spec_form.render(
        st, SweepSpec, values, skip=("name", "model", "task", "lr_grid", "lrs", "hparam_grid", "depths", "base_depth", "search",
                             "parametrizations", *LADDER_FIELDS),
        labels=FIELD_LABELS,
    )
    data.update(rest)
    data["parametrizations"] = parametrization_input(values)
    data.update(depth_form.depth_inputs(spec_form, values))  # the optional depth ladder
    data.update(batch_form.batch_horizon_inputs(spec_form, values))  # and batch / horizon

    # --- Global knobs to sweep besides the LR (one input per knob of mucore.HParams) --------
    st.markdown("**knobs to sweep** (optional)", help=components.HELP["hparam_grid"])
    data["hparam_grid"] = knob_grid_inputs(values)
    spec_form.slot(st, "hparam_grid")

    # --- Learning rates: a log2 grid (the usual) or an explicit list ------------------------
    st.subheader("Learning rates", help=components.HELP["lr_grid"])
    data.update(lr_inputs(values))
    spec_form.slot(st, "lr_grid")
    spec_form.slot(st, "lrs")
    lr_slot = st.empty()
    data["search"] = search_form.search_inputs(spec_form, values)  # grid or adaptive
    return data, lr_slot


def validate_spec(data: dict[str, Any], name: str, name_slot: DeltaGenerator
                  ) -> tuple[SweepSpec | None, list[str]]:
    """The one spec of this run (what the page shows, estimates, offers for download and
    launches), or None; each error is shown next to its field, the rest under the form.

    Returns:
        (the spec or None, every error message, for the list next to the Launch button).
    """
    spec, errors = launch.validate({**data, "name": name}, in_form_words=True)
    every = [message for messages in errors.values() for message in messages]
    for message in form.pop_errors(errors, "name"):
        name_slot.error(message, icon=":material/error:")
    leftover = spec_form.show_errors(errors)
    for messages in leftover.values():
        for message in messages:
            st.error(message, icon=":material/error:")
    return spec, every


def finish_load(spec: SweepSpec | None, upload_col: DeltaGenerator) -> None:
    """After the run that wrote every widget from a load: stop writing them, and say so if the
    form cannot show part of an uploaded spec (rather than launch another spec)."""
    st.session_state[LOADING] = False  # every widget now holds the loaded value
    loaded = st.session_state.pop(LOADED, None)
    missing = setup_upload.unshown(loaded, spec) if loaded is not None else []
    if missing:  # the form cannot show part of the upload: say so rather than launch another spec
        upload_col.warning("The form does not show all of the uploaded spec; it shows (and would launch) "
                           "other values for: " + ", ".join(missing), icon=":material/warning:")


def launch_spec(spec: SweepSpec | None, errors: list[str], slot: DeltaGenerator) -> None:
    """Launch pressed: launch `spec` and open the Runs page, or say, right under the button,
    why nothing was launched: each field to fix by its label (also marked beside it)."""
    with slot:
        if spec is None:
            st.error("Nothing was launched. Fix these fields (each is also marked in red beside "
                     "it):\n\n" + "\n".join(f"- {message}" for message in errors),
                     icon=":material/block:")
            return
        launch.launch_and_follow(lambda: launch.launch(spec), refused="Nothing was launched: ")


if VALUES not in st.session_state:
    load_values(presets.quick_spec_data())

st.title("Set up a sweep")
st.caption(
    "A sweep trains the same model at several widths over a grid of learning rates, in SP and "
    "in µP, so the Transfer page can show whether the best learning rate moves with width."
)
# --- Load and save ----------------------------------------------------------------------------
upload_col = load_row()

values: dict[str, Any] = st.session_state[VALUES]
# The run after a load writes every widget's state from `values` (see `load_values`).
spec_form = form.ModelForm(PREFIX, state=st.session_state, reload=bool(st.session_state.get(LOADING)))

edit, summary = st.columns([3, 2], gap="large")
with edit:
    data, lr_slot = spec_inputs(values)
with summary:
    st.subheader("Before launch")
    plan_box = st.container()  # filled below, once the spec (name included) is validated
    name, name_slot, submitted, launch_slot = launch_form(values)

spec, spec_errors = validate_spec(data, name, name_slot)
if spec is not None:
    lrs = spec_log2_lrs(spec)
    lr_slot.caption(
        f"{len(lrs)} learning rates: " + ", ".join(f"2^{x:g} = {2.0 ** x:.3g}" for x in lrs)
    )

with plan_box:
    if spec is None:
        st.warning("Fix the fields marked in red to see the plan.", icon=":material/edit:")
    else:
        plan_summary(spec)
    doctor_panel.launch_checks(spec)  # a registered model's static µP checks, before launch

if spec_form.reload:
    finish_load(spec, upload_col)
if submitted:
    launch_spec(spec, spec_errors, launch_slot)
