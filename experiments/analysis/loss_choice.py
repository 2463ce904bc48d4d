"""Which final loss the verdict, the regret and the forecast read.

Rule: the loss that matters is the one on held-out data. Where the task has a validation split
(every run that finished training has a finite `final_val_loss`), "auto", the default of the
CLI, the service and the pages, reads the validation loss; otherwise the train loss. Why: on
small tasks the train loss of the best runs goes to ~0 (the digits MLP: 0.0022 at width 1024),
where a relative regret is meaningless (121% of 0.0022) and the ranking of LRs rewards
memorising. `train` / `val` (or the column names) choose explicitly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.states import RunState

TRAIN_LOSS = "final_train_loss"
VAL_LOSS = "final_val_loss"
# What a user may pass (CLI `--loss`, the page's switch, `analyze(loss=...)`).
LOSS_CHOICES = ("auto", "train", "val", TRAIN_LOSS, VAL_LOSS)
_ALIASES = {"train": TRAIN_LOSS, "val": VAL_LOSS}


def has_val_split(runs: pd.DataFrame) -> bool:
    """Whether the runs' task has a validation split: a `final_val_loss` column, finite for
    every run that trained to the end with a finite train loss (and there is such a run)."""
    if VAL_LOSS not in runs.columns or len(runs) == 0:
        return False
    done = runs["state"].astype(str) == RunState.DONE
    train = pd.to_numeric(runs.get(TRAIN_LOSS, pd.Series(np.nan, index=runs.index)),
                          errors="coerce")
    trained = done & np.isfinite(train.to_numpy(dtype=float, na_value=np.nan))
    if not trained.any():
        return False
    val = pd.to_numeric(runs.loc[trained, VAL_LOSS], errors="coerce")
    return bool(np.isfinite(val.to_numpy(dtype=float, na_value=np.nan)).all())


def resolve_loss(runs: pd.DataFrame, loss: str) -> tuple[str, str]:
    """(the loss column, why it was chosen, in words) for a `LOSS_CHOICES` value.

    Raises:
        ValueError: `loss` is not one of `LOSS_CHOICES`.
    """
    if loss not in LOSS_CHOICES:
        raise ValueError(f"loss must be one of {', '.join(LOSS_CHOICES)}, got {loss!r}: use "
                         "'val' (held-out loss) or 'train'")
    if loss != "auto":
        column = _ALIASES.get(loss, loss)
        return column, f"{loss_words(column)} loss, as chosen"
    if has_val_split(runs):
        return VAL_LOSS, "validation loss: the task has a validation split (the default)"
    return TRAIN_LOSS, "train loss: the runs have no validation loss (the default without one)"


def loss_words(column: str) -> str:
    """"validation" or "train": how a loss column is named in sentences."""
    return "validation" if column == VAL_LOSS else "train"


def loss_short(column: str) -> str:
    """"val" or "train": the `loss_used` value of the JSON documents."""
    return "val" if column == VAL_LOSS else "train"
