"""The µTransfer dashboard: `streamlit run app/main.py`.

A thin layer over `experiments.service`: each page calls the service and draws. Long
work (training, coordinate checks, verification) runs in the engine's background runner
process, never in a Streamlit thread.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run app/main.py` puts app/ (not the project root) on sys.path; the pages import
# `app.*` and `experiments.*`, so make the root importable whatever the working directory.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import nav  # noqa: E402

st.set_page_config(page_title="µTransfer", page_icon="📐", layout="wide")
navigation = st.navigation(nav.all_pages())
navigation.run()
