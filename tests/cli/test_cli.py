"""The ``remit`` command: run, resume, runs, show; exit codes 0/1/2; clear errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remit.cli import app, build_remit
from remit.errors import RemitFormatError
from remit.jobs.audit import audit_remit

runner = CliRunner()

AGENTS = '''
import asyncio
import os

from remit import Agent, Plan, Subtask, tool


@tool
def note(i: int) -> int:
    """Append a line to calls.log (so a test can count real executions)."""
    with open("calls.log", "a") as f:
        f.write(f"{i}\\n")
    return i * 10


class Slow(Agent):
    tools = [note]

    def atomize(self, ctx):
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx):
        return Plan([Subtask(f"s{i}", f"step {i}", inputs={"i": i}) for i in range(3)])

    async def execute(self, ctx):
        if ctx.inputs["i"] == 2 and os.path.exists("hang"):
            await asyncio.sleep(60)
        return await ctx.call("note", i=ctx.inputs["i"])

    def aggregate(self, ctx, results):
        return sum(r.value for r in results)


class Failer(Agent):
    def execute(self, ctx):
        raise ValueError("no luck")
'''


def remit_cli(
    *args: str | Path, cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remit.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace with a small src/ tree (one entry the remit denies) and agents.py."""
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "a.py").write_text("def f():\n    return 1\n")
    (tmp_path / "src" / "notes.md").write_text("# notes\n")
    (tmp_path / "src" / "blob.bin").write_bytes(b"\x00\x01")
    (tmp_path / "agents.py").write_text(AGENTS)
    return tmp_path


def run_id_of(output: str) -> str:
    for word in output.split():
        if word.startswith("run-"):
            return word
    raise AssertionError(f"no run id in {output!r}")


# --- run, runs, show, resume ------------------------------------------------------------


