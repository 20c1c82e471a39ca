"""The dashboard's pages, in navigation order, each with a stable address (url_path)."""

from __future__ import annotations

import streamlit as st


def pages() -> list[st.Page]:
    """The st.navigation list. url_path = the file's stem: Streamlit's legacy pages/ mode agrees."""
    return [
        st.Page("pages/about.py", title="Start", icon=":material/home:", url_path="about", default=True),
        st.Page("pages/neurons.py", title="FFN neurons", icon=":material/hub:", url_path="neurons"),
        st.Page("pages/vo.py", title="Heads: W_VO", icon=":material/edit_note:", url_path="vo"),
        st.Page("pages/qk.py", title="Heads: W_QK", icon=":material/manage_search:", url_path="qk"),
        st.Page("pages/overview.py", title="Copying scores", icon=":material/grid_on:", url_path="overview"),
        st.Page("pages/search.py", title="Token search", icon=":material/search:", url_path="search"),
        st.Page("pages/annotations.py", title="Annotations", icon=":material/label:", url_path="annotations"),
    ]
