"""The Gate applies a policy's decision: tell the agent, stop the task, or ask a person.

A person answers with ``remit approve|deny RUN STEP`` from another process; the request
is journaled, so a restarted run waits for the same answer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from remit import Agent, Remit, Runtime, tool
from remit.errors import DeniedError
from remit.journal import SQLiteJournal
from remit.trust.provenance import verify_run

SENT: list[dict[str, Any]] = []


@tool(effect=True)
def send_money(recipient: str, amount: int) -> str:
    SENT.append({"recipient": recipient, "amount": amount})
    return f"sent {amount} to {recipient}"


def bank_remit(fallback: str, deadline: str = "10m") -> Remit:
    return Remit.from_toml(
        textwrap.dedent(f"""
        deadline = "{deadline}"
        [tools.send_money]
        fallback = "{fallback}"
        rules = [
          {{ forbid = {{ amount = {{ between = {{ min = 1000 }} }} }}, reason = "large transfer" }},
          {{ allow = {{ recipient = {{ in_inputs = true }} }} }},
        ]
        """)
    )


class Payer(Agent):
    """Pays whom it was told to by something other than the person (a fetched page, a
    confused model); reports a denial instead of failing when told one."""

    tools = (send_money,)

    def __init__(self, to: str, amount: int) -> None:
        self.to, self.amount = to, amount

    async def execute(self, ctx: Any) -> Any:
        try:
            return await ctx.call("send_money", recipient=self.to, amount=self.amount)
        except DeniedError as e:
            return f"refused: {e.message}"


@pytest.fixture(autouse=True)
def _clear() -> None:
    SENT.clear()


def denied_rows(journal: Path, run_id: str) -> list[Any]:
    with SQLiteJournal(journal) as store:
        return [s for s in store.steps(run_id) if s.status == "denied"]


def test_tell_returns_the_explained_denial_to_the_agent(tmp_path: Path) -> None:
    rt = Runtime(journal=tmp_path / "j.db", agent=Payer("mallory", 50))
    run = rt.run("pay bob 50", remit=bank_remit("tell"),
                 run_id="r")  # fmt: skip
    assert run.ok
    assert "rule send_money#2" in run.result and run.result.startswith("refused: denied")
    assert SENT == []
    (row,) = denied_rows(tmp_path / "j.db", "r")
    assert "send_money#2" in (row.error or "")


def test_in_inputs_checks_the_users_words_not_the_childs_inputs(tmp_path: Path) -> None:
    rt = Runtime(journal=tmp_path / "j.db", agent=Payer("bob", 50))
    # "bob" is in the goal the person wrote: allowed
    run = rt.run("pay bob 50", remit=bank_remit("tell"))
    assert run.ok and run.result == "sent 50 to bob"
    assert SENT == [{"recipient": "bob", "amount": 50}]
    # offline, the call verifies against the same words of the person's
    report = verify_run(rt.store, run.id)
    assert report.ok and report.calls == 1 and report.approved == 0


def test_a_forbid_rule_wins_over_a_later_allow(tmp_path: Path) -> None:
    rt = Runtime(journal=tmp_path / "j.db", agent=Payer("bob", 5000))
    run = rt.run("pay bob 5000", remit=bank_remit("tell"))
    assert run.ok and "large transfer" in run.result and "send_money#1" in run.result
    assert SENT == []


def test_stop_fails_the_task_even_when_the_role_catches_the_denial(tmp_path: Path) -> None:
    rt = Runtime(journal=tmp_path / "j.db", agent=Payer("mallory", 50))
    run = rt.run("pay bob 50", remit=bank_remit("stop"))
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "DENIED"
    assert "send_money#2" in run.error["message"]
    assert SENT == []


@tool(effect=True)
def send_email(recipients: list[str], subject: str) -> str:
    SENT.append({"recipients": recipients, "subject": subject})
    return f"sent {subject!r} to {', '.join(recipients)}"


class Mailer(Agent):
    """Mails whom it was told to, which may be more people than the policy allows."""

    tools = (send_email,)

    def __init__(self, recipients: list[str]) -> None:
        self.recipients = recipients

    async def execute(self, ctx: Any) -> Any:
        try:
            return await ctx.call("send_email", recipients=self.recipients, subject="minutes")
        except DeniedError as e:
            return f"refused: {e.message}"


MAIL_REMIT = """
deadline = "10m"
[tools.send_email]
recipients = { each = { one_of = ["a@x.io", "b@x.io"] } }
"""


def test_a_list_argument_with_one_element_outside_the_allowed_set_is_denied_at_the_gate(
    tmp_path: Path,
) -> None:
    rt = Runtime(journal=tmp_path / "j.db", agent=Mailer(["a@x.io", "eve@evil.io", "b@x.io"]))
    run = rt.run("send the minutes", remit=Remit.from_toml(MAIL_REMIT), run_id="r")
    assert run.ok and run.result == (
        "refused: send_email: argument 'recipients[1]'='eve@evil.io' violates "
        "one_of('a@x.io', 'b@x.io'): 'eve@evil.io' is not one of 'a@x.io', 'b@x.io'"
    )
    assert SENT == []
    (row,) = denied_rows(tmp_path / "j.db", "r")
    assert "recipients[1]" in (row.error or "")
    # every recipient in the set: the call goes through and verifies offline
    rt = Runtime(journal=tmp_path / "k.db", agent=Mailer(["b@x.io", "a@x.io"]))
    run = rt.run("send the minutes", remit=Remit.from_toml(MAIL_REMIT))
    assert run.ok and run.result == "sent 'minutes' to b@x.io, a@x.io"
    assert SENT == [{"recipients": ["b@x.io", "a@x.io"], "subject": "minutes"}]
    report = verify_run(rt.store, run.id)
    assert report.ok and report.calls == 1


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remit.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def _waiting_step(journal: Path, run_id: str, timeout: float = 20) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if journal.exists():
            with SQLiteJournal(journal) as store:
                try:
                    for s in store.steps(run_id):
                        if s.kind == "approval" and s.status == "started":
                            return s.step_id.removesuffix("~approval")
                except Exception:
                    pass
        time.sleep(0.05)
    raise AssertionError("no call came to wait for approval")


@pytest.mark.parametrize("answer", ["approve", "deny"])
def test_ask_waits_for_a_person_who_answers_from_another_process(
    tmp_path: Path, answer: str
) -> None:
    journal = tmp_path / "j.db"
    rt = Runtime(journal=journal, agent=Payer("mallory", 50))
    box: dict[str, Any] = {}

    def work() -> None:
        box["run"] = rt.run("pay bob 50", remit=bank_remit("ask"), run_id="r")

    t = threading.Thread(target=work)
    t.start()
    try:
        step = _waiting_step(journal, "r")
        assert SENT == []  # nothing happens before the answer
        out = _cli(answer, "r", step, "--journal", str(journal), "--by", "alice", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    finally:
        t.join(timeout=30)
    run = box["run"]
    assert run.ok
    if answer == "approve":
        assert run.result == "sent 50 to mallory"
        assert SENT == [{"recipient": "mallory", "amount": 50}]
        # outside the remit, so it verifies only as approved by a person
        report = verify_run(rt.store, "r")
        assert report.ok and (report.calls, report.approved) == (1, 1)
    else:
        assert "a person denied the call" in run.result
        assert SENT == []
    again = _cli(answer, "r", step, "--journal", str(journal), cwd=tmp_path)
    assert again.returncode == 2 and "ALREADY_ANSWERED" in again.stderr


def test_a_waiting_call_survives_kill_9_and_the_answer_is_used_on_resume(tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    log = tmp_path / "sent.log"
    script = tmp_path / "payer_agent.py"
    script.write_text(
        textwrap.dedent("""
        import os
        from remit import Agent, tool

        @tool(effect=True)
        def send_money(recipient: str, amount: int) -> str:
            with open(os.environ["SENT_LOG"], "a") as f:
                f.write(f"{recipient} {amount}\\n")
            return f"sent {amount} to {recipient}"

        class Payer(Agent):
            tools = (send_money,)

            async def execute(self, ctx):
                return await ctx.call("send_money", recipient="mallory", amount=50)

        AGENT = Payer()
    """)
    )
    remit_file = tmp_path / "bank.toml"
    remit_file.write_text(bank_remit("ask").to_toml())
    env = {**os.environ, "SENT_LOG": str(log), "PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "remit.cli", "run", "pay bob 50", "--agent", "payer_agent:AGENT",
         "--remit", str(remit_file), "--journal", str(journal), "--run-id", "r", "--quiet"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        step = _waiting_step(journal, "r")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not log.exists()
    ok = _cli("approve", "r", step, "--journal", str(journal), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    resumed = subprocess.run(
        [sys.executable, "-m", "remit.cli", "resume", "r", "--journal", str(journal), "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert log.read_text().splitlines() == ["mallory 50"]


def test_an_unanswered_request_ends_at_the_deadline(tmp_path: Path) -> None:
    rt = Runtime(journal=tmp_path / "j.db", agent=Payer("mallory", 50))
    started = time.monotonic()
    run = rt.run("pay bob 50", remit=bank_remit("ask", deadline="1s"))
    assert time.monotonic() - started < 10
    assert run.status == "failed" and run.error is not None and run.error["code"] == "DEADLINE"
    assert SENT == []
