"""A voted step through the Gate: every sample a budgeted, journaled model call; the
verdict a row of its own; a vote a crash interrupted continues from the samples drawn.

The model here is a scripted one (``Answers``): sample ``n`` answers ``answers[n]``, so
the engine is driven exactly. It stands for a model that draws a fresh sample per call.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from remit import Agent, Budget, Completion, Plan, Remit, Runtime, Subtask, Vote
from remit.models import Message

ROOT = Path(__file__).resolve().parents[2]
STALL_ENV = "REMIT_TEST_VOTE_STALL"


class Answers:
    """Sample ``n`` answers ``answers[n]``; with ``STALL_ENV`` set, sample ``stall_at``
    writes that file and hangs (for a SIGKILL to find it there)."""

    usd_per_input_token = 0.0
    usd_per_output_token = 0.0

    def __init__(self, answers: Sequence[str], stall_at: int | None = None) -> None:
        self.name = "answers"
        self.answers = list(answers)
        self.stall_at = stall_at
        self.drawn: list[int | None] = []

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 512,
        sample: int | None = None,
    ) -> Completion:
        self.drawn.append(sample)
        marker = os.environ.get(STALL_ENV)
        if marker and sample == self.stall_at:
            Path(marker).write_text("stalled")
            await asyncio.sleep(60)
        i = sample or 0
        text = self.answers[i] if i < len(self.answers) else "?"
        return Completion(text, input_tokens=10, output_tokens=len(text), model=self.name)


class Voter(Agent):
    """Votes one question; the answer is the voted value and how many samples it took."""

    def __init__(self, vote: Vote) -> None:
        self.vote = vote

    async def execute(self, ctx: Any) -> Any:
        voted = await ctx.vote([{"role": "user", "content": "2 + 2 = ?"}], self.vote)
        return {"value": voted.value, "samples": voted.samples, "flagged": voted.flagged,
                "lead": voted.lead}  # fmt: skip


def rows(db: Path, kind: str) -> list[tuple[str, str, str | None, str | None]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT step_id, status, output, error FROM steps WHERE kind = ? ORDER BY pos",
            (kind,),
        ).fetchall()


def run_vote(tmp_path: Path, answers: Sequence[str], vote: Vote, **remit: Any) -> Any:
    model = Answers(answers)
    rt = Runtime(journal=tmp_path / "j.db", agent=Voter(vote), model=model)
    try:
        run = rt.run("vote", remit=Remit(tools={}, **remit), run_id="v")
    finally:
        rt.close()
    return run, model


def test_samples_are_drawn_until_one_answer_leads_by_k(tmp_path: Path) -> None:
    run, model = run_vote(tmp_path, ["4", "5", "4", "4", "4"], Vote(k=2, max_samples=9))
    assert run.ok, run.error
    assert run.result == {"value": "4", "samples": 4, "flagged": 0, "lead": 2}
    # two at once (the fewest that can decide), then one by one as the lead grows
    assert model.drawn == [0, 1, 2, 3]
    assert run.spent.calls == 4
    models = rows(tmp_path / "j.db", "model")
    assert [json.loads(o or "{}")["content"] for _, _, o, _ in models] == ["4", "5", "4", "4"]
    (_, status, output, _), = rows(tmp_path / "j.db", "vote")  # fmt: skip
    verdict = json.loads(output or "{}")
    assert status == "ok" and verdict["tally"] == {'"4"': 3, '"5"': 1}
    assert verdict["steps"] == [s for s, *_ in models]


_SAMPLES = "SELECT step_id, input FROM steps WHERE kind = 'model' ORDER BY pos"


def test_each_sample_row_records_its_number_and_the_messages_once_a_vote(tmp_path: Path) -> None:
    schema = {"type": "string"}
    run, _ = run_vote(tmp_path, ['"4"', '"5"', '"4"', '"4"'], Vote(k=2, schema=schema))
    assert run.ok, run.error
    with sqlite3.connect(tmp_path / "j.db") as conn:
        rows_ = conn.execute(_SAMPLES).fetchall()
    question = [{"role": "user", "content": "2 + 2 = ?"}]
    first = rows_[0][0]
    # the first round (k = 2 samples drawn together) holds the messages and the schema;
    # samples drawn after the first came back name its row instead
    assert [json.loads(i) for _, i in rows_] == [
        {"messages": question, "schema": schema, "sample": 0},
        {"messages": question, "schema": schema, "sample": 1},
        {"sample": 2, "messages_as": first},
        {"sample": 3, "messages_as": first},
    ]
    # written as the Gate writes any step's input (the rows hash and replay alike)
    assert rows_[1][1] == json.dumps({"messages": question, "schema": schema, "sample": 1},
                                     ensure_ascii=False)  # fmt: skip
    assert rows_[3][1] == json.dumps({"sample": 3, "messages_as": first}, ensure_ascii=False)


def test_samples_drawn_one_at_a_time_journal_the_messages_once(tmp_path: Path) -> None:
    run, _ = run_vote(tmp_path, ["a", "b", "a", "a"], Vote(k=2, parallel=1))
    assert run.ok, run.error
    with sqlite3.connect(tmp_path / "j.db") as conn:
        rows_ = conn.execute(_SAMPLES).fetchall()
    inputs = {sid: json.loads(i) for sid, i in rows_}
    first, *later = [sid for sid, _ in rows_]
    assert inputs[first]["messages"] == [{"role": "user", "content": "2 + 2 = ?"}]
    assert [inputs[sid] for sid in later] == [
        {"sample": n, "messages_as": first} for n in (1, 2, 3)
    ]


def test_a_tie_at_the_most_samples_fails_the_step_explicitly(tmp_path: Path) -> None:
    run, model = run_vote(tmp_path, ["a", "b", "a", "b"], Vote(k=2, max_samples=4))
    assert not run.ok and run.error is not None
    assert "VOTE_UNDECIDED" in json.dumps(run.error) and len(model.drawn) == 4
    (_, status, _, error), = rows(tmp_path / "j.db", "vote")  # fmt: skip
    recorded = json.loads(error or "{}")
    assert status == "error" and recorded["code"] == "VOTE_UNDECIDED"
    assert recorded["samples"] == 4 and recorded["lead"] == 0 and recorded["outcome"] == "fail"


def test_when_every_sample_is_red_flagged_nothing_wins(tmp_path: Path) -> None:
    vote = Vote(k=1, max_samples=3, max_chars=2)
    run, model = run_vote(tmp_path, ["four", "four!", "it is four"], vote)
    assert not run.ok and len(model.drawn) == 3
    (_, _, _, error), = rows(tmp_path / "j.db", "vote")  # fmt: skip
    recorded = json.loads(error or "{}")
    assert recorded["flagged"] == 3 and recorded["samples"] == 3


def test_red_flagged_samples_are_discarded_before_the_count(tmp_path: Path) -> None:
    # the two long answers agree with each other, and would have won without the flag
    vote = Vote(k=2, max_samples=6, max_chars=3)
    run, _ = run_vote(tmp_path, ["five!", "five!", "4", "4"], vote)
    assert run.ok and run.result == {"value": "4", "samples": 4, "flagged": 2, "lead": 2}


def test_samples_drawn_at_once_never_outrun_the_budget(tmp_path: Path) -> None:
    # three are wanted at once, two are paid for: two are drawn, the third is refused
    vote = Vote(k=3, max_samples=6, parallel=5)
    run, model = run_vote(tmp_path, ["x"] * 6, vote, budget=Budget(calls=2))
    assert not run.ok and "BUDGET" in json.dumps(run.error)
    assert model.drawn == [0, 1] and run.spent.calls == 2


def test_a_vote_the_budget_cannot_pay_for_fails_on_the_budget(tmp_path: Path) -> None:
    run, model = run_vote(tmp_path, ["a", "b", "a", "b"], Vote(k=2, max_samples=8),
                          budget=Budget(calls=3))  # fmt: skip
    assert not run.ok and "BUDGET" in json.dumps(run.error) and len(model.drawn) == 3


class Parent(Agent):
    """Plans one voted child; when the child escalates, re-plans it once with a vote it
    can decide (so the test sees the escalation reach the parent)."""

    replanned = False

    def atomize(self, ctx: Any) -> str:
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx: Any) -> Plan:
        return Plan([Subtask("q", "vote", inputs={"k": 2})])

    async def execute(self, ctx: Any) -> Any:
        k = int(ctx.inputs["k"])
        vote = Vote(k=k, max_samples=2, on_undecided="escalate")
        return (await ctx.vote([{"role": "user", "content": "?"}], vote)).value

    def replan(self, ctx: Any, failed: Any) -> Subtask:
        Parent.replanned = True
        return Subtask("q", "vote again", inputs={"k": 1})

    def aggregate(self, ctx: Any, results: list[Any]) -> Any:
        return [r.value for r in results]


def test_an_undecided_vote_may_escalate_to_the_parents_planner(tmp_path: Path) -> None:
    rt = Runtime(journal=tmp_path / "j.db", agent=Parent(), model=Answers(["a", "b", "c"]))
    try:
        run = rt.run("escalate", remit=Remit(tools={}, depth=2))
    finally:
        rt.close()
    assert Parent.replanned and run.ok and run.result == ["a"]  # k=1: the first sample wins
    votes = rows(tmp_path / "j.db", "vote")
    assert json.loads(votes[0][3] or "{}")["outcome"] == "escalate" and votes[1][1] == "ok"


# --- a vote a crash interrupted -------------------------------------------------------

CRASH_ANSWERS = ["4", "5", "5", "4", "4", "4", "4"]
CRASH_VOTE = Vote(k=2, max_samples=7, parallel=1)


def test_a_vote_killed_in_the_middle_resumes_without_redrawing_a_sample(tmp_path: Path) -> None:
    db, marker = tmp_path / "crash.db", tmp_path / "stalled"
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from remit import Remit, Runtime\n"
        "from tests.gate.test_vote import Answers, Voter, CRASH_ANSWERS, CRASH_VOTE\n"
        f"rt = Runtime(journal={str(db)!r}, agent=Voter(CRASH_VOTE),"
        " model=Answers(CRASH_ANSWERS, stall_at=3), durability='full')\n"
        "rt.run('vote', remit=Remit(tools={}), run_id='crashed')\n"
    )
    env = {**os.environ, STALL_ENV: str(marker)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before the crash: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                pytest.fail("the subprocess never reached the stalling sample")
            time.sleep(0.02)
        time.sleep(0.3)  # the samples before it are committed (group commit, durability full)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    drawn_before = [json.loads(o or "{}")["content"] for _, st, o, _ in rows(db, "model")
                    if st == "ok"]  # fmt: skip
    assert drawn_before == CRASH_ANSWERS[:3]

    model = Answers(CRASH_ANSWERS)
    rt = Runtime(journal=db, agent=Voter(CRASH_VOTE), model=model)
    try:
        run = rt.resume("crashed")
    finally:
        rt.close()
    assert run.ok, run.error
    # samples 0-2 came from the journal; only 3 onwards were drawn again
    assert model.drawn == [3, 4, 5]
    assert run.result == {"value": "4", "samples": 6, "flagged": 0, "lead": 2}
    assert len(rows(db, "model")) == 6 and len(rows(db, "vote")) == 1


def test_remit_show_tells_how_the_vote_went(tmp_path: Path) -> None:
    from remit.journal import SQLiteJournal
    from remit.trace.tree import load

    run_vote(tmp_path, ["4", "five!", "5", "4", "4"], Vote(k=2, max_samples=9, max_chars=3))
    with SQLiteJournal(tmp_path / "j.db") as store:
        tree = load(store, "v")
    events = tree.root.events + [e for c in tree.root.children for e in c.events]
    assert events == [("vote", 'voted "4": ahead by 2 after 5 sample(s), 1 red-flagged')]