def test_audit_job_end_to_end(ws: Path) -> None:
    r = remit_cli("run", "--job", "audit", "--journal", "j.db", cwd=ws)
    assert r.returncode == 0, r.stderr
    assert "✓ done  Audit src/ and write out/audit.md" in r.stdout
    assert "audited 2 files" in r.stdout and "1 denied" in r.stdout
    assert "calls" in r.stdout and "executed" in r.stdout
    rid = run_id_of(r.stdout)
    assert f"remit show {rid} --journal j.db" in r.stdout
    assert (ws / "out" / "audit.md").is_file()
    assert "Traceback" not in r.stderr

    # the rest in process (cheaper): the same app, the same journal
    j = str(ws / "j.db")
    listed = runner.invoke(app, ["runs", "-j", j])
    assert listed.exit_code == 0 and rid in listed.stdout and "done" in listed.stdout

    shown = runner.invoke(app, ["show", rid, "-j", j], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.stderr
    out = shown.stdout
    assert "Audit src/ and write out/audit.md  plan" in out
    assert "audit src/pkg/  plan" in out and "measure src/pkg/a.py  execute  1/1 calls" in out
    # the denied call, under the leaf that made it, with its reason
    assert "measure src/blob.bin" in out
    assert "denied read_file: argument 'path'='src/blob.bin' violates matches" in out
    assert "1 denied call" in out

    data = json.loads(runner.invoke(app, ["show", rid, "-j", j, "--json"]).stdout)
    assert data["run"]["status"] == "done" and data["summary"]["denied"] == 1
    assert data["tree"]["decision"] == "plan"

    again = runner.invoke(app, ["resume", rid, "-j", j])
    assert again.exit_code == 0 and "already finished" in again.stdout


def test_failed_run_exits_1_with_the_error(ws: Path) -> None:
    r = remit_cli("run", "try", "--agent", "agents:Failer", "-j", "j.db", cwd=ws)
    assert r.returncode == 1, r.stderr
    assert "✗ failed" in r.stdout and "STEP_FAILED" in r.stdout and "no luck" in r.stdout
    assert "Traceback" not in r.stderr
    rid = run_id_of(r.stdout)
    shown = remit_cli("show", rid, "-j", "j.db", cwd=ws)
    assert "STEP_FAILED" in shown.stdout and "failed" in shown.stdout


def test_resume_after_kill_9_redoes_no_finished_step(ws: Path) -> None:
    (ws / "hang").write_text("")  # step 2 hangs until this file is gone
    proc = subprocess.Popen(
        [sys.executable, "-m", "remit.cli", "run", "sum", "--agent", "agents:Slow",
         "--tool", "note", "--calls", "10", "--depth", "1", "-j", "j.db", "--run-id", "r1",
         "--quiet"], cwd=ws, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "the run never finished its first steps"
            assert proc.poll() is None, "the run ended on its own"
            if (ws / "j.db").exists():
                db = sqlite3.connect(f"file:{ws / 'j.db'}?mode=ro", uri=True)
                try:
                    ended = db.execute("SELECT count(*) FROM steps WHERE kind = 'task' "
                                       "AND status = 'ok'").fetchone()[0]  # fmt: skip
                except sqlite3.OperationalError:
                    ended = 0
                finally:
                    db.close()
                if ended >= 2:
                    break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (ws / "hang").unlink()
    assert sorted((ws / "calls.log").read_text().split()) == ["0", "1"]

    listed = remit_cli("runs", "-j", "j.db", cwd=ws)
    # its process is gone: nobody carries the run any more
    assert "r1" in listed.stdout and "interrupted" in listed.stdout
    assert "running" not in listed.stdout
    shown = remit_cli("show", "r1", "-j", "j.db", cwd=ws)
    assert shown.returncode == 0, shown.stderr
    # step 2 had journaled nothing when killed: it is known from the plan, not finished
    assert "✓ step 0" in shown.stdout and "step 2" in shown.stdout
    assert "✓ step 2" not in shown.stdout
    assert "◐ run r1  interrupted" in shown.stdout
    assert "no process carries this run" in shown.stdout and "remit resume r1" in shown.stdout
    r = remit_cli("resume", "r1", "-j", "j.db", cwd=ws)
    assert r.returncode == 0, r.stderr
    assert "✓ done" in r.stdout and "30" in r.stdout
    # steps 0 and 1 were served from the journal: only step 2 really ran
    assert sorted((ws / "calls.log").read_text().split()) == ["0", "1", "2"]
    assert "replayed" in r.stdout


# --- exit code 2: bad input -----------------------------------------------------------


def test_malformed_remit_file_names_the_field(ws: Path) -> None:
    bad = ws / "bad.toml"
    bad.write_text("[budget]\ncalls = -3\n")
    r = runner.invoke(app, ["run", "--job", "audit", "--remit", str(bad), "-j",
                            str(ws / "j.db"), "--workspace", str(ws)])  # fmt: skip
    assert r.exit_code == 2
    assert "REMIT_FORMAT" in r.stderr and "bad.toml" in r.stderr
    assert "remit.budget.calls: must be a non-negative integer, got -3" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.exception is None or isinstance(r.exception, SystemExit)

    bad.write_text("[budget\ncalls = 3\n")
    r = runner.invoke(app, ["run", "--job", "audit", "--remit", str(bad), "-j",
                            str(ws / "j.db"), "--workspace", str(ws)])  # fmt: skip
    assert r.exit_code == 2 and "invalid TOML" in r.stderr

    bad.write_text("budgets = {}\n")
    r = runner.invoke(app, ["run", "--job", "audit", "--remit", str(bad), "-j",
                            str(ws / "j.db"), "--workspace", str(ws)])  # fmt: skip
    assert r.exit_code == 2 and "remit.budgets: unknown field" in r.stderr


def test_unknown_tool_in_the_remit(ws: Path) -> None:
    f = ws / "shell.toml"
    f.write_text("[tools.shell]\ncommand = { max_len = 10 }\n")
    r = runner.invoke(app, ["run", "--job", "audit", "--remit", str(f), "-j", str(ws / "j.db"),
                            "--workspace", str(ws)])  # fmt: skip
    assert r.exit_code == 2
    assert "UNKNOWN_TOOL" in r.stderr and "'shell'" in r.stderr
    r = runner.invoke(app, ["run", "--job", "audit", "--tool", "nope", "-j", str(ws / "j.db"),
                            "--workspace", str(ws)])  # fmt: skip
    assert r.exit_code == 2 and "'nope'" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--job", "audit", "--deadline", "15q"], "--deadline: cannot parse '15q'"),
        (["run", "--job", "nojob"], "unknown job 'nojob'"),
        (["run", "g"], "--job audit, or --agent module:attr"),
        (["run", "g", "--job", "audit", "--agent", "a:b"], "either --job or --agent"),
        (["run", "--agent", "agents:Slow"], "a goal is required"),
        (["run", "g", "--agent", "no_such_module:X"], "AGENT_NOT_FOUND"),
        (["run", "--job", "audit", "--inputs", "{not json"], "--inputs is not valid JSON"),
        (["run", "--job", "audit", "--inputs", "[1]"], "--inputs must be a JSON object"),
        (["run", "--job", "audit", "--inputs", '{"target": "nope"}'], "'nope' is not a directory"),
        (["run", "--job", "audit", "--durability", "maybe"], "--durability must be"),
        (["run", "--job", "audit", "--calls", "-1"], "Invalid value for '--calls'"),
        (["run", "--job", "audit", "--bogus"], "No such option"),
    ],
)
def test_bad_input_exits_2(ws: Path, args: list[str], message: str) -> None:
    r = runner.invoke(app, [*args, "-j", str(ws / "j.db"), "--workspace", str(ws)])
    assert r.exit_code == 2, r.output
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_run_and_missing_journal(ws: Path) -> None:
    r = runner.invoke(app, ["run", "--job", "audit", "-j", str(ws / "j.db"), "--workspace",
                            str(ws), "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    for cmd in (["show", "nope"], ["resume", "nope"]):
        r = runner.invoke(app, [*cmd, "-j", str(ws / "j.db")])
        assert r.exit_code == 2 and "RUN_NOT_FOUND" in r.stderr and "'nope'" in r.stderr
    for cmd in (["show", "x"], ["resume", "x"], ["runs"]):
        r = runner.invoke(app, [*cmd, "-j", str(ws / "missing.db")])
        assert r.exit_code == 2 and "no journal at" in r.stderr
    assert not (ws / "missing.db").exists()  # reading never creates a journal


def test_truncated_journal_exits_2_with_journal_corrupt(ws: Path) -> None:
    r = runner.invoke(app, ["run", "--job", "audit", "-j", str(ws / "j.db"), "--workspace",
                            str(ws), "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rid = r.stdout.split()[0]
    copy = ws / "copy.db"
    shutil.copy(ws / "j.db", copy)
    with copy.open("r+b") as f:
        f.truncate(copy.stat().st_size // 2)
    for cmd in (["show", rid], ["resume", rid], ["runs"]):
        r = remit_cli(*cmd, "-j", copy, cwd=ws)
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        assert "JOURNAL_CORRUPT" in r.stderr and "truncated" in r.stderr
        assert "Traceback" not in r.stderr


# --- cheap paths in process -------------------------------------------------------------


def test_runs_lists_and_show_collapses(ws: Path) -> None:
    j = str(ws / "j.db")
    r = runner.invoke(app, ["run", "--job", "audit", "-j", j, "--workspace", str(ws), "-q"])
    assert r.exit_code == 0, r.output
    rid, status = r.stdout.split()
    assert status == "done"
    r = runner.invoke(app, ["runs", "-j", j, "--limit", "5"])
    assert r.exit_code == 0 and rid in r.stdout
    r = runner.invoke(app, ["show", rid, "-j", j, "--max-children", "1"])
    assert r.exit_code == 0 and "… and 2 more (2 done)" in r.stdout
    r = runner.invoke(app, ["show", rid, "-j", j, "--all"])
    assert r.exit_code == 0 and "more (" not in r.stdout


def test_flags_override_the_remit_file(ws: Path) -> None:
    f = ws / "audit.toml"
    f.write_text(audit_remit().to_toml())
    j = str(ws / "j.db")
    r = runner.invoke(app, ["run", "--job", "audit", "--remit", str(f), "--calls", "7",
                            "--depth", "2", "-j", j, "--workspace", str(ws), "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rid = r.stdout.split()[0]
    data = json.loads(runner.invoke(app, ["show", rid, "-j", j, "--json"]).stdout)
    assert data["run"]["remit"]["budget"] == {"calls": 7}
    assert data["run"]["remit"]["depth"] == 2
    assert data["summary"]["spent"]["calls"] <= 7


def test_build_remit() -> None:
    base = audit_remit()
    r = build_remit(base, tools=["read_file", "calculator"], cost_usd=0.5, tokens=100)
    assert set(r.tools) == {"read_file", "calculator"}
    assert r.tools["read_file"] == base.tools["read_file"]  # constraints kept
    assert r.budget.calls == 1000 and r.budget.cost_usd == 0.5
    assert r.budget.input_tokens == r.budget.output_tokens == 100
    assert build_remit(None, deadline="1m").deadline is not None
    assert build_remit(None).tools == {}
    with pytest.raises(RemitFormatError, match="--deadline"):
        build_remit(None, deadline="soon")


def test_help_and_main_module() -> None:
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("run", "resume", "runs", "show"):
        assert cmd in r.stdout
    # `python -m remit.cli` runs the command
    r = subprocess.run([sys.executable, "-m", "remit.cli", "--help"], capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0 and "resume" in r.stdout


# --- rough edges a new user met ----------------------------------------------------------------

SLOW = ("--agent", "agents:Slow", "--tool", "note", "--depth", "1")


def test_a_role_failure_names_the_role_once(ws: Path) -> None:
    r = remit_cli("run", "try", "--agent", "agents:Failer", "-j", "j.db", cwd=ws)
    assert "role execute raised ValueError: no luck" in r.stdout
    assert "execute execute" not in r.stdout


@pytest.mark.parametrize("bad", ["a/b", "../x", ".hidden", "-x", "a b", "x" * 129])
def test_a_malformed_run_id_is_refused_before_anything_is_made(ws: Path, bad: str) -> None:
    r = remit_cli("run", "g", *SLOW, "--run-id", bad,
                  "-j", "j.db", cwd=ws)  # fmt: skip
    assert r.returncode == 2, r.stdout
    assert "[INVALID_INPUT]" in r.stderr and "is not valid" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (ws / "j.db.keys").exists() or not any((ws / "j.db.keys").iterdir())


def test_runs_derive_their_keys_from_one_journal_secret_and_a_salt_of_their_own(ws: Path) -> None:
    for rid in ("r7", "r8"):
        made = remit_cli("run", "g", *SLOW, "--run-id", rid, "-j", "j.db", cwd=ws)
        assert made.returncode == 0, made.stderr
    keys = ws / "j.db.keys"
    # one file however many runs, readable by its owner only
    assert [p.name for p in keys.iterdir()] == ["journal.secret"]
    assert (keys / "journal.secret").stat().st_mode & 0o777 == 0o600
    secret = (keys / "journal.secret").read_text()
    again = remit_cli("run", "g", *SLOW, "--run-id", "r7", "-j", "j.db", cwd=ws)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert (keys / "journal.secret").read_text() == secret, "the journal's secret was replaced"
    for rid in ("r7", "r8"):
        assert remit_cli("verify", rid, "-j", "j.db", cwd=ws).returncode == 0

    def principal(rid: str) -> str:
        conn = sqlite3.connect(ws / "j.db")
        try:
            (meta,) = conn.execute("SELECT meta FROM runs WHERE run_id = ?", (rid,)).fetchone()
        finally:
            conn.close()
        return json.loads(meta)["principal_key"]

    before = principal("r7")
    assert before != principal("r8")
    # the journal lost, its secret kept: the id taken again is another run with another key
    for name in ("j.db", "j.db-wal", "j.db-shm"):
        (ws / name).unlink(missing_ok=True)
    anew = remit_cli("run", "g", *SLOW, "--run-id", "r7", "-j", "j.db", cwd=ws)
    assert anew.returncode == 0, anew.stderr
    assert (keys / "journal.secret").read_text() == secret
    assert principal("r7") != before


def test_key_file_problems_are_one_clear_line(ws: Path) -> None:
    made = remit_cli("key", "new", "no/such/dir/k", cwd=ws)
    assert made.returncode == 2
    assert made.stderr.strip().startswith("remit: error: [OS_ERROR] no/such/dir/k: No such file")
    (ws / "bad.key").write_bytes(b"\xff\xfe not hex")
    bad = remit_cli("run", "g", *SLOW,
                    "--principal-key", "bad.key", "-j", "j.db", cwd=ws)  # fmt: skip
    assert bad.returncode == 2 and "principal key bad.key" in bad.stderr
    assert "Traceback" not in bad.stderr
    # a run whose key file became a directory: resume says which file and what it must be
    r = remit_cli("run", "g", *SLOW, "--run-id", "k1",
                  "-j", "j.db", cwd=ws)  # fmt: skip
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(ws / "j.db")
    with conn:
        conn.execute("UPDATE runs SET status = 'running' WHERE run_id = 'k1'")
    conn.close()
    key = ws / "j.db.keys" / "journal.secret"
    key.unlink()
    missing = remit_cli("resume", "k1", "-j", "j.db", cwd=ws)
    assert missing.returncode == 2
    assert (
        "its key file j.db.keys/journal.secret is missing" in missing.stderr
        and "Traceback" not in missing.stderr
    )
    key.mkdir()
    res = remit_cli("resume", "k1", "-j", "j.db", cwd=ws)
    assert res.returncode == 2
    assert (
        "cannot read its key file j.db.keys/journal.secret: Is a directory" in res.stderr
        and "Traceback" not in res.stderr
    )


def test_show_and_runs_print_no_control_or_bidi_characters_of_a_goal(ws: Path) -> None:
    goal = "pay \x1b[31mbob\r\u202eevil"
    r = remit_cli("run", goal, *SLOW, "--run-id", "cc",
                  "-j", "j.db", cwd=ws)  # fmt: skip
    assert r.returncode == 0, r.stderr
    for out in (r.stdout, remit_cli("runs", "-j", "j.db", cwd=ws).stdout,
                remit_cli("show", "cc", "-j", "j.db", cwd=ws).stdout):  # fmt: skip
        assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
        assert "pay �[31mbob" in out
    as_json = json.loads(remit_cli("show", "cc", "-j", "j.db", "--json", cwd=ws).stdout)
    assert as_json["run"]["goal"] == goal


def test_resolve_records_a_persons_answer_and_resume_goes_on(ws: Path) -> None:
    (ws / "fx.py").write_text(textwrap.dedent('''
        import os
        from remit import Agent, tool

        @tool(effect=True, idempotent=False)
        def charge(cents: int) -> str:
            with open("charges.log", "a") as f:
                f.write(f"{cents}\\n")
            if os.path.exists("crash"):
                os.kill(os.getpid(), 9)
            return f"charged {cents}"

        class Pay(Agent):
            tools = [charge]

            async def execute(self, ctx):
                return await ctx.call("charge", cents=500)
    '''))  # fmt: skip
    (ws / "crash").write_text("")
    r = remit_cli("run", "pay", "--agent", "fx:Pay", "--tool", "charge", "--run-id", "p1",
                  "-j", "j.db", cwd=ws)  # fmt: skip
    assert r.returncode == -9
    (ws / "crash").unlink()
    halted = remit_cli("resume", "p1", "-j", "j.db", cwd=ws)
    assert halted.returncode == 3, halted.stderr
    assert "[EFFECT_UNCERTAIN]" in halted.stderr and "remit resolve p1" in halted.stderr
    step = next(w for w in halted.stderr.split() if w.endswith(":execute.0"))
    bad = remit_cli("resolve", "p1", step, "--happened", "{not json", "-j", "j.db", cwd=ws)
    assert bad.returncode == 2 and "--happened must be" in bad.stderr
    ok = remit_cli("resolve", "p1", step, "--happened", '"charged 500 (seen)"', "--why",
                   "bank log", "--by", "ana", "-j", "j.db", cwd=ws)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    done = remit_cli("resume", "p1", "-j", "j.db", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert "charged 500 (seen)" in done.stdout
    assert (ws / "charges.log").read_text().split() == ["500"]


def test_two_runs_started_with_one_id_at_once_leave_one_run_and_its_key(ws: Path) -> None:
    cmd = [sys.executable, "-m", "remit.cli", "run", "g", *SLOW, "--run-id", "twin",
           "-j", "j.db", "--quiet"]  # fmt: skip
    procs = [subprocess.Popen(cmd, cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]  # fmt: skip
    codes = sorted(p.wait(timeout=60) for p in procs)
    errs = "".join(p.stderr.read().decode() for p in procs if p.stderr)
    assert codes == [0, 2], errs
    assert "already exists" in errs
    assert remit_cli("verify", "twin", "-j", "j.db", cwd=ws).returncode == 0


def test_the_cli_starts_without_importing_what_only_schema_checks_need() -> None:
    # jsonschema (with referencing and its metaschemas) takes about 0.2 s to import:
    # `remit show`, `runs` and `verify` never check a schema, so they never pay for it
    probe = (
        "import sys, remit.cli\nprint(sorted(m for m in sys.modules if m.startswith('jsonschema')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
