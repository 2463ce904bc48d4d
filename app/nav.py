"""The page registry: one `st.Page` per view, shared by main.py and `st.page_link`/`switch_page`.

Views live in `app/views/` (not `app/pages/`: once `st.navigation` runs, Streamlit ignores a
`pages/` folder, and the name would only mislead).
"""

from __future__ import annotations

import streamlit as st

# (file, title, icon, url path); order is the sidebar order.
PAGES = (
    ("home.py", "Overview", ":material/home:", "home"),
    ("setup.py", "Setup", ":material/tune:", "setup"),
    ("runs.py", "Runs", ":material/monitoring:", "runs"),
    ("transfer.py", "Transfer", ":material/insights:", "transfer"),
    ("coord_check.py", "Coord check", ":material/straighten:", "coord-check"),
    ("doctor.py", "µP doctor", ":material/healing:", "doctor"),
    ("inspector.py", "µP inspector", ":material/table_view:", "inspector"),
    ("export.py", "Export", ":material/ios_share:", "export"),
)


def page(file: str) -> str:
    """A view's path relative to main.py, as `st.Page`, `st.switch_page` and `st.page_link` take it."""
    return f"views/{file}"


def all_pages() -> list[st.Page]:
    """Every page, the first being the default (the overview)."""
    return [
        st.Page(page(file), title=title, icon=icon, url_path=url, default=(i == 0))
        for i, (file, title, icon, url) in enumerate(PAGES)
    ]
