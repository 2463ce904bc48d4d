"""The µP doctor: static checks (`diagnose`), model/task probes (`health`), dynamic checks
(`dynamic`, `updates`), the ablation that names a culprit (`ablation`) and the pre-launch check
of a spec (`launch`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.lazy import lazy_exports, type_checking_exports

if TYPE_CHECKING:  # static checkers see the eager imports; run time loads on first use
    from experiments.doctor.diagnose import DoctorReport, run_doctor

_EXPORTS = type_checking_exports(__name__, globals())
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
