"""ModelAgent driven by a scripted model (no language model here): a bad plan repaired,
calls outside the remit denied and reported, off-schema answers asked again and charged,
a budget that runs out mid-run recorded as a BUDGET denial."""

from __future__ import annotations

import doctest
import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import remit.agents._model
import remit.agents._report
from remit import Runtime, ScriptedModel
from remit.agents._model import ModelAgent
from remit.agents._report import render_report
from remit.agents.prompts import ROLES
from remit.errors import ModelError
from remit.jobs.digest import digest_goal, digest_remit
from remit.journal import StepRecord
from remit.trace import load

Reply = str | dict[str, Any]
Answer = Reply | Callable[[Sequence[Any]], Reply]

INPUTS = {"target": "notes", "report": "out/digest.md"}
ALPHA = "# Alpha\n\nThe alpha project ships in May, after the beta.\n"
BETA = "# Beta\n\nThe beta release freezes the file format.\n"


def role_of(messages: Sequence[Any]) -> str:
    """Which role asked: by its system prompt (executor and verifier share one)."""
    system = messages[0]["content"]
    for name in ("atomizer", "planner", "aggregator"):
        if system == ROLES[name].system:
            return name
    asked = "\n".join(m["content"] for m in messages if m["role"] == "user")
    return "verifier" if "Quote the sentence" in asked else "executor"


def file_of(messages: Sequence[Any]) -> str:
    for m in messages:
        if m["role"] == "user" and m["content"].startswith("File: "):
            return m["content"].split("\n", 1)[0].removeprefix("File: ")
    return ""


