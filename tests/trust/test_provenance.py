"""Signed runs: every task holds a minted hop, every call a holder's proof, and the
journal alone (plus one public key) proves each call was authorized.

Tampering with a journal after the fact is what ``remit verify`` exists to catch, so
most tests here run a real signed run, edit its SQLite file the way an attacker
would, and check that verification names the step and the reason.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from remit import Agent, Plan, Remit, Runtime, Subtask, within
from remit.errors import JournalError, RemitError
from remit.journal import SQLiteJournal
from remit.models import ScriptedModel
from remit.trust.provenance import (
    KeyFiles,
    RunKeys,
    hop_id_for,
    narrowing,
    run_principal,
    task_chain,
    verify_run,
)
from remit.trust.warrant import AgentKey, verify


class Reader(Agent):
    """Root plans one child per file; each child reads its own file twice (two proofs
    over the same arguments, distinct nonces) and asks the model once."""

    def atomize(self, ctx: Any) -> str:
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx: Any) -> Plan:
        return Plan(
            [
                Subtask(
                    f"f{i}",
                    f"read {p}",
                    inputs={"path": p},
                    remit={"tools": {"read_file": {"path": within(p)}}},
                )
                for i, p in enumerate(ctx.inputs["paths"])
            ]
        )

    async def execute(self, ctx: Any) -> Any:
        a = await ctx.call("read_file", path=ctx.inputs["path"])
        b = await ctx.call("read_file", path=ctx.inputs["path"])
        await ctx.complete([{"role": "user", "content": "summarize"}])
        return len(a) + len(b)

    def aggregate(self, ctx: Any, results: list[Any]) -> Any:
        return sum(r.value for r in results)


PATHS = ["a.txt", "b.txt", "c.txt"]


def _run(tmp_path: Path, **kw: Any) -> tuple[Runtime, str]:
    for p in PATHS:
        (tmp_path / p).write_text(p * 3)
    rt = Runtime(
        journal=tmp_path / "j.db",
        agent=Reader(),
        workspace=tmp_path,
        model=ScriptedModel(lambda _: "ok"),
        **kw,
    )
    remit = Remit(tools={"read_file": {}}, depth=1)
    run = rt.run("read three files", remit=remit, inputs={"paths": PATHS}, run_id="r")
    assert run.ok, run.error
    return rt, "r"


def _sql(tmp_path: Path, query: str, *args: Any) -> list[Any]:
    conn = sqlite3.connect(tmp_path / "j.db")
    try:
        rows = conn.execute(query, args).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def _codes(tmp_path: Path, **kw: Any) -> dict[str, str]:
    with SQLiteJournal(tmp_path / "j.db") as store:
        report = verify_run(store, "r", **kw)
    return {f.step_id: f.code for f in report.failures}


# --- what a signed run records -----------------------------------------------------------


def test_every_task_has_a_hop_and_every_call_a_proof(tmp_path: Path) -> None:
    rt, rid = _run(tmp_path)
    steps = list(rt.store.steps(rid))
    tasks = {s.task_id for s in steps}
    hops = [s for s in steps if s.kind == "warrant"]
    assert {s.task_id for s in hops} == tasks and len(tasks) == 4
    assert all(s.proof for s in hops)
    calls = [s for s in steps if s.kind == "tool"]
    assert len(calls) == 6 and all(s.proof for s in calls)
    # model calls are governed by the budget, not by tool grants: no proof
    assert all(s.proof is None for s in steps if s.kind == "model")
    # a hop precedes every call of its task in the journal's order
    first = {s.task_id: i for i, s in reversed(list(enumerate(steps)))}
    assert all(steps[first[s.task_id]].kind == "warrant" for s in calls)


def test_a_signed_run_verifies_from_the_journal_alone(tmp_path: Path) -> None:
    rt, rid = _run(tmp_path)
    report = verify_run(rt.store, rid)
    assert report.ok, report.failures
    assert (report.calls, report.hops, report.longest_chain) == (6, 4, 2)
    assert report.principal_source == "journal"


def test_each_childs_chain_narrows_to_its_own_file(tmp_path: Path) -> None:
    rt, rid = _run(tmp_path)
    leaf = next(s.task_id for s in rt.store.steps(rid) if s.kind == "tool")
    warrant, ids = task_chain(rt.store, rid, leaf)
    assert ids[-1] == leaf and warrant.hop_id == hop_id_for(leaf)
    principal = run_principal(rt.store, rid)
    assert principal is not None
    remit = verify(warrant, principal_public=principal, run_id=rid, now=warrant.expires - 1)
    assert (
        remit.check("read_file", {"path": "a.txt"}).allowed
        != remit.check("read_file", {"path": "b.txt"}).allowed
    )
    assert narrowing(warrant.hops[0].remit, remit)[-1] == "depth 1 -> 0"


def test_the_run_secret_never_reaches_the_journal_or_the_model(tmp_path: Path) -> None:
    model = ScriptedModel(lambda _: "ok")
    for p in PATHS:
        (tmp_path / p).write_text(p)
    rt = Runtime(journal=tmp_path / "j.db", agent=Reader(), workspace=tmp_path, model=model)
    rt.run("read", remit=Remit(tools={"read_file": {}}, depth=1), inputs={"paths": PATHS},
           run_id="r")  # fmt: skip
    secret = KeyFiles.beside(tmp_path / "j.db").load("r")
    keys = RunKeys(secret)
    leaf_key = keys.agent(next(s.task_id for s in rt.store.steps("r") if s.kind == "tool"))
    rt.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("j.db*") if p.is_file())
    for needle in (secret, secret.hex().encode()):
        assert needle not in blob
    said = json.dumps([list(m) for m in model.calls])
    assert secret.hex() not in said and repr(leaf_key) not in said
    assert "seed" not in repr(leaf_key)


def test_the_key_file_sits_beside_the_journal_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    _run(tmp_path)
    key = tmp_path / "j.db.keys" / "r.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert len(bytes.fromhex(key.read_text().strip())) == 32


def test_a_resume_without_the_key_file_says_what_is_missing(tmp_path: Path) -> None:
    keys = KeyFiles(tmp_path / "k")
    keys.create("r")
    (tmp_path / "k" / "r.key").unlink()
    with pytest.raises(JournalError, match=r"key file .*r\.key is missing"):
        keys.load("r")


def test_a_run_id_that_exists_makes_no_key_file(tmp_path: Path) -> None:
    rt, rid = _run(tmp_path)
    with pytest.raises(JournalError, match="already exists"):
        rt.run("again", remit=Remit(tools={"read_file": {}}, depth=1), run_id=rid)
    keys = [p.name for p in (tmp_path / "j.db.keys").iterdir() if p.name.endswith(".key")]
    assert keys == ["r.key"]


def test_a_users_principal_key_issues_the_root_grant(tmp_path: Path) -> None:
    me = AgentKey.from_seed(b"m" * 32)
    rt, rid = _run(tmp_path, principal_key=me)
    assert run_principal(rt.store, rid) == me.public
    assert verify_run(rt.store, rid, principal_public=me.public).ok


def test_an_unsigned_run_has_nothing_to_verify(tmp_path: Path) -> None:
    rt, rid = _run(tmp_path, sign=False)
    assert all(s.proof is None and s.kind != "warrant" for s in rt.store.steps(rid))
    with pytest.raises(JournalError, match="not signed"):
        verify_run(rt.store, rid)


# --- tampering ------------------------------------------------------------------------------


def _a_call(tmp_path: Path) -> str:
    return _sql(tmp_path, "SELECT step_id FROM steps WHERE kind = 'tool' ORDER BY pos")[0][0]


def test_a_call_whose_arguments_were_edited_fails(tmp_path: Path) -> None:
    _run(tmp_path)
    step = _a_call(tmp_path)
    _sql(tmp_path, "UPDATE steps SET input = ? WHERE step_id = ?", '{"path": "b.txt"}', step)
    assert _codes(tmp_path) == {step: "WARRANT_DIGEST"}


def test_a_call_without_its_proof_fails(tmp_path: Path) -> None:
    _run(tmp_path)
    step = _a_call(tmp_path)
    _sql(tmp_path, "UPDATE steps SET proof = NULL WHERE step_id = ?", step)
    assert _codes(tmp_path) == {step: "WARRANT_MALFORMED"}


def test_a_proof_copied_to_another_call_is_a_replay(tmp_path: Path) -> None:
    _run(tmp_path)
    # the two reads of one task have the same arguments: only the nonce tells them apart
    first, second = _sql(
        tmp_path,
        "SELECT step_id, proof FROM steps WHERE kind = 'tool' AND task_id = "
        "(SELECT task_id FROM steps WHERE kind = 'tool' ORDER BY pos LIMIT 1) ORDER BY pos",
    )
    _sql(tmp_path, "UPDATE steps SET proof = ? WHERE step_id = ?", first[1], second[0])
    assert _codes(tmp_path) == {second[0]: "WARRANT_REPLAY"}


def test_an_edited_hop_breaks_every_call_below_it(tmp_path: Path) -> None:
    _run(tmp_path)
    task, frame = _sql(
        tmp_path, "SELECT task_id, proof FROM steps WHERE kind = 'warrant' ORDER BY pos"
    )[1]
    # widen the child's grant in place (a same-length edit keeps the framing valid)
    raw = frame.encode()
    body = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    forged = body.replace(b'"depth":0', b'"depth":9')
    assert forged != body
    text = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    _sql(tmp_path, "UPDATE steps SET proof = ? WHERE task_id = ? AND kind = 'warrant'", text, task)
    codes = _codes(tmp_path)
    calls = {r[0] for r in _sql(tmp_path, "SELECT step_id FROM steps WHERE task_id = ? AND "
                                          "kind = 'tool'", task)}  # fmt: skip
    assert set(codes) == calls and set(codes.values()) == {"WARRANT_FORGED"}


def test_pinning_another_principal_fails_every_call(tmp_path: Path) -> None:
    _run(tmp_path)
    stranger = AgentKey.from_seed(b"x" * 32).public
    codes = _codes(tmp_path, principal_public=stranger)
    assert len(codes) == 6 and set(codes.values()) == {"WARRANT_FORGED"}


def test_a_root_grant_that_differs_from_the_runs_remit_is_reported(tmp_path: Path) -> None:
    _run(tmp_path)
    wider = Remit(tools={"read_file": {}, "write_file": {}}, depth=1).to_json()
    _sql(tmp_path, "UPDATE runs SET remit = ? WHERE run_id = 'r'", wider)
    assert set(_codes(tmp_path).values()) == {"WARRANT_ROOT_MISMATCH"}


# --- the command line ------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remit.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip


def test_remit_verify_exit_codes(tmp_path: Path) -> None:
    _run(tmp_path)
    ok = _cli("verify", "r", "-j", "j.db", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "verified ✓" in ok.stdout and "6 calls" in ok.stdout
    step = _a_call(tmp_path)
    _sql(tmp_path, "UPDATE steps SET input = ? WHERE step_id = ?", '{"path": "zzz"}', step)
    bad = _cli("verify", "r", "-j", "j.db", "--json", cwd=tmp_path)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False and report["failures"][0]["step_id"] == step
    garbage = _cli("verify", "r", "-j", "j.db", "--principal", "nothex", cwd=tmp_path)
    assert garbage.returncode == 2 and "--principal" in garbage.stderr
    missing = _cli("verify", "nope", "-j", "j.db", cwd=tmp_path)
    assert missing.returncode == 2 and "RUN_NOT_FOUND" in missing.stderr


def test_remit_show_chain_prints_principal_to_agent(tmp_path: Path) -> None:
    _run(tmp_path)
    step = _a_call(tmp_path)
    shown = _cli("show", "r", "-j", "j.db", "--chain", step, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.index("principal") < text.index("hop 0") < text.index("hop 1")
    assert "read_file: path within" in text and "depth 1 -> 0" in text
    assert "signed by the last holder: yes" in text and "verifies offline ✓" in text
    unknown = _cli("show", "r", "-j", "j.db", "--chain", "t.9:nothing", cwd=tmp_path)
    assert unknown.returncode == 2 and "no step or task" in unknown.stderr


def test_remit_key_new_then_run_under_it(tmp_path: Path) -> None:
    made = _cli("key", "new", "me.key", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    public = made.stdout.strip()
    assert len(bytes.fromhex(public)) == 32
    assert stat.S_IMODE((tmp_path / "me.key").stat().st_mode) == 0o600
    again = _cli("key", "new", "me.key", cwd=tmp_path)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    ran = _cli("run", "--job", "audit", "--principal-key", "me.key", "--run-id", "mine",
               "-j", "j.db", "-q", cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    ok = _cli("verify", "mine", "-j", "j.db", "--principal", public, cwd=tmp_path)
    assert ok.returncode == 0 and "pinned" in ok.stdout, ok.stdout + ok.stderr
    other = AgentKey.from_seed(b"o" * 32).public.hex()
    bad = _cli("verify", "mine", "-j", "j.db", "--principal", other, cwd=tmp_path)
    assert bad.returncode == 1 and "WARRANT_FORGED" in bad.stdout


def test_a_bad_principal_key_file_is_a_clear_error(tmp_path: Path) -> None:
    from remit.trust.provenance import load_principal_key

    (tmp_path / "k").write_text("abc")
    with pytest.raises(RemitError, match="64 hex digits"):
        load_principal_key(tmp_path / "k")


def test_the_cli_says_how_to_verify_a_signed_run(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    ran = _cli("run", "--job", "audit", "--run-id", "s", "-j", "j.db", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "every call is signed: remit verify s --journal j.db" in ran.stdout
    rt = Runtime(journal=tmp_path / "j.db")
    assert rt.get("s").signed
    rt.close()


def test_the_modules_examples_run() -> None:
    import doctest

    import remit.trust.provenance
    from remit.trust.provenance import _keys, _narrowing

    results = [doctest.testmod(m) for m in (remit.trust.provenance, _keys, _narrowing)]
    assert all(r.failed == 0 for r in results) and sum(r.attempted for r in results) >= 5
