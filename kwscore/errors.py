"""One exception type for mistakes a person can fix.

Every check at the kwscore boundary raises :class:`KwsError` with a sentence that says what is
wrong *and* what to do about it. The CLI prints it on one line, the dashboard shows it in an
``st.error`` box; neither shows a traceback.
"""


class KwsError(ValueError):
    """A friendly, actionable error (bad parameter, missing dataset, corrupt file...)."""


def check_known_keys(cls: type, data: dict, what: str) -> None:
    """Refuse the keys of ``data`` that are not fields of the dataclass ``cls`` (a ``from_dict``
    check): ``what`` names one key in the message, e.g. ``"run setting"``."""
    from dataclasses import fields

    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise KwsError(
            f"Unknown {what}(s) {unknown}. Known {what}s: {sorted(known)}. "
            "Check the spelling, or remove them from the saved config."
        )
