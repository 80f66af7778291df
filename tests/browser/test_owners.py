"""Two students and a teacher on one server, in real browser sessions (issue #12):

- the server prints the teacher key; ``?key=`` makes a tab the teacher and leaves the address,
- Ana launches a run from the Train page under her name (``?who=Ana``): it records her as owner,
- Ben, in another session, sees it on the Runs page with its owner but cannot cancel or delete it,
  and his Train page's live panel never offers it,
- the teacher sees both students' runs on the Teacher page, cancels Ana's run (Runs page) and Ben's
  (ticked in the Teacher page's table),
- a student who opens the Teacher page's address is told it is the teacher's.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from kwscore import jobs
from kwscore.recipes import default_config

from .conftest import Server, assert_clean, open_page, wait_idle

pytestmark = pytest.mark.browser
KEY = "browser-teacher-key-42"


def tab(browser):
    pg = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.set_default_timeout(60_000)
    return pg


def pick_run(pg, run_id: str, name: str = "Run") -> None:
    """Choose ``run_id`` in a run select box (labels end with the id's tail: typing filters)."""
    box = pg.get_by_role("combobox", name=name, exact=True)
    box.click()
    box.press_sequentially(run_id.split("-")[-1])
    box.press("Enter")
    wait_idle(pg)
    expect(box).to_have_value(re.compile(run_id.split("-")[-1]))


@pytest.fixture
def classroom_server(browser, embedded_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_TEACHER_KEY", KEY)
    monkeypatch.setenv("KWS_HOME", str(tmp_path / "home"))
    runs = tmp_path / "runs"
    runs.mkdir()
    server = Server(embedded_data_dir, runs)
    yield server
    try:
        for info in jobs.list_runs(runs):
            if info.state in ("queued", "running"):
                jobs.cancel(info.run_id, runs, wait_s=20, teacher=True)
    finally:
        server.stop()
        jobs.stop_worker(runs, stop_runs=True)


def test_a_student_cannot_cancel_anothers_run_the_teacher_can(browser, classroom_server):
    server = classroom_server
    log = (server.runs_dir.parent / f"streamlit-{server.port}.log")
    ana, ben, teacher = tab(browser), tab(browser), tab(browser)

    # -- Ana launches a run from the Train page under her name ------------------------------------------
    open_page(ana, server, "train?who=Ana")
    expect(ana.locator("[data-testid='stSidebar']")).to_contain_text("Ana")
    ana.locator("[data-testid='stRadio'] label", has_text="M5 · raw waveform").first.click()
    wait_idle(ana)
    box = ana.get_by_label("Epochs")
    expect(box).to_have_count(1)
    box.fill("40")  # long enough to still be queued or training while the others look
    box.press("Enter")
    wait_idle(ana)
    ana.locator("[data-testid='stButton'] button", has_text="Launch").filter(visible=True).click()
    wait_idle(ana)
    (ana_run,) = [i for i in jobs.list_runs(server.runs_dir)]
    assert ana_run.owner == "Ana", "the run records who launched it"
    assert "who=Ana" in ana.url, "the name stays in the address"
    expect(ana.get_by_role("button", name="Cancel run")).to_be_visible()  # her own run: she may cancel it

    # Ben's own run, queued from the command line's API under his name
    config = default_config("m5", data=str(server.data_dir / "synthetic"), epochs=40, owner="Ben")
    ben_run = jobs.launch(config, server.runs_dir, start_worker=False)

    # -- Ben sees Ana's run with its owner, without Cancel or Delete --------------------------------------
    open_page(ben, server, "runs?who=Ben")
    pick_run(ben, ana_run.run_id)
    main = ben.locator("[data-testid='stMain']")
    expect(main).to_contain_text("This is Ana's run: only they or the teacher can cancel or delete it.")
    expect(ben.get_by_role("button", name="Delete this run…")).to_have_count(0)
    open_page(ben, server, "train?who=Ben")
    watch = ben.get_by_role("combobox", name="Run to watch")
    expect(watch).to_have_value(re.compile(ben_run.split("-")[-1]))  # his own run, never Ana's
    expect(ben.locator("[data-testid='stMain']")).not_to_contain_text(ana_run.run_id)  # (the list of runs
    # offered is checked under AppTest: tests/test_pages_owners.py)
    with pytest.raises(Exception, match="Only Ana or the teacher"):  # and kwscore refuses it anyway
        jobs.cancel(ana_run.run_id, server.runs_dir, user="Ben")

    # -- a student at the teacher's address is told it is the teacher's -----------------------------------
    open_page(ben, server, "teacher?who=Ben")
    expect(ben.locator("[data-testid='stMain']")).to_contain_text("This page is for the teacher")

    # -- the teacher: the key from the server's console, gone from the address at once -------------------
    assert KEY in log.read_text(), "the server prints the teacher key"
    open_page(teacher, server, f"?key={KEY}")
    assert "key=" not in teacher.url
    teacher.locator("[data-testid='stSidebarNav'] a", has_text="Teacher").click()
    wait_idle(teacher)
    expect(teacher.locator("[data-testid='stMain'] h1")).to_have_text("Teacher")
    expect(teacher.locator("[data-testid='stMetric']", has_text="Students with runs")).to_contain_text("2")
    grid = teacher.locator("[data-testid='stDataFrame']").first
    expect(grid).to_contain_text("Ana")
    expect(grid).to_contain_text("Ben")

    # the teacher cancels (or, queued, deletes) Ana's run from the Runs page (through the menu: a new
    # address would be a new session, which is not the teacher until it gives the key again)
    teacher.locator("[data-testid='stSidebarNav'] a", has_text="Runs").click()
    wait_idle(teacher)
    pick_run(teacher, ana_run.run_id)
    teacher.get_by_role("button", name="Delete this run…").click()
    dialog = teacher.get_by_role("dialog")
    dialog.get_by_role("button", name=re.compile("^(Cancel the run|Delete)$")).click()
    wait_idle(teacher)
    deadline = time.time() + 30
    while time.time() < deadline:
        state = jobs.run_info(ana_run.run_id, server.runs_dir).state if (server.runs_dir / ana_run.run_id).exists() else "deleted"
        if state in ("cancelled", "deleted"):
            break
        time.sleep(0.3)
    assert state in ("cancelled", "deleted"), state

    # back on the Teacher page, Ben's run (the only one left queued or training: the first row) is
    # ticked and cancelled from the class table
    teacher.locator("[data-testid='stSidebarNav'] a", has_text="Teacher").click()
    wait_idle(teacher)
    grid = teacher.locator("[data-testid='stDataFrame']").first
    expect(grid).to_contain_text("Ben")
    grid.click(position={"x": 18, "y": 52})  # the first row's tick box (the grid is drawn on a canvas)
    wait_idle(teacher)
    teacher.get_by_role("button", name=re.compile("^Cancel 1 run")).click()
    wait_idle(teacher)
    deadline = time.time() + 30
    while jobs.run_info(ben_run, server.runs_dir).state != "cancelled" and time.time() < deadline:
        time.sleep(0.3)
    assert jobs.run_info(ben_run, server.runs_dir).state == "cancelled"
    for pg in (ana, ben, teacher):
        assert_clean(pg)
        pg.context.close()
