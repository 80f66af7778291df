"""The "PyTorch code" expander every page ends with: the code behind what is on screen."""

from __future__ import annotations

import streamlit as st


def show(code: str, *, key: str, label: str = "PyTorch code for what is on screen") -> None:
    """An expander with ``code`` (copy button included), built from the page's current settings."""
    with st.expander(label, icon=":material/code:", key=key):
        st.caption("Exactly what this page computes, with your current settings: copy it into a notebook and run it.")
        st.code(code, language="python")
