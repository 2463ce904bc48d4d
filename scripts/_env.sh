# Shared by the scripts: make (or reuse) the project's virtual environment with every
# dependency installed. Sourced, not run. Idempotent: a stamp file skips pip when the
# requirement files have not changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MUTRANSFER_VENV:-$ROOT/.venv}"
REQS="${1:-requirements.txt}"
PY_BOOT="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment at $VENV"
  "$PY_BOOT" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(cat "$ROOT/requirements.txt" "$ROOT/$REQS" | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "[setup] installing $REQS (torch is pinned to the CPU wheel)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/$REQS"
  touch "$STAMP"
fi
PY="$VENV/bin/python"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
