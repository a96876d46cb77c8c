"""The web view's server without a browser: its JSON over a journal, the diffs live
updates carry, the token rule, and the clear error when the ``ui`` extra is missing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from remit import Runtime
from remit.cli import app as cli_app
from remit.errors import InvalidInput, MissingExtra
from remit.ui import is_loopback, require_ui, serve
from remit.ui._app import create_app
from remit.ui._views import diff
from tests.ui.ui_agent import AGENT, remit


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ui") / "j.db"
    rt = Runtime(journal=path, agent=AGENT, durability="normal")
    try:
        run = rt.run("a small tree", remit=remit(), run_id="s",
                     inputs={"width": 3, "leaves": 4, "ask": False})  # fmt: skip
    finally:
        rt.close()
    assert run.ok
    return path


def test_the_runs_a_snapshot_a_detail_and_a_search(journal: Path) -> None:
    c = TestClient(create_app(journal))
    (r,) = c.get("/api/runs").json()["runs"]
    assert (r["id"], r["state"]) == ("s", "done")
    snap = c.get("/api/runs/s").json()
    assert len(snap["nodes"]) == 1 + 3 + 12 and snap["summary"]["by_status"]["done"] == 16
    root, b0 = snap["nodes"][0], snap["nodes"][1]
    assert root["parent"] is None and b0["parent"] == root["id"] and b0["key"] == "b0"
    assert b0["budget"] == {"calls": 12} and b0["spent"] == {"calls": 3} and b0["frac"] == 0.25
    assert snap["budget"]["budget"] == {"calls": 5000} and snap["budget"]["spent"] == {"calls": 11}
    found = c.get("/api/runs/s/search", params={"q": "delete_every"}).json()
    (step,) = found["steps"]
    assert step["status"] == "denied"
    d = c.get("/api/runs/s/task", params={"id": step["task_id"]}).json()
    (denial,) = d["task"]["denied"]
    assert "not granted" in denial["reason"] and d["calls"][0]["args"] == {"where": "/"}
    assert [x["key"] for x in d["chain"]] == ["root", "b0", "l1"]
    assert c.get("/api/runs/s/search", params={"q": "leaf 2.3"}).json()["tasks"]
    assert c.get("/api/runs/nope").status_code == 404
    assert c.get("/api/runs/s/task", params={"id": "t.x"}).status_code == 404
    page = c.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "EventSource" in c.get("/static/app.js").text


def test_answers_are_checked_before_anything_is_written(journal: Path) -> None:
    c = TestClient(create_app(journal))
    none = c.post("/api/runs/s/approvals", json={"step": "t.0:execute.0", "approved": True})
    assert none.status_code == 404 and none.json()["code"] == "NO_APPROVAL"
    # another site's page may not answer, nor a form post
    foreign = c.post("/api/runs/s/approvals", json={"step": "x", "approved": True},
                     headers={"Origin": "http://evil.example"})  # fmt: skip
    assert foreign.status_code == 403
    form = c.post("/api/runs/s/approvals", content="step=x",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert form.status_code == 415


def test_a_token_guards_every_request(journal: Path) -> None:
    c = TestClient(create_app(journal, token="s3cret"))
    assert c.get("/api/runs").status_code == 401
    assert c.get("/api/runs", headers={"X-Remit-Token": "wrong"}).status_code == 401
    assert c.get("/api/runs", headers={"X-Remit-Token": "s3cret"}).status_code == 200
    first = c.get("/?token=s3cret")  # the printed URL; the page then keeps a cookie
    assert first.status_code == 200
    assert c.get("/api/runs").status_code == 200


def test_only_loopback_serves_without_a_token(journal: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    with pytest.raises(InvalidInput, match="--token"):
        serve(journal, host="0.0.0.0")
    out = CliRunner().invoke(cli_app, ["ui", "--journal", str(journal), "--host", "0.0.0.0"])
    assert out.exit_code == 2


def test_a_snapshot_diff_carries_only_what_changed() -> None:
    row = {"id": "a", "status": "running"}
    old = {"run": {"s": 1}, "summary": {}, "budget": {}, "approvals": [],
           "nodes": [row, {"id": "b", "status": "pending"}]}  # fmt: skip
    assert diff(old, old) is None
    new = {**old, "nodes": [row, {"id": "b", "status": "done"}, {"id": "c", "status": "pending"}]}
    change = diff(old, new)
    assert change is not None and [n["id"] for n in change["nodes"]] == ["b", "c"]
    assert diff(None, new) is None


def test_without_the_ui_extra_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, journal: Path
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # an import of it now fails
    with pytest.raises(MissingExtra, match=r"pip install 'remit\[ui\]'"):
        require_ui()
    out: Any = CliRunner().invoke(cli_app, ["ui", "--journal", str(journal)])
    assert out.exit_code == 2 and "MISSING_EXTRA" in out.output


def test_a_postgresql_journal_is_refused_saying_what_reads_it() -> None:
    out = CliRunner().invoke(cli_app, ["ui", "--journal", "postgresql://127.0.0.1:1/remit"])
    assert out.exit_code == 2
    assert "reads SQLite journals" in out.output and "remit show" in out.output
