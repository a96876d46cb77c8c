"""The audit job: real statistics, least privilege, partial failure, resume."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from remit import Remit, Runtime
from remit.jobs import JOBS
from remit.jobs.audit import (
    KEEP_LIST,
    KEEP_TOP,
    AuditAgent,
    audit_check,
    audit_goal,
    audit_remit,
    measure,
)
from remit.trace import load

CORE = '''"""Core."""

import os

# a comment
# TODO: make it faster


def small():
    return 1


class Thing:
    def method(self):
        x = 1
        y = 2
        return x + y  # FIXME later
'''

#: what the tree below must add up to (counted by hand)
TOTALS = {"files": 4, "lines": 22, "code": 13, "comment": 2, "blank": 7, "todo": 3,
          "functions": 3, "classes": 1}  # fmt: skip


@pytest.fixture
def src_tree(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src" / "pkg" / "sub").mkdir(parents=True)
    (ws / "src" / "empty").mkdir()
    (ws / "src" / "__pycache__").mkdir()
    (ws / "src" / "__pycache__" / "x.pyc").write_bytes(b"\x00ignored")
    (ws / "src" / "pkg" / "__init__.py").write_text("")
    (ws / "src" / "pkg" / "core.py").write_text(CORE)
    (ws / "src" / "pkg" / "sub" / "deep.py").write_text("def f():\n    pass\n")
    (ws / "src" / "README.md").write_text("# Title\n\nSome text. TODO: docs\n")
    (ws / "src" / "data.bin").write_bytes(b"\x00\x01\x02")  # not a text source: denied
    outside = tmp_path / "outside.py"
    outside.write_text("SECRET = 1\n")
    (ws / "src" / "escape.py").symlink_to(outside)  # leads out of the workspace: refused
    return ws


def run_audit(ws: Path, remit: Remit | None = None, **inputs: Any) -> tuple[Runtime, Any]:
    job = JOBS["audit"]
    data = {**job.inputs, **inputs}
    rt = Runtime(journal=ws.parent / "journal.db", agent=job.agent, workspace=ws,
                 durability="normal")  # fmt: skip
    run = rt.run(job.goal(data), remit=remit or job.remit(data), inputs=data)
    return rt, run


def test_measure_counts_lines_comments_markers_and_functions() -> None:
    s = measure("pkg/core.py", CORE)
    assert {k: s[k] for k in ("lines", "code", "comment", "blank", "todo")} == {
        "lines": 17, "code": 9, "comment": 2, "blank": 6, "todo": 2}  # fmt: skip
    assert (s["functions"], s["classes"]) == (2, 1)
    assert s["largest_function"] == {"path": "pkg/core.py", "name": "method", "line": 14,
                                     "lines": 4}  # fmt: skip
    assert s["longest_line"] == {"path": "pkg/core.py", "line": 17,
                                 "length": len("        return x + y  # FIXME later")}  # fmt: skip
    broken = measure("bad.py", "def (:\n")
    assert broken["functions"] == 0 and "not valid Python" in broken["note"]
    assert measure("notes.md", "# heading\n")["comment"] == 0  # markdown has no comments


def test_audit_writes_the_report_with_correct_stats(src_tree: Path) -> None:
    rt, run = run_audit(src_tree)
    assert run.status == "done", run.error
    assert {k: run.result["totals"][k] for k in TOTALS} == TOTALS
    assert run.result["denied"] == 2 and run.result["failed"] == 0
    report = (src_tree / "out" / "audit.md").read_text()
    assert "# Audit of `src/`" in report
    assert "| 4 | 22 | 13 | 2 | 7 | 3 | 3 | 1 |" in report
    assert "Largest function: `method` in `src/pkg/core.py:14` (4 lines)" in report
    assert "| `src/pkg/core.py` | 17 | 9 | 2 | 6 | 2 | 2 | 1 |" in report
    assert "| `src/pkg/sub/` | 1 | 2 |" in report
    # the denied entries are listed with the Gate's reason
    denied = report.split("## Denied by the remit", 1)[1]
    assert "`src/data.bin` | DENIED | read_file: argument 'path'='src/data.bin' violates" in denied
    assert "`src/escape.py` | DENIED |" in denied and "outside the workspace" in denied
    assert "SECRET" not in report
    assert "x.pyc" not in report  # ignored, never delegated
    assert run.spent.calls <= 1000
    rt.close()


def test_every_task_holds_only_the_authority_it_needs(src_tree: Path) -> None:
    rt, run = run_audit(src_tree)
    tree = load(rt.store, run.id)
    root = tree.root
    by_goal = {n.goal: n for n in root.walk()}
    assert root.remit is not None and "write_file" in root.remit.tools
    pkg = by_goal["audit src/pkg/"]
    assert pkg.decision == "plan" and pkg.remit is not None
    # a directory task: list and read within its directory, and no write_file
    assert set(pkg.remit.tools) == {"list_dir", "read_file"}
    assert pkg.remit.allows("read_file", {"path": "src/pkg/core.py"})
    assert not pkg.remit.allows("read_file", {"path": "src/README.md"})
    assert not pkg.remit.allows("list_dir", {"path": "src"})
    # a leaf: its own file, once, and no delegation
    leaf = by_goal["measure src/pkg/core.py"]
    assert leaf.remit is not None and set(leaf.remit.tools) == {"read_file"}
    assert leaf.remit.allows("read_file", {"path": "src/pkg/core.py"})
    assert not leaf.remit.allows("read_file", {"path": "src/pkg/__init__.py"})
    assert leaf.budget is not None and leaf.budget.calls == 1 and leaf.depth_left == 0
    assert leaf.spent.calls == 1
    # the denials sit under the leaves that met them
    bin_leaf = by_goal["measure src/data.bin"]
    assert [d.code for d in bin_leaf.denied] == ["DENIED"]
    assert bin_leaf.denied[0].args == {"path": "src/data.bin"}
    assert bin_leaf.spent.calls == 0  # denied before anything was spent
    assert [d.code for d in by_goal["measure src/escape.py"].denied] == ["DENIED"]
    assert by_goal["note that src/empty/ has nothing to audit"].status == "done"
    assert root.subtree_denied == 2
    rt.close()


def test_depth_cap_forces_a_directory_to_be_walked_in_one_task(src_tree: Path) -> None:
    rt, run = run_audit(src_tree, remit=audit_remit(depth=1))
    assert run.status == "done", run.error
    assert {k: run.result["totals"][k] for k in TOTALS} == TOTALS  # same answer
    tree = load(rt.store, run.id)
    pkg = next(n for n in tree.root.walk() if n.goal == "audit src/pkg/")
    assert pkg.decision == "execute" and pkg.forced and not pkg.children
    assert pkg.calls == 5  # list src/pkg, read 2 files, list src/pkg/sub, read 1 file
    rt.close()


def test_budget_is_never_overshot(src_tree: Path) -> None:
    rt, run = run_audit(src_tree, remit=audit_remit(calls=4))
    assert run.spent.calls <= 4
    tree = load(rt.store, run.id)
    codes = {d.code for _, d in tree.denied()}
    assert "BUDGET" in codes
    # the report could not be written within the budget: the run says why
    assert run.status == "failed" and run.error is not None
    rt.close()


def test_resume_of_a_finished_run_changes_nothing(src_tree: Path) -> None:
    rt, run = run_audit(src_tree)
    report = src_tree / "out" / "audit.md"
    before = (report.stat().st_mtime_ns, report.read_text())
    steps = [(s.step_id, s.status, s.output) for s in rt.store.steps(run.id)]
    again = rt.resume(run.id)
    assert again.status == "done" and again.result == run.result
    assert again.executed == 0
    assert [(s.step_id, s.status, s.output) for s in rt.store.steps(run.id)] == steps
    assert (report.stat().st_mtime_ns, report.read_text()) == before
    rt.close()


def test_resume_after_a_crash_before_the_report_redoes_only_the_report(
    src_tree: Path,
) -> None:
    rt, run = run_audit(src_tree)
    report = src_tree / "out" / "audit.md"
    text = report.read_text()
    root = load(rt.store, run.id).root.id
    rt.close()
    # as if the process died after every leaf and directory ended, before the root's
    # aggregate step was recorded
    db = sqlite3.connect(src_tree.parent / "journal.db")
    with db:
        db.execute("DELETE FROM steps WHERE run_id = ? AND step_id IN (?, ?, ?)",
                   (run.id, f"{root}:aggregate", f"{root}:aggregate.0", f"{root}:end"))  # fmt: skip
        db.execute("UPDATE runs SET status = 'running', result = NULL WHERE run_id = ?",
                   (run.id,))  # fmt: skip
    db.close()
    report.unlink()
    rt = Runtime(journal=src_tree.parent / "journal.db", workspace=src_tree)
    again = rt.resume(run.id)  # the agent is imported from the run's record
    assert again.status == "done" and again.result == run.result
    assert again.executed == 2  # the root's aggregate and its write_file, nothing else
    assert again.replayed > 0
    assert report.read_text() == text
    rt.close()


def test_a_failing_leaf_is_reported_not_fatal(src_tree: Path) -> None:
    big = src_tree / "src" / "big.txt"
    big.write_text("x" * 1_000_001)  # over read_file's limit: the tool raises
    rt, run = run_audit(src_tree)
    assert run.status == "done", run.error
    assert run.result["failed"] == 1
    report = (src_tree / "out" / "audit.md").read_text()
    assert "## Failed" in report and "`src/big.txt` | INVALID_INPUT |" in report
    rt.close()


def test_goal_remit_and_check_follow_the_inputs(tmp_path: Path) -> None:
    assert audit_goal({"target": "lib/", "report": "out/lib.md"}) == (
        "Audit lib/ and write out/lib.md")  # fmt: skip
    r = audit_remit({"target": "lib", "report": "reports/a.md"})
    assert r.allows("read_file", {"path": "lib/x.py"})
    assert not r.allows("read_file", {"path": "src/x.py"})
    assert r.allows("write_file", {"path": "reports/a.md", "text": ""})
    assert not r.allows("write_file", {"path": "out/a.md", "text": ""})
    (tmp_path / "lib").mkdir()
    assert audit_check({"target": "lib"}, tmp_path) is None
    problem = audit_check({"target": "nope"}, tmp_path)
    assert problem is not None and "'nope' is not a directory" in problem
    assert isinstance(JOBS["audit"].agent, str)
    assert AuditAgent().atomize.__name__ == "atomize"


def test_audit_of_another_target(src_tree: Path) -> None:
    rt, run = run_audit(src_tree, target="src/pkg", report="out/pkg.md")
    assert run.status == "done", run.error
    assert run.result["totals"]["files"] == 3
    assert (src_tree / "out" / "pkg.md").is_file()
    assert not os.path.exists(src_tree / "out" / "audit.md")
    rt.close()


def test_results_stay_bounded_however_big_the_tree(tmp_path: Path) -> None:
    many = tmp_path / "src" / "many"
    many.mkdir(parents=True)
    for i in range(120):
        (many / f"m{i:03}.py").write_text("x = 1\n" * (i + 1))
    for i in range(KEEP_LIST + 10):
        (many / f"blob{i:03}.bin").write_bytes(b"\x00")
    # depth 1: the root plans, and src/many is walked in one task
    rt, run = run_audit(tmp_path, remit=audit_remit(depth=1))
    assert run.status == "done", run.error
    assert run.result["totals"]["files"] == 120
    assert run.result["totals"]["lines"] == sum(range(1, 121))
    assert run.result["denied"] == KEEP_LIST + 10
    tree = load(rt.store, run.id)
    (many_task,) = tree.root.children
    assert many_task.forced and many_task.calls == 1 + 120 + KEEP_LIST + 10
    out = json.loads(rt.store.get_step(run.id, f"{many_task.id}:end").output)
    assert len(out["files"]) == KEEP_TOP and out["files"][0]["path"] == "src/many/m119.py"
    assert len(out["denied"]) == KEEP_LIST and out["count"]["denied"] == KEEP_LIST + 10
    report = (tmp_path / "out" / "audit.md").read_text()
    assert "## Largest files (top 10 of 120)" in report
    assert f"## Denied by the remit ({KEEP_LIST + 10})" in report
    assert f"the first {KEEP_LIST} are listed here" in report
    rt.close()


def test_with_no_depth_at_all_the_root_walks_everything_and_still_reports(
    src_tree: Path,
) -> None:
    rt, run = run_audit(src_tree, remit=audit_remit(depth=0))
    assert run.status == "done", run.error
    assert {k: run.result["totals"][k] for k in TOTALS} == TOTALS
    assert run.result["denied"] == 2
    assert (src_tree / "out" / "audit.md").is_file()
    tree = load(rt.store, run.id)
    assert tree.tasks == 1 and tree.root.forced and tree.root.decision == "execute"
    rt.close()
