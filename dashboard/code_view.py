"""The "PyTorch code" expander every page ends with: the code behind what is on screen."""

from __future__ import annotations

import streamlit as st


def show(code: str, *, key: str, label: str = "PyTorch code for what is on screen",
         download: tuple[bytes, str] | None = None) -> None:  # fmt: skip
    """An expander with ``code`` (copy button included), built from the page's current settings.
    ``download``: ``(file bytes, file name)`` of the audio the code reads, offered beside it."""
    with st.expander(label, icon=":material/code:", key=key):
        st.caption("Exactly what this page computes, with your current settings: copy it into a notebook and run it.")
        if download is not None:
            data, name = download
            st.download_button(f"Download {name} (the audio this code reads)", data, name, icon=":material/download:",
                               key=f"{key}_audio")  # fmt: skip
        st.code(code, language="python")
