"""Names, the teacher and who may do what, under AppTest on the real app (dashboard/app.py):

- a student gives a name once; it is validated and kept in the address (``?who=``) across pages,
- the teacher key (``?key=`` or the sidebar) makes a session the teacher and leaves the address,
- Runs / Train / Try it: every run shows its owner, "mine" first; Cancel and Delete only for the
  owner or the teacher; the live panel never offers another student's run,
- the Teacher page: everyone's runs with owner and place in the queue, cancel any, the limits form
  (saved in class.json) and its effect on a student's launch.

Runs are made with :func:`kwscore.jobs.create_run` (queued, with an owner) and no worker starts:
nothing trains here, so these tests take seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kwscore import classroom, jobs
from kwscore.recipes import default_config

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
KEY = "test-teacher-key-123"


@pytest.fixture
def runs_dir(kws_env, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KWS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KWS_TEACHER_KEY", KEY)
    monkeypatch.delenv("KWS_QUEUE_URL", raising=False)
    monkeypatch.setattr(jobs, "ensure_worker", lambda *a, **k: 1)  # queued runs stay queued: nothing trains
    monkeypatch.setattr(jobs, "revive_worker", lambda *a, **k: None)
    root = Path(os.environ["KWS_RUNS_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    return root


def queued_run(owner: str, name: str = "") -> str:
    """A queued run of ``owner`` (no worker picks it up here)."""
    data = str(Path(os.environ["KWS_DATA_DIR"]) / "synthetic")
    config = default_config("m5", data=data, epochs=1, owner=owner, name=name or f"{owner}'s run")
    return jobs.create_run(config)


def session(page: str | None = None, **params: str) -> AppTest:
    """A fresh browser session (``params``: its address's query parameters), on ``page``."""
    at = AppTest.from_file(APP, default_timeout=90)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(f"../pages/{page}.py").run()
        assert not at.exception, at.exception
    return at


def sidebar_text(at: AppTest) -> str:
    return " ".join(m.value for m in at.sidebar.markdown)


def everything(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.info, *at.error, *at.warning, *at.success])


# -- identity ---------------------------------------------------------------------------------------


def test_a_name_is_asked_once_validated_and_kept_in_the_address(runs_dir):
    at = session()
    assert any("What's your name?" in m.value for m in at.sidebar.markdown)
    at.text_input(key="id_name").input("   ")
    at.button(key="FormSubmitter:id_name_form-That's me").click().run()
    assert "who" not in at.query_params
    assert any("Type your name" in e.value for e in at.sidebar.error), [e.value for e in at.sidebar.error]

    at.text_input(key="id_name").input("  Ana   María ")
    at.button(key="FormSubmitter:id_name_form-That's me").click().run()
    assert not at.exception, at.exception
    assert at.query_params["who"] == "Ana María"  # trimmed, inner spaces collapsed
    assert "Ana María" in sidebar_text(at)
    assert not [t for t in at.text_input if t.key == "id_name"], "asked once"

    at.switch_page("../pages/runs.py").run()  # another page: the name stays in the address
    assert at.query_params["who"] == "Ana María" and "Ana María" in sidebar_text(at)

    again = session(who="Ana María")  # a reload of that address
    assert "Ana María" in sidebar_text(again)
    for bad_name, why in (("\x07bell", "control characters"), ("x" * 41, "too long")):
        bad = session(who=bad_name)  # an address typed by hand
        assert "who" not in bad.query_params
        assert any("not valid" in e.value and why in e.value for e in bad.sidebar.error), [e.value for e in bad.sidebar.error]


def test_the_teacher_key_makes_a_teacher_and_leaves_the_address(runs_dir, capsys):
    wrong = session(key="not-it")
    assert "key" not in wrong.query_params
    assert any("not the teacher key" in e.value for e in wrong.sidebar.error)

    teacher = session(key=KEY)
    assert "key" not in teacher.query_params, "the key never stays in the address bar"
    teacher.switch_page("../pages/teacher.py").run()
    assert not teacher.exception, teacher.exception
    assert [t for t in teacher.title if t.value == "Teacher"]
    assert not any("This page is for the teacher" in i.value for i in teacher.info)

    by_form = session()  # or typed into the sidebar's password field
    by_form.text_input(key="id_teacher_key").input(KEY)
    by_form.button(key="FormSubmitter:id_teacher_form-Sign in as teacher").click().run()
    assert any("You are the teacher" in s.value for s in by_form.sidebar.success)
    by_form.switch_page("../pages/teacher.py").run()
    assert [t for t in by_form.title if t.value == "Teacher"]


def test_a_student_cannot_reach_the_teacher_page(runs_dir):
    queued_run("Ana")
    at = session(who="Ben")
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not in a student's navigation
        at.switch_page("../pages/teacher.py")
    teacher = session("teacher", key=KEY)
    teacher.button(key="id_teacher_out").click().run()  # leaving teacher mode leaves the page too
    assert not teacher.exception, teacher.exception
    assert not [t for t in teacher.title if t.value == "Teacher"]
    assert not [b for b in teacher.button if b.key in ("teacher_cancel", "teacher_clear")]


# -- who may do what ----------------------------------------------------------------------------------


