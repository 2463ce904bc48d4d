"""How the Export page shows a bundle: headline tiles, the load snippet, the verification job.

The bundle itself comes from `Service.export`, and the bytes offered for download from
`Service.bundle_json`/`bundle_yaml`, the serializers the CLI's `export` writes with, so a bundle
downloaded here is identical to `python -m experiments export ... --out b.json`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import BaseModel

from experiments.spec.sweep import parametrization_short_label

if TYPE_CHECKING:  # pragma: no cover - typing only (the bundle's module imports torch)
    from experiments.service import HPBundle, Service, VerifyReport

VERDICT_WORDS = {"confirmed": "confirmed", "not_confirmed": "not confirmed",
                 "inconclusive": "inconclusive"}
# The loss columns that rank learning rates, in the page's words.
LOSS_WORDS = {"final_train_loss": "train loss", "final_val_loss": "validation loss"}
# The widest default target, in multiples of the sweep's widest trained width: further out the
# extrapolation is the least certain and a verification the most expensive.
MAX_DEFAULT_FACTOR = 8
# The default target: one doubling past the sweep, the cheapest width that still tests transfer
# beyond what was trained (the picker offers up to TARGET_DOUBLINGS doublings).
DEFAULT_FACTOR = 2
FORCE_LABEL = "Export anyway"


def default_target(widths: list[int], trained: list[int]) -> int | None:
    """The target width the page starts on: `DEFAULT_FACTOR` x the widest trained width when
    offered, never beyond `MAX_DEFAULT_FACTOR` x (None: nothing offered); a sweep of one width
    (a depth, batch or horizon ladder) says nothing about other widths: that width."""
    if not widths:
        return None
    if len(trained) == 1:
        return trained[0]
    widest = max(trained) if trained else max(widths)
    cap = [w for w in widths if w <= MAX_DEFAULT_FACTOR * widest]
    wanted = [w for w in cap if w <= DEFAULT_FACTOR * widest]
    return max(wanted or cap or widths[:1])


def web_words(message: str) -> str:
    """An engine message in the page's words: the CLI's `--force` is the checkbox here."""
    return (message.replace("pass --force to export anyway", f'tick "{FORCE_LABEL}" below')
            .replace("with --force", f'with "{FORCE_LABEL}"')
            .replace("--force", f'"{FORCE_LABEL}"'))


def summary(bundle: HPBundle) -> dict[str, str]:
    """The headline facts of a bundle, for metric tiles."""
    evidence = bundle.evidence
    return {
        "Target width": str(bundle.target_width),
        "Base width": str(bundle.base_width),
        # The table's short label: the charts' "SP (standard)" does not fit a metric tile.
        "Parametrization": parametrization_short_label(bundle.parametrization),
        "Learning rate": f"{bundle.lr:.3g}",
        "LR chosen by": LOSS_WORDS.get(evidence.loss, evidence.loss.replace("_", " ")),
        "Verdict": VERDICT_WORDS.get(evidence.verdict, "—") + (" (forced)" if evidence.forced else ""),
    }


def ladder_verdict_words(bundle: HPBundle) -> list[str]:
    """One sentence per ladder the bundle's evidence carries (depth, batch, horizon): its
    verdict, and for batch and horizon the rule the LR was moved by; and, for a sweep of one
    width, that its width verdict says nothing about this bundle's ladders."""
    out: list[str] = []
    if len(bundle.spec.get("widths") or []) == 1 and bundle.target_width == bundle.base_width:
        out.append("The sweep trained one width: it measures transfer along its ladders, not "
                   "across widths, so its width verdict does not bear on this bundle.")
    ev = bundle.evidence
    for axis, word in (("depth", "Depth"), ("batch", "Batch size"), ("horizon", "Horizon")):
        section = getattr(ev, axis, None)
        if not section:
            continue
        words = f"{word} verdict: **{VERDICT_WORDS.get(section.get('verdict'), '—')}**"
        moved = (bundle.scaling or {}).get(axis) if axis != "depth" else None
        if moved:
            how = ("the exponent the ladder measured" if moved.get("chosen") == "fitted"
                   else f"rule {moved['rule']}")
            exp = moved.get("lr_exponent")
            words += (f"; LR moved by {how}" + ("" if exp is None else f" (k^{exp:+.2f})")
                      + f" at k = {moved['k']:g}")
        out.append(words + ".")
    return out


def forecast_words(bundle: HPBundle) -> str:
    """The best-loss forecast the bundle records at its target, in one line (or why none)."""
    ev = bundle.evidence
    recorded = (ev.forecast or {}).get(bundle.parametrization)
    if recorded is None:
        return "No loss forecast in this bundle."
    if "refused" in recorded:
        return f"No loss forecast: {recorded['refused']}."
    row = ev.forecast_at_target(bundle.parametrization, bundle.target_width)
    if row is None:
        return f"No loss forecast at width {bundle.target_width}."
    loss = "validation" if ev.loss == "final_val_loss" else "train"
    ci = ("" if row.get("ci_low") is None or row.get("ci_high") is None
          else f" (95% interval [{row['ci_low']:.4g}, {row['ci_high']:.4g}])")
    return (f"Forecast best {loss} loss at width {bundle.target_width}: {row['loss']:.4g}{ci}, "
            "from the power law fitted to the sweep's best losses.")


def load_snippet(filename: str, registered: str | None = None) -> str:
    """How to use a downloaded bundle with mucore (`registered`: the registered model's name,
    which the loading process must find again through MUTRANSFER_MODEL_DIRS)."""
    env = ("" if registered is None else
           f"# The model is the registered model {registered!r}: set MUTRANSFER_MODEL_DIRS to the\n"
           f"# folder holding {registered}.py before running this (as for the dashboard).\n")
    return env + (
        "import mucore\n"
        "from experiments.bundle.build import read_bundle, target_model\n\n"
        f'bundle = read_bundle("{filename}")   # checks the hash and the schema\n'
        "model = target_model(bundle)          # the sweep's model family at the target width\n"
        "# or build your own model at the target width with the same parameter names\n"
        "model, optimizer = mucore.apply_bundle(bundle.body(), model)  # µP init, per-layer LRs\n"
        "# then train as usual: loss.backward(); optimizer.step()\n"
    )


def verify_key(sweep_id: int, bundle: HPBundle) -> str:
    """One verification job per (sweep, bundle content): the content hash names the content."""
    return f"verify:{sweep_id}:{bundle.content_hash}"


def registered_name(bundle: HPBundle) -> str | None:
    """The registered model's name when the bundle's model is one (None: a zoo model)."""
    model = bundle.spec.get("model", {})
    return str(model.get("name")) if isinstance(model, dict) and model.get("kind") == "custom" else None


def verify_args(service: Service, bundle: HPBundle) -> list[str]:
    """CLI arguments of the verification job (the bundle is written to a temp file first; the
    job adds its progress file)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="bundle-", delete=False) as handle:
        handle.write(service.bundle_json(bundle))
    return service.verify_command(Path(handle.name))


def verify_table(report: VerifyReport) -> pd.DataFrame:
    """The verification report's single-valued fields (in the report's field order; the
    bracket points and lists left out) as a two-column table."""
    rows = [(name.replace("_", " "), value) for name, value in report
            if not isinstance(value, BaseModel | list)]
    return pd.DataFrame(rows, columns=["what", "value"]).astype({"value": str})
