#!/usr/bin/env bash
# Lint and type-check in one command: ruff (style, imports, bugbear) then mypy.
set -euo pipefail
source "$(dirname "$0")/_env.sh" requirements-dev.txt
"$PY" -m ruff check mucore experiments app tests bench examples
"$PY" -m mypy