def test_runs_page_shows_owners_mine_first_and_gates_delete(runs_dir):
    ana = queued_run("Ana")
    ben = queued_run("Ben")  # newer: first in a plain listing
    at = session("runs", who="Ana")
    table = at.dataframe[0].value
    assert list(table["run id"][:2]) == [ana, ben], "Ana's run first for Ana"
    assert list(table["owner"][:2]) == ["Ana (you)", "Ben"]
    statuses = list(table["status"][:2])
    assert all(s.startswith("waiting: ") and "in line" in s for s in statuses), statuses
    assert not any("0 ahead" in s for s in statuses)

    at.selectbox(key="runs_detail").set_value(ana).run()
    assert [b for b in at.button if b.key == "runs_delete"], "the owner can delete"
    at.selectbox(key="runs_detail").set_value(ben).run()
    assert not [b for b in at.button if b.key == "runs_delete"], "not someone else's run"
    assert "only they or the teacher" in everything(at)

    with pytest.raises(Exception, match="Only Ben or the teacher"):  # and kwscore refuses it anyway
        jobs.delete(ben, user="Ana")
    teacher = session("runs", key=KEY)
    teacher.selectbox(key="runs_detail").set_value(ben).run()
    teacher.button(key="runs_delete").click().run()
    teacher.button(key="runs_delete_yes").click().run()
    assert not teacher.exception, teacher.exception
    assert not (runs_dir / ben).exists() and (runs_dir / ana).exists()


def test_live_panel_offers_only_this_students_runs(runs_dir):
    ana = queued_run("Ana")
    at = session("train", who="Ben")
    watch = [s for s in at.selectbox if s.key == "train_watch"]
    assert not watch or ana not in watch[0].options, "a new session never sees another student's run"
    assert not [b for b in at.button if b.key == f"tr_cancel_{ana}"]

    mine = session("train", who="Ana")
    assert mine.selectbox(key="train_watch").value == ana
    assert [b for b in mine.button if b.key == f"tr_cancel_{ana}"], "the owner can cancel"
    progress = " ".join(p.proto.text for p in mine.get("progress"))
    assert "Waiting: next in line" in progress and "0 ahead" not in progress, progress
    mine.button(key=f"tr_cancel_{ana}").click().run()
    assert jobs.run_info(ana).state == "cancelled"


def test_teacher_page_lists_everyone_sets_limits_and_clears_the_class(runs_dir):
    ana = queued_run("Ana")
    queued_run("Ben")
    ben2 = queued_run("Ben")
    at = session("teacher", key=KEY)
    table = at.dataframe[0].value
    assert set(table["owner"]) == {"Ana", "Ben"}
    order = list(table["run id"])  # the queue in the order the workers take it: fair across students
    assert order.index(ana) < order.index(ben2) and list(table["queue"]) == [1, 2, 3]
    assert all(s.startswith("waiting") for s in table["status"])

    # the limits: saved in class.json, read by every page and every launch
    at.number_input(key="tl_queued").set_value(1)
    at.number_input(key="tl_epochs").set_value(3)
    at.toggle(key="tl_hide").set_value(True)
    at.button(key="tl_save").click().run()
    assert not at.exception, at.exception
    saved = json.loads(classroom.class_file().read_text())
    assert saved["max_queued_per_student"] == 1 and saved["max_epochs"] == 3 and saved["hide_answers"] is True
    assert classroom.load_limits().max_epochs == 3

    # a student over the limit gets the friendly message, not a run
    student = session("train", who="Ana")
    student.radio(key="tr_model").set_value("m5").run()
    student.number_input(key="tr_m5_epochs").set_value(2).run()
    before = {i.run_id for i in jobs.list_runs()}
    student.button(key="tr_launch").click().run()
    assert not student.exception, student.exception
    assert any("already has 1 run" in e.value for e in student.error), [e.value for e in student.error]
    assert {i.run_id for i in jobs.list_runs()} == before, "no run was made"
    # the worksheet hides its answers from students, not from the teacher
    sheet = session("worksheet", who="Ana")
    assert any("hidden the answers" in i.value for i in sheet.info)
    assert not [t for t in sheet.toggle if t.key == "ws_hide"]

    # clear the class's runs, with confirmation
    at.button(key="teacher_clear").click().run()
    assert (runs_dir / ana).exists(), "nothing goes before the confirmation"
    at.checkbox(key="teacher_clear_sure").check().run()
    at.button(key="teacher_clear_yes").click().run()
    assert not at.exception, at.exception
    assert jobs.list_runs() == []
    assert any("Cleared 3 run(s)" in s.value for s in at.success), [s.value for s in at.success]


def test_queue_words():
    from dashboard import run_views

    assert [run_views.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 103)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "103rd"]  # fmt: skip
    assert run_views.queue_text(jobs.QueueEntry("r", "Ana", 3, 240.0)) == "3rd in line, starts in about 4 min"
    assert run_views.queue_text(jobs.QueueEntry("r", "Ana", 1, 0.0)) == "next in line, starts in under a minute"
    assert run_views.queue_text(jobs.QueueEntry("r", "Ana", 2, None)) == "2nd in line"
    assert run_views.queue_text(jobs.QueueEntry("r", "", 9, 3 * 3600.0)).endswith("starts in about 3 h 00 min")


def test_the_ready_model_is_shown_as_kws_studios_and_a_nameless_run_as_no_name(runs_dir, monkeypatch):
    from kwscore import pretrained

    monkeypatch.setenv("KWS_READY_MODEL", "1")
    (ready,) = pretrained.install(runs_dir)
    nameless = queued_run("")
    at = session("runs", who="Ana")
    owners = dict(zip(at.dataframe[0].value["run id"], at.dataframe[0].value["owner"], strict=True))
    assert owners[ready] == "KWS Studio (ready model)" and owners[nameless] == "no name"
    at.selectbox(key="runs_detail").set_value(ready).run()
    assert not [b for b in at.button if b.key == "runs_delete"], "a student cannot delete the ready model"
    assert "This run is no student's (KWS Studio (ready model)): only the teacher" in everything(at)
    teacher = session("teacher", key=KEY)
    owners = " ".join(str(v) for d in teacher.dataframe for v in d.value.get("owner", []))
    assert "KWS Studio (ready model)" in owners and "no name" in owners
