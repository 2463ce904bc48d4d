"""The Export page's calls into `experiments.bundle`, and how a bundle is shown.

Bytes offered for download come from the same serializer the CLI's `export` writes with, so a
bundle downloaded here is identical to `python -m experiments export ... --out b.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.errors import UserError


class ExportError(Exception):
    """No bundle can be exported yet (e.g. transfer not analysable); says why."""


def target_width_choices(store: Any, sweep_id: int) -> list[int]:
    """The sweep's widths and a few doublings beyond the widest (the usual targets)."""
    runs = store.runs_frame(sweep_id)
    if runs.empty:
        return []
    widths = sorted(int(w) for w in runs["width"].unique())
    return [*widths, *(widths[-1] * 2**k for k in range(1, 5))]


def export(store: Any, sweep_id: int, target_width: int, force: bool = False) -> Any:
    """The HP bundle for `target_width` (the same function the CLI's export calls).

    Args:
        force: export although transfer is not confirmed (the bundle records it), like the
            CLI's `--force`.
    """
    from experiments.bundle import export_bundle

    try:
        return export_bundle(store, sweep_id, target_width, force=force)
    except UserError as exc:
        raise ExportError(str(exc)) from exc


def to_json(bundle: Any) -> str:
    """The bundle's JSON text, exactly as the CLI writes it."""
    from experiments.bundle import bundle_json

    return bundle_json(bundle)


def to_yaml_text(bundle: Any) -> str:
    """The bundle's YAML text, exactly as the CLI writes a .yaml bundle."""
    from experiments.bundle import bundle_yaml

    return bundle_yaml(bundle)


def as_dict(bundle: Any) -> dict[str, Any]:
    """The bundle as plain data (for the preview and the YAML form)."""
    return json.loads(to_json(bundle))


def to_yaml(bundle: Any) -> str:
    """The same content as YAML (key order kept), as the CLI writes it."""
    return to_yaml_text(bundle)


def summary(bundle: Any) -> dict[str, str]:
    """The headline facts of a bundle, for metric tiles."""
    data = as_dict(bundle)
    lr = data.get("lr") or (data.get("hparams") or {}).get("lr")
    return {
        "Target width": str(data.get("target_width", "—")),
        "Base width": str(data.get("base_width", "—")),
        "Parametrization": {"mup": "µP", "sp": "SP"}.get(str(data.get("parametrization")), str(data.get("parametrization"))),
        "Learning rate": f"{float(lr):.3g}" if lr is not None else "—",
        "Verdict": {"confirmed": "confirmed", "not_confirmed": "not confirmed"}.get(
            str((data.get("evidence") or {}).get("verdict")), "—")
        + (" (forced)" if (data.get("evidence") or {}).get("forced") else ""),
    }


def load_snippet(filename: str) -> str:
    """How to use a downloaded bundle with mucore."""
    return (
        "import mucore\n"
        "from experiments.bundle import read_bundle, target_model\n\n"
        f'bundle = read_bundle("{filename}")   # checks the hash and the schema\n'
        "model = target_model(bundle)          # the sweep's model family at the target width\n"
        "# or build your own model at the target width with the same parameter names\n"
        "model, optimizer = mucore.apply_bundle(bundle.body(), model)  # µP init, per-layer LRs\n"
        "# then train as usual: loss.backward(); optimizer.step()\n"
    )


def verify_key(sweep_id: int, bundle: Any) -> str:
    """One verification job per (sweep, bundle content)."""
    return f"verify:{sweep_id}:{hash(to_json(bundle))}"


def verify_args(db_path: Path, bundle: Any) -> list[str]:
    """CLI arguments of the verification job (the bundle is written to a temp file first)."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="bundle-", delete=False) as handle:
        handle.write(to_json(bundle))
    return ["verify", handle.name, "--db", str(db_path)]


def verify_table(result: dict[str, Any]) -> pd.DataFrame:
    """The verification result as a two-column table."""
    rows = [(k.replace("_", " "), v) for k, v in result.items() if not isinstance(v, dict | list)]
    return pd.DataFrame(rows, columns=["what", "value"]).astype({"value": str})
