#!/usr/bin/env bash
# Quick start, command 1: install what is missing and start the dashboard on
# http://127.0.0.1:8501 (DuckDB store in data/, local executor). Extra arguments go to
# `streamlit run`, e.g. `--server.port 8600`.
set -euo pipefail
source "$(dirname "$0")/_env.sh" requirements.txt
mkdir -p data
exec "$PY" -m streamlit run app/main.py "$@"
