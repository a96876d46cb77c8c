"""Answers to paused calls through the web view (marker ``approval``): the answer is the
row ``remit approve|deny`` writes, so a run whose process was killed while it waited and
then resumed takes it as well, and the page's stream shows it; a request nobody answers
expires at the remit's deadline, on the record, and a late answer is refused.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from remit import Runtime
from remit.journal import SQLiteJournal
from remit.ui._app import create_app
from tests.ui.conftest import start_run, wait_for
from tests.ui.ui_agent import AGENT, remit

pytestmark = pytest.mark.approval

SMALL = {"width": 1, "leaves": 3}  # the root, a branch, three leaves (one asks, one denied)


def _approval(journal: Path, run_id: str) -> Any:
    with SQLiteJournal(journal) as store:
        return next((s for s in store.steps(run_id) if s.kind == "approval"), None)


def _events(url: str, run_id: str, box: list[dict[str, Any]], stop: threading.Event) -> None:
    """Collect the run's server-sent events (name and data) until ``stop`` (or until the
    server goes away at the test's end)."""
    with (
        contextlib.suppress(httpx.HTTPError),
        httpx.Client(timeout=30) as client,
        client.stream("GET", f"{url}api/runs/{run_id}/events") as resp,
    ):
        name = ""
        for line in resp.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                box.append({"event": name, **json.loads(line[6:])})
            if stop.is_set():
                return


def test_an_answer_from_the_page_reaches_a_run_restarted_between_pause_and_answer(
    tmp_path: Path, ui_server: Any
) -> None:
    journal = tmp_path / "j.db"
    first = start_run(tmp_path, journal, "r", SMALL)
    try:
        asked = wait_for(lambda: journal.exists() and _approval(journal, "r"), "the paused call")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    server = ui_server(journal)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        snap = client.get("/api/runs/r").json()
        assert snap["run"]["state"] == "interrupted"
        (ask,) = snap["approvals"]
        assert ask["state"] == "waiting" and ask["tool"] == "pay" and "large payment" in ask["why"]
        # the run is carried on by a new process, which waits for the same answer
        resumed = start_run(tmp_path, journal, "r", SMALL, "10m", "resume", "r")
        try:
            wait_for(lambda: client.get("/api/runs/r").json()["run"]["state"] == "running",
                     "the resumed process to hold the run")  # fmt: skip
            events: list[dict[str, Any]] = []
            stop = threading.Event()
            reader = threading.Thread(target=_events, args=(server.url, "r", events, stop),
                                      daemon=True)  # fmt: skip
            reader.start()
            wait_for(lambda: events, "the stream's first snapshot")
            answer = client.post("/api/runs/r/approvals",
                                 json={"step": ask["step"], "approved": True,
                                       "reason": "ok by finance"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            _out, err = resumed.communicate(timeout=60)
        except BaseException:
            resumed.kill()
            raise
        assert resumed.returncode == 0, err
        # the page's stream saw the answer and the end, as patches of what changed
        wait_for(lambda: any(e["event"] == "patch" and e["run"]["status"] == "done"
                             for e in events), "a patch with the run done")  # fmt: skip
        stop.set()
        assert events[0]["event"] == "snapshot" and len(events[0]["nodes"]) == 5
        patched = [a for e in events[1:] for a in e["approvals"]]
        assert any(a["state"] == "approved" for a in patched)
        assert all(len(e["nodes"]) <= 5 for e in events[1:])
        # a second answer is refused, as on the command line
        again = client.post("/api/runs/r/approvals", json={"step": ask["step"], "approved": False})
        assert again.status_code == 409 and again.json()["code"] == "ALREADY_ANSWERED"
    row = _approval(journal, "r")
    assert row.step_id == asked.step_id
    said = json.loads(row.output)
    assert said["approved"] is True and said["reason"] == "ok by finance"
    with SQLiteJournal(journal) as store:
        end = store.get_step("r", f"{row.task_id}:end")
    assert end is not None and json.loads(end.output or "null") == "paid 5000 to mallory"


def test_an_unanswered_request_expires_at_the_deadline_and_the_call_fails_on_record(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "j.db"
    rt = Runtime(journal=journal, agent=AGENT, durability="normal")
    started = time.monotonic()
    try:
        run = rt.run("a live tree", remit=remit("2s"), inputs=SMALL, run_id="x")
    finally:
        rt.close()
    assert time.monotonic() - started < 30
    # the root's watchdog or the branch's ends it first: the deadline, either way
    assert run.status == "failed" and "deadline" in json.dumps(run.error)
    row = _approval(journal, "x")
    assert row.status == "error" and json.loads(row.error)["code"] == "DEADLINE"
    with SQLiteJournal(journal) as store:
        call = store.get_step("x", row.step_id.removesuffix("~approval"))
    assert call is not None and call.status == "denied"
    assert json.loads(call.error or "{}")["code"] == "DEADLINE"
    client = TestClient(create_app(journal))
    snap = client.get("/api/runs/x").json()
    (ask,) = snap["approvals"]
    assert ask["state"] == "expired" and ask["error"]["code"] == "DEADLINE"
    assert snap["summary"]["by_status"]["waiting"] == 0
    late = client.post("/api/runs/x/approvals", json={"step": ask["step"], "approved": True})
    assert late.status_code == 409 and late.json()["code"] == "ALREADY_ANSWERED"
    cli = subprocess.run(
        [sys.executable, "-m", "remit.cli", "approve", "x", ask["step"], "--journal", str(journal)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 2 and "ALREADY_ANSWERED" in cli.stderr


def test_a_request_expires_on_resume_when_its_process_died_before_the_deadline(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "j.db"
    first = start_run(tmp_path, journal, "k", SMALL, "3s")
    try:
        wait_for(lambda: journal.exists() and _approval(journal, "k"), "the paused call")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    time.sleep(3.2)  # past the deadline, with no process to notice
    assert _approval(journal, "k").status == "started"
    resumed = start_run(tmp_path, journal, "k", SMALL, "3s", "resume", "k")
    _out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 1, err
    with SQLiteJournal(journal) as store:
        assert "deadline" in (store.get_run("k").error or "")
    # the resume ended the run at once (past its deadline): the page shows it expired
    snap = TestClient(create_app(journal)).get("/api/runs/k").json()
    (ask,) = snap["approvals"]
    assert ask["state"] == "expired" and snap["summary"]["by_status"]["waiting"] == 0
