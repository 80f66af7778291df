"""Who is this browser session: a student's name, and whether it is the teacher.

- **A student's name** is asked once (a friendly box at the top of the sidebar) and kept in the
  address bar as ``?who=Ana``: a reload, a bookmark or a new tab from that address keeps it; no
  cookies, no passwords. Navigating between pages drops query parameters, so :func:`sync` puts it
  back on every page. Runs, experiments and recordings launched by the session carry it as their
  owner.
- **The teacher** is whoever gives the teacher key (:func:`kwscore.classroom.teacher_key`): once in
  the address (``?key=...``, removed from it at once, so it never shows on a projector) or in the
  sidebar's "Teacher key" field. It holds for this browser tab until it is closed or reloaded.
- **Without a name** a session is the anonymous user: it may launch (unless the teacher has saved
  class limits, which need a name to count) and manage the runs that have no owner, as on a laptop
  used alone. Only the owner or the teacher may cancel or delete a named run (kwscore enforces it).
"""

from __future__ import annotations

import streamlit as st

from kwscore import classroom
from kwscore.errors import KwsError

WHO_PARAM = "who"  #: query parameter holding the student's name
KEY_PARAM = "key"  #: query parameter the teacher key may come in once
NAME = "_identity_name"  #: session state: the student's name ("" none)
TEACHER = "_identity_teacher"  #: session state: True once the teacher key was given
FLASH = "_identity_flash"  #: session state: (kind, text) shown once in the sidebar
MAX_NAME_CHARS = 40
TEACHER_PAGE = "teacher"  #: the Teacher page's url path


def check_name(text: object) -> str:
    """A student's name: trimmed, 1–40 printable characters; :class:`KwsError` (one friendly line) otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise KwsError("Type your name (any name your teacher will recognise).")
    name = classroom.check_owner(text)  # trimmed, inner spaces collapsed, no control characters
    if len(name) > MAX_NAME_CHARS:
        raise KwsError(f"That name is too long: at most {MAX_NAME_CHARS} characters, please.")
    return name


def name() -> str:
    """This session's student name, ``""`` when none was given."""
    return st.session_state.get(NAME, "")


def is_teacher() -> bool:
    return bool(st.session_state.get(TEACHER))


def owner() -> str:
    """What a run launched from this session records as its owner."""
    return name()


def _flash(kind: str, text: str) -> None:
    st.session_state[FLASH] = (kind, text)


def set_name(text: object) -> bool:
    """Remember ``text`` as this session's name (validated); False with a message when it is not valid."""
    try:
        new = check_name(text)
    except KwsError as exc:
        _flash("error", str(exc))
        return False
    st.session_state[NAME] = new
    st.query_params[WHO_PARAM] = new
    return True


def sign_in_teacher(key: object) -> bool:
    """Become the teacher for this session if ``key`` is the teacher key."""
    if classroom.is_teacher_key(key):
        st.session_state[TEACHER] = True
        _flash("success", "You are the teacher in this browser tab: the Teacher page is in the menu.")
        return True
    _flash("error", "That is not the teacher key. It is printed by the server when it starts.")
    return False


def sign_out_teacher() -> None:
    st.session_state.pop(TEACHER, None)


def sync() -> None:
    """Call once per script run, before the navigation: read ``?key=`` (then drop it from the
    address) and ``?who=``, and put the name back in the address after a page change."""
    params = st.query_params
    if KEY_PARAM in params:
        key = params.get(KEY_PARAM)
        del params[KEY_PARAM]  # never leave the key in the address bar
        sign_in_teacher(key)
    given = params.get(WHO_PARAM)
    if given is not None and given != name():
        try:
            st.session_state[NAME] = check_name(given)
        except KwsError as exc:
            del params[WHO_PARAM]
            _flash("error", f"The name in the address is not valid: {exc}")
    if name() and params.get(WHO_PARAM) != name():
        params[WHO_PARAM] = name()  # page changes drop query parameters: keep the name in the address


