"""The "PyTorch code" expander every page ends with: the code behind what is on screen."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st


def show(code: Callable[[], str], *, key: str, label: str = "PyTorch code for what is on screen",
         download: tuple[bytes, str] | None = None) -> None:  # fmt: skip
    """An expander with the page's code (copy button included), built from its current settings.

    ``code`` is a function: the code is built, sent and drawn only while the expander is open (opening
    it reruns the page, or its fragment). Closed, every page would still send it and every browser
    highlight it at each rerun: ~160 ms of a browser's CPU per page (issue #12 profile).
    ``download``: ``(file bytes, file name)`` of the audio the code reads, offered beside it."""
    with st.expander(label, icon=":material/code:", key=key, on_change="rerun") as box:
        if not box.open:
            return
        st.caption("Exactly what this page computes, with your current settings: copy it into a notebook and run it.")
        if download is not None:
            data, name = download
            st.download_button(f"Download {name} (the audio this code reads)", data, name, icon=":material/download:",
                               key=f"{key}_audio")  # fmt: skip
        st.code(code(), language="python")
