"""The "PyTorch code" expander every page ends with: the code behind what is on screen."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st


def show(code: str | Callable[[], str], *, key: str, label: str = "PyTorch code for what is on screen",
         download: tuple[bytes, str] | None = None) -> None:  # fmt: skip
    """An expander with ``code`` (copy button included), built from the page's current settings.
    ``download``: ``(file bytes, file name)`` of the audio the code reads, offered beside it.
    ``code`` as a function: built and sent only while the expander is open (opening it reruns the
    page, or its fragment), so that a page that reruns often does not redraw hidden code each time."""
    lazy = callable(code)
    with st.expander(label, icon=":material/code:", key=key, on_change="rerun" if lazy else "ignore") as box:
        if lazy and not box.open:
            return
        st.caption("Exactly what this page computes, with your current settings: copy it into a notebook and run it.")
        if download is not None:
            data, name = download
            st.download_button(f"Download {name} (the audio this code reads)", data, name, icon=":material/download:",
                               key=f"{key}_audio")  # fmt: skip
        st.code(code() if lazy else code, language="python")