def requested_page() -> str | None:
    """The page path the browser asked for (``"teacher"`` for /teacher), None when unknown."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return ctx.pages_manager.intended_page_name if ctx is not None else None
    except Exception:  # noqa: BLE001 - an internal of Streamlit: without it the page just is not listed
        return None


# -- the sidebar -------------------------------------------------------------------------------------


def _submit_name(key: str) -> None:
    if set_name(st.session_state.get(key, "")):
        st.session_state.pop(key, None)


def _submit_key() -> None:
    sign_in_teacher(st.session_state.get("id_teacher_key", ""))
    st.session_state.pop("id_teacher_key", None)  # the key is not kept in a widget


def sidebar() -> None:
    """The name box (or the name with a way to change it) and the teacher's sign-in, in the sidebar."""
    with st.sidebar:
        flash = st.session_state.pop(FLASH, None)
        if name():
            who, change = st.columns([3, 1], vertical_alignment="center")
            who.markdown(f":material/person: **{name()}**" + (" · :violet-badge[teacher]" if is_teacher() else ""))
            with change.popover(":material/edit:", help="Change your name (your runs keep the name they were "
                                "launched with)."):  # fmt: skip
                with st.form("id_rename_form", border=False):
                    st.text_input("Your name", key="id_rename", max_chars=MAX_NAME_CHARS, value=name())
                    st.form_submit_button("Save", on_click=_submit_name, args=("id_rename",))
        elif is_teacher():  # the teacher needs no name: runs launched here have no owner (never limited)
            st.markdown(":violet-badge[:material/school: teacher] in this tab")
        else:
            with st.container(border=True, key="id_ask"):
                st.markdown("**:material/waving_hand: What's your name?**")
                with st.form("id_name_form", border=False):
                    st.text_input("Your name", key="id_name", max_chars=MAX_NAME_CHARS, placeholder="e.g. Ana",
                                  label_visibility="collapsed")  # fmt: skip
                    st.form_submit_button("That's me", type="primary", on_click=_submit_name, args=("id_name",))
                st.caption("Your runs and recordings carry it, so they are yours. No password: it stays in the "
                           "address (`?who=…`), so bookmark that page.")  # fmt: skip
        if flash:
            getattr(st, flash[0])(flash[1])
        if is_teacher():
            st.button("Leave teacher mode", icon=":material/logout:", on_click=sign_out_teacher, key="id_teacher_out")
        else:
            with st.expander("Teacher", icon=":material/school:"):
                with st.form("id_teacher_form", border=False):
                    st.text_input("Teacher key", type="password", key="id_teacher_key",
                                  help="Printed by the server when it starts (or KWS_TEACHER_KEY).")  # fmt: skip
                    st.form_submit_button("Sign in as teacher", on_click=_submit_key)


@st.cache_resource(show_spinner=False)
def announce_teacher_key() -> str:
    """Print the teacher key on the server's console once per server process; returns it."""
    try:
        key = classroom.teacher_key()
    except (KwsError, OSError) as exc:
        print(f"KWS Studio: no teacher key ({exc}); set KWS_TEACHER_KEY to have one.", flush=True)
        return ""
    print(f"\n  KWS Studio teacher key: {key}\n  Open the dashboard once with ?key={key} (it is removed from the "
          "address at once), or type it in the sidebar under \"Teacher\".\n", flush=True)  # fmt: skip
    return key


# -- permissions -------------------------------------------------------------------------------------


def can_manage(info) -> bool:
    """May this session cancel or delete the run? The teacher: any; a named student: their own; the
    anonymous session: runs without an owner."""
    from kwscore import jobs

    if is_teacher():
        return True
    run_owner = getattr(info, "owner", "") or ""
    if not name():
        return not run_owner
    return jobs.can_manage(info, name(), False)


def jobs_user(info) -> str | None:
    """The ``user`` to pass to :func:`kwscore.jobs.cancel`/``delete`` for this run: the name, or None
    (the operator) for the anonymous session on a run without owner, whose right
    :func:`can_manage` checked."""
    return name() or (None if not (getattr(info, "owner", "") or "") else "")


def cancel(info, **kwargs) -> str:
    """:func:`kwscore.jobs.cancel` as this session (raises :class:`KwsError` when not allowed)."""
    from kwscore import jobs

    if not can_manage(info):
        raise KwsError(f"Only {getattr(info, 'owner', '') or 'the teacher'} or the teacher can cancel this run.")
    return jobs.cancel(info.run_id, user=jobs_user(info), teacher=is_teacher(), **kwargs)


def delete(info) -> None:
    """:func:`kwscore.jobs.delete` as this session (raises :class:`KwsError` when not allowed)."""
    from kwscore import jobs

    if not can_manage(info):
        raise KwsError(f"Only {getattr(info, 'owner', '') or 'the teacher'} or the teacher can delete this run.")
    jobs.delete(info.run_id, user=jobs_user(info), teacher=is_teacher())


def launch_blocked() -> str | None:
    """Why this session may not launch runs now (a friendly line), or None. A class with saved limits
    needs a name to count each student's runs."""
    if is_teacher() or name():
        return None
    if classroom.class_file().is_file():
        return "Tell us your name first (at the top of the sidebar): this class counts each student's runs."
    return None
