"""One exception type for mistakes a person can fix.

Every check at the kwscore boundary raises :class:`KwsError` with a sentence that says what is
wrong *and* what to do about it. The CLI prints it on one line, the dashboard shows it in an
``st.error`` box; neither shows a traceback.
"""


class KwsError(ValueError):
    """A friendly, actionable error (bad parameter, missing dataset, corrupt file...)."""
