"""Run secrets: one journal secret beside the journal, each run's derived with its salt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from remit.errors import JournalError
from remit.journal import SQLiteJournal
from remit.trust.provenance import KeyFiles, RunKeys, verify_run


def test_a_runs_secret_is_derived_again_from_the_journal_secret_and_its_salt(
    tmp_path: Path,
) -> None:
    secret, salt = KeyFiles(tmp_path / "keys").new_run("r1")
    # another process (here: another instance) finds the same journal secret on disk
    assert KeyFiles(tmp_path / "keys").load("r1", {"key_salt": salt}) == secret
    # the salt and the run id both matter
    other, salt2 = KeyFiles(tmp_path / "keys").new_run("r1")
    assert salt2 != salt and other != secret
    assert KeyFiles(tmp_path / "keys").load("r2", {"key_salt": salt}) != secret
    # one file, its owner's only, and no temporary file left behind
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["journal.secret"]
    assert (tmp_path / "keys" / "journal.secret").stat().st_mode & 0o777 == 0o600


def test_processes_making_the_journal_secret_at_once_all_end_up_with_one(
    tmp_path: Path,
) -> None:
    code = (
        "import json, sys\n"
        "from remit.trust.provenance import KeyFiles\n"
        "secret, salt = KeyFiles(sys.argv[1]).new_run(sys.argv[2])\n"
        "print(json.dumps([secret.hex(), salt]))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "keys"), f"r{i}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    made = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    keys = KeyFiles(tmp_path / "keys")
    for i, (secret, salt) in enumerate(made):
        assert keys.load(f"r{i}", {"key_salt": salt}).hex() == secret, f"process {i}"
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["journal.secret"]


def test_a_run_recorded_before_journal_secrets_reads_its_own_key_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "old-run.key").write_text("ab" * 32 + "\n")
    assert KeyFiles(keys).load("old-run", {"principal_key": "..."}) == bytes([0xAB]) * 32
    with pytest.raises(JournalError, match=r"its key file .*gone-run\.key is missing"):
        KeyFiles(keys).load("gone-run", {})


@pytest.mark.parametrize("salt", ["zz" * 16, "ab", 7])
def test_a_damaged_salt_is_named(tmp_path: Path, salt: object) -> None:
    with pytest.raises(JournalError, match="run r1: its record's key_salt is damaged"):
        KeyFiles(tmp_path / "keys").load("r1", {"key_salt": salt})


def test_a_journal_in_memory_keeps_its_secret_for_this_process_only() -> None:
    keys = KeyFiles(None)
    secret, salt = keys.new_run("r1")
    assert keys.load("r1", {"key_salt": salt}) == secret
    assert RunKeys(secret).run.public == RunKeys(keys.load("r1", {"key_salt": salt})).run.public
    with pytest.raises(JournalError, match="kept in memory by the process that started it"):
        KeyFiles(None).load("r1", {"key_salt": salt})


def test_a_key_directory_that_is_a_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("a file where the directory should be")
    with pytest.raises(JournalError, match=r"run r1: .*keys/journal\.secret: Not a directory"):
        KeyFiles(tmp_path / "keys").new_run("r1")
    assert (tmp_path / "keys").read_text() == "a file where the directory should be"


def test_a_secret_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    # the directory exists but is a dangling link: reading finds nothing, writing fails
    (tmp_path / "keys").symlink_to(tmp_path / "nowhere" / "keys")
    with pytest.raises(JournalError, match=r"cannot write the journal's secret .*keys/journal"):
        KeyFiles(tmp_path / "keys").new_run("r1")


_START_RUN = """
import sys
from remit import Agent, Remit, Runtime

class Leaf(Agent):
    async def execute(self, ctx):
        return "done"

journal = sys.argv[1]
try:
    run = Runtime(journal=journal, agent=Leaf()).run("g", remit=Remit(), run_id="same")
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(3)
print("ok" if run.ok else run.error)
"""


def test_processes_starting_one_run_id_at_once_leave_one_run_that_verifies(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "j.db"
    SQLiteJournal(journal).close()  # the file exists: every process races for the run only
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _START_RUN, str(journal)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [(p.communicate(timeout=120), p.returncode) for p in procs]
    won = [out for (out, _), code in outs if code == 0]
    lost = [out for (out, _), code in outs if code == 3]
    assert len(won) == 1 and won[0].strip() == "ok", outs
    assert len(lost) == 3 and all("already exists" in out for out in lost), outs
    store = SQLiteJournal(journal)
    try:
        assert [r.run_id for r in store.list_runs()] == ["same"]
        assert verify_run(store, "same").ok
    finally:
        store.close()
    assert [p.name for p in (tmp_path / "j.db.keys").iterdir()] == ["journal.secret"]
