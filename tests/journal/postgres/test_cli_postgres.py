"""``remit run``, kill -9, ``remit resume``, ``show``, ``runs`` and ``verify`` against a
``postgresql://`` journal, in real subprocesses, exactly as the CLI tests do on a file."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from remit.journal.postgres.throwaway import ThrowawayServer
from tests.cli.test_cli import AGENTS

pytestmark = pytest.mark.postgres

_dbs = itertools.count()


@pytest.fixture
def db(pg_server: ThrowawayServer) -> str:
    """A database of this test's own (runs are keyed by id, so tests must not share)."""
    return pg_server.create_database(f"cli_{os.getpid()}_{next(_dbs)}")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "agents.py").write_text(AGENTS)
    return tmp_path


def remit_cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "REMIT_KEYS_DIR": str(cwd / "keys")}
    return subprocess.run([sys.executable, "-m", "remit.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)  # fmt: skip


def ended_tasks(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM steps WHERE kind = 'task' AND status = 'ok'"
        ).fetchone()
    return 0 if row is None else int(row[0])


def test_run_kill_9_resume_show_and_verify(ws: Path, db: str) -> None:
    (ws / "hang").write_text("")  # step 2 hangs until this file is gone
    env = {**os.environ, "REMIT_KEYS_DIR": str(ws / "keys")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "remit.cli", "run", "sum", "--agent", "agents:Slow",
         "--tool", "note", "--calls", "10", "--depth", "1", "-j", db, "--run-id", "r1",
         "--quiet"], cwd=ws, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "the run never finished its first steps"
            assert proc.poll() is None, f"the run ended on its own: {proc.stderr}"
            try:
                if ended_tasks(db) >= 2:
                    break
            except psycopg.errors.UndefinedTable:
                pass  # the schema is not made yet
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (ws / "hang").unlink()
    assert sorted((ws / "calls.log").read_text().split()) == ["0", "1"]

    listed = remit_cli("runs", "-j", db, cwd=ws)
    assert listed.returncode == 0, listed.stderr
    assert "r1" in listed.stdout and "interrupted" in listed.stdout
    shown = remit_cli("show", "r1", "-j", db, cwd=ws)
    assert shown.returncode == 0, shown.stderr
    assert "✓ step 0" in shown.stdout and "✓ step 2" not in shown.stdout
    assert "◐ run r1  interrupted" in shown.stdout

    r = remit_cli("resume", "r1", "-j", db, cwd=ws)
    assert r.returncode == 0, r.stderr
    assert "✓ done" in r.stdout and "30" in r.stdout
    # steps 0 and 1 were served from the journal: only step 2 really ran
    assert sorted((ws / "calls.log").read_text().split()) == ["0", "1", "2"]

    v = remit_cli("verify", "r1", "-j", db, cwd=ws)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "verified ✓" in v.stdout
    shown = remit_cli("show", "r1", "-j", db, cwd=ws)
    assert "✓ step 2" in shown.stdout

    # an edited row is caught, from the database alone
    with psycopg.connect(db) as conn:
        conn.execute("UPDATE steps SET output = '999' WHERE step_id LIKE '%%:execute.0' AND"
                     " output IS NOT NULL AND step_id = (SELECT min(step_id) FROM steps"
                     " WHERE step_id LIKE '%%:execute.0')")  # fmt: skip
    v = remit_cli("verify", "r1", "-j", db, cwd=ws)
    assert v.returncode == 1 and "ROW_ALTERED" in v.stdout, v.stdout + v.stderr


def test_a_failed_run_and_an_unknown_run(ws: Path, db: str) -> None:
    r = remit_cli("run", "try", "--agent", "agents:Failer", "-j", db, cwd=ws)
    assert r.returncode == 1, r.stderr
    assert "STEP_FAILED" in r.stdout and "no luck" in r.stdout
    shown = remit_cli("show", "nope", "-j", db, cwd=ws)
    assert shown.returncode == 2 and "no run 'nope'" in shown.stderr
    assert "password" not in shown.stderr


def test_an_unreachable_server_is_one_clear_line(ws: Path) -> None:
    with socket_port() as port:
        url = f"postgresql://nobody@127.0.0.1:{port}/none"
        r = remit_cli("runs", "-j", url, cwd=ws)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "cannot open journal" in r.stderr


class socket_port:
    """A port of 127.0.0.1 nothing listens on (held closed while the test uses it)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None
