"""The web view in a real browser (headless Chromium) against a real ``remit ui`` and a
real run: nodes appear and change status live, a denial's reason shows in a node's
detail, a paused call is approved from the page and the run finishes; and a tree of
1,500 tasks draws only what is visible, expands, and finds a step by its id.

Each test saves screenshots in its tmp dir (docs/ui-tree.png and docs/ui-detail.png
were taken this way). Timings are printed, never asserted.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from remit import Runtime
from remit.journal import SQLiteJournal
from tests.ui.conftest import start_run, wait_for
from tests.ui.ui_agent import AGENT, remit

pytestmark = pytest.mark.browser

WIDTH, LEAVES = 10, 20  # 1 + 10 + 200 = 211 tasks


def _approval_row(journal: Path, run_id: str) -> Any:
    with SQLiteJournal(journal) as store:
        return next((s for s in store.steps(run_id) if s.kind == "approval"), None)


def test_a_live_run_changes_on_the_page_shows_its_denial_and_is_approved_from_it(
    tmp_path: Path, browser: Any, ui_server: Any
) -> None:
    journal, gate = tmp_path / "j.db", tmp_path / "gate"
    run = start_run(tmp_path, journal, "live",
                    {"width": WIDTH, "leaves": LEAVES, "gate": str(gate)})  # fmt: skip
    try:
        wait_for(lambda: journal.exists() and _approval_row(journal, "live"), "the paused call")
        server = ui_server(journal)
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        t0 = time.perf_counter()
        page.goto(server.url + "#/run/live")
        page.wait_for_selector(".row[data-status=running]")
        print(f"\nlive tree first drawn in {time.perf_counter() - t0:.2f}s")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        # the paused call is listed, with what it asks and why
        page.wait_for_selector("#approvals .ask")
        asked = page.inner_text("#approvals")
        assert "pay" in asked and "large payment" in asked and "mallory" in asked
        page.screenshot(path=str(tmp_path / "ui-tree.png"))
        # a leaf that waits at the gate, found by its goal: running
        page.fill("#search", "leaf 1.3")
        page.press("#search", "Enter")
        page.click("#results li[data-id]:not([data-step])")
        leaf = page.get_attribute("#detail h2[data-task]", "data-task")
        assert leaf is not None
        row = f'.row[data-id="{leaf}"]'
        assert page.get_attribute(row, "data-status") in ("running", "pending")
        # the leaves go on: the row turns done, live, in the same document
        gate.touch()
        page.wait_for_selector(f"{row}[data-status=done]", timeout=60_000)
        assert page.evaluate("window.__sameDocument") is True
        # the denied call: found by its tool, its reason in the node's detail
        page.fill("#search", "delete_everything")
        page.press("#search", "Enter")
        page.click("#results li[data-step]")
        page.wait_for_selector("#detail .denial")
        reason = page.inner_text("#detail .denial")
        assert "delete_everything" in reason and "not granted" in reason
        page.screenshot(path=str(tmp_path / "ui-detail.png"))
        # approve from the page, with a reason: the run carries on to its end
        page.fill("#approvals .reason", "checked with finance")
        page.click("#approvals button.approve")
        root = page.eval_on_selector(".row[data-id]", "e => e.dataset.id")
        page.wait_for_selector(f'.row[data-id="{root}"][data-status=done]', timeout=60_000)
        page.wait_for_selector("#approvals .ask", state="detached")
        assert page.evaluate("window.__sameDocument") is True
        page.screenshot(path=str(tmp_path / "ui-done.png"))
        assert not errors, errors
    except BaseException:
        run.kill()  # it would wait for the person until its deadline
        raise
    finally:
        gate.touch()
        _out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    row = _approval_row(journal, "live")
    answer = json.loads(row.output)
    assert row.status == "ok" and answer["approved"] is True
    assert answer["reason"] == "checked with finance" and answer["by"].endswith("(web)")
    with SQLiteJournal(journal) as store:
        end = store.get_step("live", f"{row.task_id}:end")
    assert end is not None and json.loads(end.output or "null") == "paid 5000 to mallory"


def test_a_tree_of_1500_tasks_draws_what_is_visible_expands_and_finds_a_step(
    tmp_path: Path, browser: Any, ui_server: Any
) -> None:
    journal = tmp_path / "big.db"
    box: dict[str, Any] = {}

    def work() -> None:  # a thread: Playwright's sync API holds this thread's event loop
        rt = Runtime(journal=journal, agent=AGENT, durability="normal")
        try:
            box["run"] = rt.run("a big tree", remit=remit(), run_id="big",
                                inputs={"width": 20, "leaves": 74, "ask": False})  # fmt: skip
        finally:
            rt.close()

    t = threading.Thread(target=work)
    t.start()
    t.join(timeout=120)
    done = box["run"]
    assert done.ok and done.tasks == 1501
    with SQLiteJournal(journal) as store:  # a step deep down the last branch
        step = next(s for s in reversed(list(store.steps("big"))) if s.kind == "tool")
    server = ui_server(journal)
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    t0 = time.perf_counter()
    page.goto(server.url + "#/run/big")
    page.wait_for_selector(".row[data-id]")
    first_paint = time.perf_counter() - t0
    drawn = page.locator("#rows .row").count()
    # collapsed below the branches: the root, 20 branches and one branch's leaves at most
    assert 21 <= drawn <= 120, drawn
    t1 = time.perf_counter()
    page.click("#expand")  # every branch open: 1,501 rows, still only a screenful drawn
    page.wait_for_function("document.getElementById('spacer').offsetHeight >= 1501 * 26")
    expand = time.perf_counter() - t1
    assert page.locator("#rows .row").count() <= 120
    page.eval_on_selector("#tree", "e => { e.scrollTop = e.scrollHeight; }")
    page.wait_for_selector(".row:has-text('leaf 19.73')")
    t2 = time.perf_counter()
    page.fill("#search", step.step_id)
    page.press("#search", "Enter")
    page.click(f'#results li[data-step="{step.step_id}"]')
    page.wait_for_selector(f'#detail h2[data-task="{step.task_id}"]')
    found = time.perf_counter() - t2
    assert step.step_id in page.inner_text("#detail")
    page.screenshot(path=str(tmp_path / "ui-1500.png"))
    print(f"\n1,501 tasks: first paint {first_paint:.2f}s, expand all {expand:.2f}s, "
          f"search and open {found:.2f}s, {drawn} rows drawn of 1,501")  # fmt: skip
