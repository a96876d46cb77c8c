"""``remit verify`` holds a run's answer to its receipts: a quote of tool output that
no receipted call returned fails, and so does a carried receipt that was forged or
whose call's row was altered since."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from remit import Agent, Budget, Remit, Runtime, tool
from remit.agents import Context
from remit.journal import SQLiteJournal
from remit.trust.provenance import KeyFiles, RunKeys, verify_run

RUN = "run-quotes"


@tool
def lookup(city: str) -> str:
    """A tool whose output the answer quotes."""
    return f"{city} has 28 parks"


class Answer(Agent):
    """Looks Oslo up, then answers with ``make(out, receipts)``: the tool's output and
    the receipts of the task's calls (as a verifier role would get them)."""

    tools = (lookup,)

    def __init__(self, make: Any) -> None:
        self.make = make

    async def execute(self, ctx: Context) -> Any:
        out = await ctx.call("lookup", city="Oslo")
        return self.make(out, [r.to_dict() for r in ctx.receipts])


def run(tmp_path: Path, make: Any) -> Path:
    journal = tmp_path / "j.db"
    with Runtime(journal=journal, agent=Answer(make), durability="normal") as rt:
        assert rt.run("parks", remit=Remit(tools={"lookup": {}}, budget=Budget(calls=5)),
                      run_id=RUN).ok  # fmt: skip
    return journal


def verify(journal: Path, with_key: bool = True) -> Any:
    store = SQLiteJournal(journal)
    try:
        meta = json.loads(store.get_run(RUN).meta or "{}")
        key = RunKeys(KeyFiles.beside(journal).load(RUN, meta)).receipt_key if with_key else None
        return verify_run(store, RUN, receipt_key=key)
    finally:
        store.close()


def codes(report: Any) -> set[tuple[str, str]]:
    return {(f.step_id, f.code) for f in report.failures}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remit.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip


def real(out: str, receipts: list[Any]) -> Any:
    return {"answer": [{"quote": out, "tool": "lookup"}, '<quote tool="lookup">28 parks</quote>']}


def fabricated(out: str, receipts: list[Any]) -> Any:
    return {"answer": [{"quote": out, "tool": "lookup"}, {"quote": "Oslo has 90 parks",
                                                           "tool": "lookup"}]}  # fmt: skip


def carrying(out: str, receipts: list[Any]) -> Any:
    return {"answer": {"quote": out, "tool": "lookup"}, "receipts": receipts}


def forging(out: str, receipts: list[Any]) -> Any:
    forged = {**receipts[0], "result": receipts[0]["args"]}  # claims another result
    return {"answer": "Oslo has 90 parks", "receipts": [forged]}


def test_a_real_quote_verifies(tmp_path: Path) -> None:
    report = verify(run(tmp_path, real))
    assert report.ok, report.failures
    assert [q["code"] for q in report.quotes] == ["QUOTE_OK", "QUOTE_OK"]
    assert report.receipts == 1


def test_a_fabricated_quote_fails_naming_where_it_sits(tmp_path: Path) -> None:
    report = verify(run(tmp_path, fabricated))
    assert codes(report) == {("result", "FABRICATED_QUOTE")}
    [failure] = report.failures
    assert "$.answer[1]" in failure.message and "'Oslo has 90 parks'" in failure.message


def test_carried_receipts_made_by_the_run_verify(tmp_path: Path) -> None:
    report = verify(run(tmp_path, carrying))
    assert report.ok, report.failures
    assert (report.carried, report.receipts_checked) == (1, True)


def test_a_forged_receipt_fails(tmp_path: Path) -> None:
    report = verify(run(tmp_path, forging))
    assert codes(report) == {("result $.receipts[0]", "FORGED_RECEIPT")}


def test_a_result_altered_after_its_receipt_fails(tmp_path: Path) -> None:
    journal = run(tmp_path, carrying)
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE steps SET output = ? WHERE kind = 'tool'", ['"Oslo has 90 parks"'])
    found = codes(verify(journal))
    assert ("result $.receipts[0]", "RESULT_ALTERED") in found
    assert ("result", "FABRICATED_QUOTE") in found  # the quoted text is gone from the row


def test_without_the_key_file_quotes_are_still_checked(tmp_path: Path) -> None:
    journal = run(tmp_path, fabricated)
    report = verify(journal, with_key=False)
    assert codes(report) == {("result", "FABRICATED_QUOTE")}
    assert not report.receipts_checked


def test_the_receipts_of_one_run_do_not_verify_in_another(tmp_path: Path) -> None:
    journal = run(tmp_path, carrying)
    key = RunKeys(b"o" * 32).receipt_key  # another run's key
    store = SQLiteJournal(journal)
    try:
        report = verify_run(store, RUN, receipt_key=key)
    finally:
        store.close()
    assert ("result $.receipts[0]", "FORGED_RECEIPT") in codes(report)


def test_remit_verify_passes_a_real_quote_and_fails_a_fabricated_one(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    run(good, real)
    run(bad, fabricated)
    ok = cli("verify", RUN, "-j", "j.db", cwd=good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "verified ✓" in ok.stdout and "2 quotes (0 fabricated)" in ok.stdout
    failed = cli("verify", RUN, "-j", "j.db", cwd=bad)
    assert failed.returncode == 1
    assert "[FABRICATED_QUOTE] $.answer[1]: quote 'Oslo has 90 parks' of tool 'lookup'" in (
        failed.stdout
    )
    as_json = cli("verify", RUN, "-j", "j.db", "--json", cwd=bad)
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert [q["code"] for q in data["quotes"]] == ["QUOTE_OK", "FABRICATED_QUOTE"]
    assert data["quotes"][1]["where"] == "$.answer[1]"
    assert [f["code"] for f in data["failures"]] == ["FABRICATED_QUOTE"]


def test_remit_verify_without_the_key_file_says_carried_receipts_went_unchecked(
    tmp_path: Path,
) -> None:
    journal = run(tmp_path, carrying)
    shutil.rmtree(journal.with_name("j.db.keys"))
    r = cli("verify", RUN, "-j", "j.db", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "were not checked: the run's key file is missing" in r.stdout
