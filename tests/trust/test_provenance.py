"""Signed runs (sealed): the principal grants the run's remit to the run's key, the
journal is a hash chain whose head the run's key signs at each batch, each child's
remit is recorded in its parent's plan row and each call carries a nonce; the journal
alone (plus one public key) proves each call was authorized.

Tampering with a journal after the fact is what ``remit verify`` exists to catch, so
most tests here run a real signed run, edit its SQLite file the way an attacker
would, and check that verification names the step and the reason.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from remit import Remit, Runtime
from remit.errors import JournalError, RemitError
from remit.journal import SQLiteJournal
from remit.journal._chain import row_hash
from remit.models import ScriptedModel
from remit.trust.provenance import (
    Delegations,
    KeyFiles,
    RunKeys,
    narrowing,
    nonce_of,
    run_principal,
    verify_run,
)
from remit.trust.warrant import AgentKey

from ..attacks.tamper import Reader

# the agent the tamper suite's journals are made with: the root plans one child per
# file, each child reads its own file twice and asks the model once
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


def _failures(tmp_path: Path, **kw: Any) -> set[tuple[str, str]]:
    with SQLiteJournal(tmp_path / "j.db") as store:
        report = verify_run(store, "r", **kw)
    return {(f.step_id, f.code) for f in report.failures}


def test_a_sealed_run_records_delegations_and_nonces_not_signatures(tmp_path: Path) -> None:
    rt, rid = _run(tmp_path)
    steps = list(rt.store.steps(rid))
    assert not any(s.kind == "warrant" for s in steps)  # no signed hop per task
    calls = [s for s in steps if s.kind == "tool"]
    assert len(calls) == 6 and all(s.proof == nonce_of(s.step_id) for s in calls)
    plan = next(s for s in steps if s.kind == "plan")
    recorded = json.loads(plan.output or "{}")
    assert recorded["remit_of"] == [0, 1, 2] and len(recorded["remits"]) == 3
    assert recorded["remits"][0]["tools"]["read_file"] == {"path": {"within": "a.txt/"}}
    # a hash chain over every row, one signed checkpoint per batch (not per step)
    entries, checkpoints = rt.store.chain(rid), rt.store.checkpoints(rid)
    assert len([e for e in entries if e.n > 0]) >= len(steps)
    assert 2 <= len(checkpoints) < len(steps)


def test_a_signed_run_verifies_from_the_journal_alone(tmp_path: Path) -> None:
    rt, rid = _run(tmp_path)
    report = verify_run(rt.store, rid)
    assert report.ok, report.failures
    assert report.sealed and (report.calls, report.hops) == (6, 4)  # the grant + 3 children
    assert report.rows == len(list(rt.store.steps(rid))) and report.checkpoints >= 2
    assert report.principal_source == "journal"


def test_each_childs_recorded_remit_narrows_to_its_own_file(tmp_path: Path) -> None:
    rt, rid = _run(tmp_path)
    leaf = next(s.task_id for s in rt.store.steps(rid) if s.kind == "tool")
    run = rt.store.get_run(rid)
    path = Delegations(run, list(rt.store.steps(rid))).path(leaf)
    assert [t for t, _ in path][-1] == leaf and len(path) == 2
    root, child = path[0][1], path[1][1]
    assert root is not None and child is not None and child.is_within(root) is None
    assert (
        child.check("read_file", {"path": "a.txt"}).allowed
        != child.check("read_file", {"path": "b.txt"}).allowed
    )
    assert narrowing(root, child)[-1] == "depth 1 -> 0"


def test_the_run_secret_never_reaches_the_journal_or_the_model(tmp_path: Path) -> None:
    model = ScriptedModel(lambda _: "ok")
    for p in PATHS:
        (tmp_path / p).write_text(p)
    rt = Runtime(journal=tmp_path / "j.db", agent=Reader(), workspace=tmp_path, model=model)
    rt.run("read", remit=Remit(tools={"read_file": {}}, depth=1), inputs={"paths": PATHS},
           run_id="r")  # fmt: skip
    meta = json.loads(rt.store.get_run("r").meta or "{}")
    secret = KeyFiles.beside(tmp_path / "j.db").load("r", meta)
    journal_secret = bytes.fromhex((tmp_path / "j.db.keys" / "journal.secret").read_text())
    keys = RunKeys(secret)
    leaf_key = keys.agent(next(s.task_id for s in rt.store.steps("r") if s.kind == "tool"))
    rt.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("j.db*") if p.is_file())
    for needle in (secret, secret.hex().encode(), journal_secret, journal_secret.hex().encode()):
        assert needle not in blob
    said = json.dumps([list(m) for m in model.calls])
    assert secret.hex() not in said and repr(leaf_key) not in said
    assert journal_secret.hex() not in said
    assert "seed" not in repr(leaf_key)


def test_the_key_file_sits_beside_the_journal_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    _run(tmp_path)
    key = tmp_path / "j.db.keys" / "journal.secret"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert len(bytes.fromhex(key.read_text().strip())) == 32


def test_a_resume_without_the_key_file_says_what_is_missing(tmp_path: Path) -> None:
    _, salt = KeyFiles(tmp_path / "k").new_run("r")
    (tmp_path / "k" / "journal.secret").unlink()
    with pytest.raises(JournalError, match=r"run r: its key file .*journal\.secret is missing"):
        KeyFiles(tmp_path / "k").load("r", {"key_salt": salt})


def test_a_run_id_that_exists_makes_no_key_file(tmp_path: Path) -> None:
    rt, rid = _run(tmp_path)
    secret = (tmp_path / "j.db.keys" / "journal.secret").read_text()
    with pytest.raises(JournalError, match="already exists"):
        rt.run("again", remit=Remit(tools={"read_file": {}}, depth=1), run_id=rid)
    assert [p.name for p in (tmp_path / "j.db.keys").iterdir()] == ["journal.secret"]
    assert (tmp_path / "j.db.keys" / "journal.secret").read_text() == secret


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
    # the row no longer matches its chain entry, and its task's remit does not allow it
    assert _failures(tmp_path) == {(step, "ROW_ALTERED"), (step, "CALL_OUTSIDE_REMIT")}


def test_a_call_without_its_nonce_fails(tmp_path: Path) -> None:
    _run(tmp_path)
    step = _a_call(tmp_path)
    _sql(tmp_path, "UPDATE steps SET proof = NULL WHERE step_id = ?", step)
    assert _failures(tmp_path) == {(step, "ROW_ALTERED"), (step, "NONCE")}


def test_an_edited_row_with_its_entry_recomputed_breaks_the_signed_chain(tmp_path: Path) -> None:
    """An attacker who knows the hash recomputes the row's entry too: the chain's heads
    then differ from what the checkpoints signed."""
    _run(tmp_path)
    step = _a_call(tmp_path)
    _sql(tmp_path, "UPDATE steps SET output = '\"forged\"' WHERE step_id = ?", step)
    with SQLiteJournal(tmp_path / "j.db") as store:
        row = store.get_step("r", step)
        assert row is not None
        entry = row_hash(row)
    _sql(tmp_path, "UPDATE steps SET entry = ? WHERE step_id = ?", entry, step)
    assert {code for _, code in _failures(tmp_path)} == {"CHAIN_ALTERED"}


def _checkpoint_failures(tmp_path: Path) -> list[tuple[str, str, str]]:
    with SQLiteJournal(tmp_path / "j.db") as store:
        report = verify_run(store, "r")
    return [(f.step_id, f.code, f.message) for f in report.failures]


def test_a_checkpoint_edited_after_signing_is_told_from_a_forged_one(tmp_path: Path) -> None:
    """The run's key signed it, the chain's entries show what it signed: the verdict
    says which field was edited, not merely that the signature fails."""
    _run(tmp_path)
    ((k, n, head, sig),) = _sql(
        tmp_path, "SELECT k, n, head, signature FROM checkpoints WHERE k = 2"
    )
    flipped = bytes([head[0] ^ 1]) + bytes(head[1:])
    _sql(tmp_path, "UPDATE checkpoints SET head = ? WHERE k = ?", flipped, k)
    ((where, code, why),) = _checkpoint_failures(tmp_path)
    assert (where, code) == (f"checkpoint#{k}", "CHAIN_ALTERED")
    assert f"recorded head was altered after it was signed: the chain's entries up to {n}" in why

    _sql(tmp_path, "UPDATE checkpoints SET head = ?, n = ? WHERE k = ?", head, n - 1, k)
    ((where, code, why),) = _checkpoint_failures(tmp_path)
    assert (where, code) == (f"checkpoint#{k}", "CHAIN_ALTERED")
    signed = f"it signed the chain up to entry {n}, and reads {n - 1}"
    assert f"recorded count was altered after it was signed: {signed}" in why

    forged = AgentKey.from_seed(b"f" * 32).sign(b"anything")
    _sql(tmp_path, "UPDATE checkpoints SET n = ?, signature = ? WHERE k = ?", n, forged, k)
    ((where, code, why),) = _checkpoint_failures(tmp_path)
    assert (where, code) == (f"checkpoint#{k}", "CHECKPOINT_SIGNATURE")
    assert "forged, or altered after it was signed" in why

    _sql(tmp_path, "UPDATE checkpoints SET signature = ? WHERE k = ?", sig, k)
    assert _checkpoint_failures(tmp_path) == []


def test_a_widened_delegation_is_reported_at_its_task(tmp_path: Path) -> None:
    _run(tmp_path)
    ((plan_id, output),) = _sql(tmp_path, "SELECT step_id, output FROM steps WHERE kind = 'plan'")
    wider = output.replace('"depth":0', '"depth":9').replace('"depth": 0', '"depth": 9')
    assert wider != output
    _sql(tmp_path, "UPDATE steps SET output = ? WHERE step_id = ?", wider, plan_id)
    failures = _failures(tmp_path)
    assert (plan_id, "ROW_ALTERED") in failures
    assert {code for _, code in failures} == {"ROW_ALTERED", "NARROWING"}
    assert len([1 for _, code in failures if code == "NARROWING"]) == 3


def test_a_deleted_row_breaks_the_chain(tmp_path: Path) -> None:
    _run(tmp_path)
    step = _a_call(tmp_path)
    _sql(tmp_path, "DELETE FROM steps WHERE step_id = ?", step)
    assert {code for _, code in _failures(tmp_path)} == {"CHAIN_BROKEN"}


def test_pinning_another_principal_fails_the_grant(tmp_path: Path) -> None:
    _run(tmp_path)
    stranger = AgentKey.from_seed(b"x" * 32).public
    assert _failures(tmp_path, principal_public=stranger) == {("run", "WARRANT_FORGED")}


def test_a_run_remit_that_differs_from_the_grant_is_reported(tmp_path: Path) -> None:
    _run(tmp_path)
    wider = Remit(tools={"read_file": {}, "write_file": {}}, depth=1).to_json()
    _sql(tmp_path, "UPDATE runs SET remit = ? WHERE run_id = 'r'", wider)
    assert _failures(tmp_path) == {("run", "WARRANT_ROOT_MISMATCH"), ("run", "RUN_ALTERED")}


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
    assert report["sealed"] is True and report["checkpoints"] >= 2
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
    assert "recorded under the sealed chain, nonce: yes" in text
    assert "verifies offline ✓" in text
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