class Script:
    """A scripted model's answers, by role: a list (used in order, the last repeated) or
    a function of the messages. Records which role asked, in order."""

    def __init__(self, **answers: Answer | list[Answer]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self.used: dict[str, int] = {}

    def __call__(self, messages: Sequence[Any]) -> Reply:
        role = role_of(messages)
        self.asked.append(role)
        answer = self.answers[role]
        if isinstance(answer, list):
            i = self.used.get(role, 0)
            self.used[role] = i + 1
            answer = answer[min(i, len(answer) - 1)]
        return answer(messages) if callable(answer) else answer


def summaries(messages: Sequence[Any]) -> Reply:
    return {
        "summary": {
            "notes/a.md": "Alpha ships in May.",
            "notes/b.md": "Beta freezes the format.",
        }.get(file_of(messages), "Something.")
    }


def quotes(messages: Sequence[Any]) -> Reply:
    # a.md's quote is a sentence of the file; b.md's is made up (off the schema, which
    # offers the file's sentences: a model that follows schemas could not say it)
    return {
        "quote": "The alpha project ships in May, after the beta."
        if file_of(messages) == "notes/a.md"
        else "the file format is frozen forever"
    }


def plan(*items: tuple[str, str, list[int]]) -> dict[str, Any]:
    return {"steps": [{"tool": t, "path": p, "after": a, "do": f"do {p}"} for t, p, a in items]}


GOOD_PLAN = plan(
    ("read_file", "notes/a.md", []),
    ("read_file", "notes/b.md", []),
    ("write_file", "out/digest.md", [1, 2]),
)


def script(**overrides: Answer | list[Answer]) -> Script:
    answers: dict[str, Answer | list[Answer]] = {
        "atomizer": {"steps": 3},
        "planner": GOOD_PLAN,
        "executor": summaries,
        "verifier": quotes,
        "aggregator": {"overview": "Alpha ships in May; beta freezes the format."},
    }
    answers.update(overrides)
    return Script(**answers)


@pytest.fixture
def notes(workspace: Path) -> Path:
    (workspace / "notes").mkdir()
    (workspace / "notes" / "a.md").write_text(ALPHA)
    (workspace / "notes" / "b.md").write_text(BETA)
    (workspace / "notes" / "run.sh").write_text("rm -rf /\n")
    return workspace


def run_digest(
    make_runtime: Callable[..., Runtime], s: Script, *, calls: int = 80, **agent: Any
) -> tuple[Runtime, Any]:
    model = ScriptedModel(s, name="scripted-roles")
    rt = make_runtime(agent=ModelAgent(**agent), model=model)
    run = rt.run(digest_goal(INPUTS), remit=digest_remit(INPUTS, calls=calls), inputs=INPUTS)
    return rt, run


def by_kind(steps: list[StepRecord], kind: str) -> list[StepRecord]:
    return [s for s in steps if s.kind == kind]


def error_code(step: StepRecord) -> str:
    return json.loads(step.error or "{}").get("code", "")


# --- the happy path, and what each role decided -------------------------------------------


def test_good_plan_reads_summarizes_verifies_and_writes(
    make_runtime: Callable[..., Runtime], notes: Path, read_steps: Callable[..., list[StepRecord]]
) -> None:
    s = script()
    _, run = run_digest(make_runtime, s)
    assert run.status == "done", run.error
    assert run.result["report"] == "out/digest.md"
    outcomes = [r["outcome"] for r in run.result["steps"]]
    assert outcomes[0] == "summarized (verified): Alpha ships in May."
    assert outcomes[1] == "summarized (unverified): Beta freezes the format."
    assert outcomes[2].startswith("wrote ") and outcomes[2].endswith(" bytes")
    assert run.result["notes"] == []
    report = (notes / "out" / "digest.md").read_text()
    assert "Alpha ships in May." in report and "Beta freezes the format." in report
    assert 'yes: "The alpha project ships in May, after the beta."' in report
    assert "| `notes/b.md` | Beta freezes the format. | no |" in report  # made-up quote
    assert "Alpha ships in May; beta freezes the format." in report  # the overview
    # every role asked the model, in this order for the root
    assert s.asked[:2] == ["atomizer", "planner"]
    assert sorted(s.asked[2:]) == [
        "aggregator",
        "executor",
        "executor",
        "verifier",
        "verifier",
        "verifier",  # b.md's quote was off the schema: asked again, with the reason
    ]
    steps = read_steps(run.id)
    models = by_kind(steps, "model")
    assert {m.name for m in models} == {"scripted-roles"}
    assert len(models) == 8
    assert [error_code(m) for m in models if m.status != "ok"] == ["SCHEMA_VIOLATION"] * 2
    # all spend is charged: one call per tool or model step
    assert run.spent.calls == len(models) + len(by_kind(steps, "tool"))
    assert run.spent.input_tokens > 0 and run.spent.output_tokens > 0


def test_the_tree_shows_what_each_role_decided(
    make_runtime: Callable[..., Runtime], notes: Path, journal_path: Path
) -> None:
    rt, run = run_digest(make_runtime, script())
    tree = load(rt.store, run.id)
    assert tree.root.decision == "plan"  # the atomizer's
    goals = [c.goal for c in tree.root.children]  # the planner's
    assert goals == [
        "s1 read_file notes/a.md: do notes/a.md",
        "s2 read_file notes/b.md: do notes/b.md",
        "s3 write_file out/digest.md after s1, s2: do out/digest.md",
    ]
    # each step's remit grants exactly its one call
    assert [c.remit.to_dict()["tools"] for c in tree.root.children if c.remit] == [
        {
            "read_file": {
                "path": [
                    {"within": "notes/"},
                    {"matches": r"notes/[^/]+\.(md|txt|rst)"},
                    {"equals": "notes/a.md"},
                ]
            }
        },
        {
            "read_file": {
                "path": [
                    {"within": "notes/"},
                    {"matches": r"notes/[^/]+\.(md|txt|rst)"},
                    {"equals": "notes/b.md"},
                ]
            }
        },
        {"write_file": {"path": [{"within": "out/"}, {"equals": "out/digest.md"}]}},
    ]
    assert all(c.decision == "execute" and c.forced for c in tree.root.children)


# --- a bad plan, repaired; calls outside the remit, denied and reported -------------------


def test_bad_plan_is_repaired_and_steps_outside_the_remit_are_replanned_then_dropped(
    make_runtime: Callable[..., Runtime], notes: Path, read_steps: Callable[..., list[StepRecord]]
) -> None:
    bad = plan(
        ("read_file", "notes/a.md", [1]),  # after itself
        ("read_file", "notes/b.md", [3]),  # a cycle with s3
        ("write_file", "notes/a.md", [2]),  # overwrite a source: outside the remit
        ("read_file", "notes/run.sh", []),  # not a document: outside the remit
        ("read_file", "notes/a.md", []),  # a repeat
    )  # and no step writes the report
    s = script(planner=bad)
    _, run = run_digest(make_runtime, s)
    assert run.status == "done", run.error
    # the steps outside the remit are the planner's mistake: it is asked again, with why
    assert s.asked.count("planner") == 2
    notes_ = run.result["notes"]
    [again] = [n for n in notes_ if n.startswith("plan 1 asked for again")]
    assert "your remit denies write_file notes/a.md, read_file notes/run.sh" in again
    assert "you may read: notes/a.md, notes/b.md" in again
    # it planned them again: they are dropped, and nothing reaches the Gate to be denied
    steps = read_steps(run.id)
    [plan_step] = by_kind(steps, "plan")
    subtasks = json.loads(plan_step.output or "{}")["subtasks"]
    assert [(t["key"], t.get("deps", [])) for t in subtasks] == [
        ("s1", []),
        ("s2", []),
        ("s6", ["s1", "s2"]),
    ]
    assert 's1: dropped "after s1" (a step cannot come after itself)' in notes_
    assert 's2: dropped "after s3" (it would close a cycle)' in notes_
    assert "s5 dropped: repeats s1 (read_file notes/a.md)" in notes_
    assert "s6 added: write_file out/digest.md (the plan never wrote the report)" in notes_
    assert any(n.startswith("s3 dropped: the remit denies write_file notes/a.md") for n in notes_)
    assert any(n.startswith("s4 dropped: the remit denies read_file notes/run.sh") for n in notes_)
    assert [s for s in steps if s.status == "denied"] == []
    assert (notes / "notes" / "a.md").read_text() == ALPHA  # never overwritten
    report = (notes / "out" / "digest.md").read_text()
    assert "## How the plan was repaired" in report and "notes/run.sh" in report
    assert "0 step(s) denied by the remit" in run.result["summary"]


def test_every_file_adds_the_documents_a_plan_left_out(
    make_runtime: Callable[..., Runtime], notes: Path
) -> None:
    inputs = {**INPUTS, "every_file": True}
    s = script(planner=plan(("read_file", "notes/a.md", []), ("write_file", "out/digest.md", [1])))
    rt = make_runtime(agent=ModelAgent(), model=ScriptedModel(s, name="scripted-roles"))
    run = rt.run(digest_goal(inputs), remit=digest_remit(inputs), inputs=inputs)
    assert run.status == "done", run.error
    assert [r["path"] for r in run.result["steps"]] == ["notes/a.md", "notes/b.md", "out/digest.md"]
    assert (
        "s3 added: read_file notes/b.md (the goal asks for every document)" in run.result["notes"]
    )
    assert "read and summarized 2 file(s)" in run.result["summary"]


def test_plan_reading_nothing_allowed_is_asked_for_again(
    make_runtime: Callable[..., Runtime], notes: Path
) -> None:
    s = script(planner=[plan(("read_file", "notes/run.sh", [])), GOOD_PLAN])
    model_calls: list[Sequence[Any]] = []
    original = s.__call__

    def spy(messages: Sequence[Any]) -> Reply:
        model_calls.append(messages)
        return original(messages)

    rt = make_runtime(agent=ModelAgent(), model=ScriptedModel(spy, name="scripted-roles"))
    run = rt.run(digest_goal(INPUTS), remit=digest_remit(INPUTS), inputs=INPUTS)
    assert run.status == "done"
    planner_calls = [m for m in model_calls if role_of(m) == "planner"]
    assert len(planner_calls) == 2
    assert "you may read: notes/a.md, notes/b.md" in planner_calls[1][-1]["content"]
    assert any(n.startswith("plan 1 asked for again") for n in run.result["notes"])
    assert run.result["steps"][0]["path"] == "notes/a.md"


# --- off-schema answers --------------------------------------------------------------------


def test_off_schema_answer_is_asked_again_and_charged(
    make_runtime: Callable[..., Runtime], notes: Path, read_steps: Callable[..., list[StepRecord]]
) -> None:
    seen: list[str] = []

    def flaky(messages: Sequence[Any]) -> Reply:
        if file_of(messages) == "notes/a.md" and "notes/a.md" not in seen:
            seen.append("notes/a.md")
            return "Sure! This file is about the alpha project."  # not JSON
        return summaries(messages)

    _, run = run_digest(make_runtime, script(executor=flaky))
    assert run.status == "done"
    steps = read_steps(run.id)
    models = by_kind(steps, "model")
    bad = [m for m in models if m.status == "error" and "not JSON" in (m.error or "")]
    assert len(bad) == 1 and error_code(bad[0]) == "SCHEMA_VIOLATION"
    spent = json.loads(bad[0].spent or "{}")
    assert spent["calls"] == 1 and spent["input_tokens"] > 0 and spent["output_tokens"] > 0
    # the retry says why, and its answer is used
    retry = next(m for m in models if m.step_id.startswith(bad[0].task_id) and m.status == "ok")
    assert "Your answer was rejected" in json.loads(retry.input or "{}")["messages"][-1]["content"]
    assert run.result["steps"][0]["outcome"].startswith("summarized (verified): Alpha ships")
    # the rejected attempt is part of the task's spend: read + 2 executor + verifier
    end = next(s for s in steps if s.step_id == f"{bad[0].task_id}:end")
    assert json.loads(end.spent or "{}")["calls"] == 4
    assert run.spent.calls == len(models) + len(by_kind(steps, "tool"))


def test_answers_off_schema_every_time_fail_the_step_not_the_run(
    make_runtime: Callable[..., Runtime], notes: Path
) -> None:
    _, run = run_digest(make_runtime, script(executor='{"summary": 42}'))
    assert run.status == "done"
    outcomes = [r["outcome"] for r in run.result["steps"]]
    assert outcomes[0].startswith("error: SCHEMA_VIOLATION: model scripted-roles output violates")
    assert outcomes[1].startswith("error: SCHEMA_VIOLATION")
    assert "read and summarized 0 file(s)" in run.result["summary"]
    assert (notes / "out" / "digest.md").exists()


def test_atomizer_off_schema_falls_back_to_planning(
    make_runtime: Callable[..., Runtime], notes: Path
) -> None:
    s = script(atomizer="maybe two?")
    _, run = run_digest(make_runtime, s)
    assert run.status == "done"
    assert s.asked[:3] == ["atomizer", "atomizer", "planner"]  # asked again once, then plan


# --- budgets -----------------------------------------------------------------------------


def test_budget_exhausted_mid_run_is_a_budget_denial_not_a_crash(
    make_runtime: Callable[..., Runtime], notes: Path, read_steps: Callable[..., list[StepRecord]]
) -> None:
    _, run = run_digest(make_runtime, script(), calls=7)
    # the run ends, with the denial recorded: never an exception out of run()
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "BUDGET"
    assert "out/digest.md was not written" in run.error["message"]
    assert run.spent.calls <= 7
    steps = read_steps(run.id)
    budget = [s for s in steps if s.status == "denied" and error_code(s) == "BUDGET"]
    assert budget, "some call must have been denied for budget"
    assert not (notes / "out" / "digest.md").exists()


# --- the atomizer says one call: the root does the steps itself --------------------------


def test_execute_directly_runs_the_plan_inside_the_task(
    make_runtime: Callable[..., Runtime], notes: Path, read_steps: Callable[..., list[StepRecord]]
) -> None:
    _, run = run_digest(make_runtime, script(atomizer={"steps": 1}))
    assert run.status == "done", run.error
    assert run.tasks == 1
    steps = read_steps(run.id)
    assert not by_kind(steps, "plan")
    tools = [(s.name, json.loads(s.input or "{}").get("path")) for s in by_kind(steps, "tool")]
    assert tools == [
        ("list_dir", "notes"),
        ("read_file", "notes/a.md"),
        ("read_file", "notes/b.md"),
        ("write_file", "out/digest.md"),
    ]
    assert "report written to out/digest.md" in run.result["summary"]


def test_the_runtime_records_the_model_spec_for_resume(
    make_runtime: Callable[..., Runtime], notes: Path
) -> None:
    model = ScriptedModel(script(), name="scripted-roles")
    model.spec = "http://127.0.0.1:1/v1#scripted"  # pyright: ignore[reportAttributeAccessIssue]
    rt = make_runtime(agent=ModelAgent(), model=model)
    run = rt.run(digest_goal(INPUTS), remit=digest_remit(INPUTS), inputs=INPUTS)
    meta = json.loads(rt.store.get_run(run.id).meta or "{}")
    assert meta["model"] == "http://127.0.0.1:1/v1#scripted"


def test_render_report_sections() -> None:
    text = render_report(
        "Digest",
        [
            {"step": "s1", "path": "a.md", "ok": True, "summary": "A | B", "verified": False},
            {
                "step": "s2",
                "tool": "read_file",
                "path": "x.sh",
                "ok": False,
                "denied": {"code": "DENIED", "message": "not a document"},
            },
        ],
        None,
        ["s1: dropped x"],
    )
    assert "(no overview" in text
    assert "| s1 | `a.md` | A \\| B | no |" in text
    assert "- s2 `read_file x.sh`: DENIED: not a document" in text
    assert "- s1: dropped x" in text


def test_resume_serves_every_model_answer_from_the_journal(
    make_runtime: Callable[..., Runtime], notes: Path, journal_path: Path
) -> None:
    rt, run = run_digest(make_runtime, script())
    report = notes / "out" / "digest.md"
    text = report.read_text()
    tree = load(rt.store, run.id)
    root, write = tree.root.id, tree.root.children[2].id
    rt.close()
    # as if the process died after the write step's model call was recorded, before its
    # write_file and everything after it
    db = sqlite3.connect(journal_path)
    with db:
        gone = [
            f"{write}:execute",
            f"{write}:execute.1",
            f"{write}:end",
            f"{root}:aggregate",
            f"{root}:end",
        ]
        db.executemany(
            "DELETE FROM steps WHERE run_id = ? AND step_id = ?", [(run.id, g) for g in gone]
        )
        db.execute("UPDATE runs SET status = 'running', result = NULL WHERE run_id = ?", (run.id,))
    db.close()
    report.unlink()

    def no_model(messages: Sequence[Any]) -> Reply:
        raise AssertionError(f"the model was asked again: {role_of(messages)}")

    rt2 = make_runtime(agent=ModelAgent(), model=ScriptedModel(no_model, name="scripted-roles"))
    again = rt2.resume(run.id)
    assert again.status == "done" and again.result == run.result
    assert again.replayed > 0 and again.executed == 3  # write step, its write_file, aggregate
    assert report.read_text() == text


@pytest.mark.parametrize("calls", [4, 5])
def test_a_budget_smaller_than_a_step_never_widens_the_plan(
    make_runtime: Callable[..., Runtime], notes: Path, calls: int
) -> None:
    _, run = run_digest(make_runtime, script(), calls=calls)
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "BUDGET", run.error
    assert run.spent.calls <= calls


def test_a_model_that_fails_fails_the_step_not_the_run(
    make_runtime: Callable[..., Runtime], notes: Path
) -> None:
    def broken(messages: Sequence[Any]) -> Reply:
        if file_of(messages) == "notes/a.md":
            raise ModelError("HTTP 400: model 'tiny' not found", status=400)
        return summaries(messages)

    _, run = run_digest(make_runtime, script(executor=broken))
    assert run.status == "done", run.error
    outcomes = [r["outcome"] for r in run.result["steps"]]
    assert outcomes[0] == "error: MODEL_FAILED: HTTP 400: model 'tiny' not found"
    assert outcomes[1].startswith("summarized")


def test_module_doctests() -> None:
    for module in (remit.agents._model, remit.agents._report):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, (module.__name__, result)
