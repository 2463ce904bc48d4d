#!/usr/bin/env bash
# Quick start, command 2: install what is missing (Python packages, Debian's chromium for the
# browser test) and run the whole test suite, slow and browser tests included. Extra arguments
# go to pytest, e.g. `-m "not slow"` or `-k store`.
set -euo pipefail
source "$(dirname "$0")/_env.sh" requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "[setup] installing Debian's chromium for the browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "[setup] chromium missing: run 'sudo apt-get install -y chromium' (browser test needs it)" >&2
  fi
fi
exec "$PY" -m pytest "$@"
