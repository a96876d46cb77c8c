"""The digest job: its goal, remit and checks; ``--model`` on the CLI and the model a
resume uses; and one end-to-end run on the real embedded model."""

from __future__ import annotations

import doctest
import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import remit.cli
import remit.jobs.digest
from remit import ScriptedModel
from remit.cli import app
from remit.jobs import JOBS
from remit.jobs.digest import DEFAULT_INPUTS, digest_check, digest_goal, digest_remit
from remit.journal import SQLiteJournal

runner = CliRunner()

DOCS = {
    "alpha.md": "# Alpha\n\nThe alpha project ships a fast parser in May.\n",
    "beta.md": "# Beta\n\nThe beta release freezes the file format for a year.\n",
    "Makefile": "all:\n\techo build\n",
}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    for name, text in DOCS.items():
        (ws / name).write_text(text)
    return ws


def test_the_job_is_registered_with_the_model_agent() -> None:
    job = JOBS["digest"]
    assert job.agent == "remit:ModelAgent"
    assert job.inputs == DEFAULT_INPUTS
    assert DEFAULT_INPUTS == {"target": ".", "report": "out/digest.md", "every_file": True}
    assert job.goal(job.inputs) == (
        "Read the documents at the top of this project and write a digest to out/digest.md"
    )
    assert "audit" in JOBS  # the audit job stays available


def test_default_remit_grants_documents_and_out_only() -> None:
    r = digest_remit()
    assert r.check("list_dir", {"path": "."}).allowed
    assert not r.check("list_dir", {"path": "src"}).allowed
    assert r.check("read_file", {"path": "README.md"}).allowed
    for path in ("Makefile", "docs/design.md", "../x.md", "remit.db"):
        assert not r.check("read_file", {"path": path}).allowed, path
    assert r.check("write_file", {"path": "out/digest.md"}).allowed
    assert not r.check("write_file", {"path": "README.md"}).allowed
    assert r.depth == 1 and r.budget.calls == 80
    sub = digest_remit({"target": "docs/", "report": "reports/d.md"})
    assert sub.check("read_file", {"path": "docs/a.md"}).allowed
    assert not sub.check("read_file", {"path": "docs/x/a.md"}).allowed
    assert sub.check("write_file", {"path": "reports/d.md"}).allowed
    assert digest_goal({"target": "docs/", "report": "r.md"}).startswith(
        "Read the documents in docs/ "
    )


def test_check_refuses_a_missing_target(tmp_path: Path) -> None:
    assert digest_check({}, tmp_path) is None
    assert "not a directory" in (digest_check({"target": "nope"}, tmp_path) or "")
    assert "file path" in (digest_check({"report": "out/"}, tmp_path) or "")
    assert remit.jobs.digest.__doc__ and "--model" in remit.jobs.digest.__doc__


def test_bad_model_spec_is_bad_input(docs: Path) -> None:
    r = runner.invoke(
        app,
        [
            "run",
            "--job",
            "digest",
            "--model",
            "gpt-4o",
            "-j",
            str(docs / "j.db"),
            "--workspace",
            str(docs),
        ],
    )
    assert r.exit_code == 2
    assert "[INVALID_INPUT] --model 'gpt-4o'" in r.stderr


def _scripted(spec: str) -> ScriptedModel:
    def answer(messages: Any) -> Any:
        system = messages[0]["content"]
        if system.startswith("How many"):
            return {"steps": 3}
        if system.startswith("You are a planner"):
            return {
                "steps": [
                    {"tool": "read_file", "path": "alpha.md", "after": [], "do": "read"},
                    {"tool": "write_file", "path": "out/digest.md", "after": [1], "do": "write"},
                ]
            }
        if system.startswith("You combine"):
            return {"overview": "Alpha ships."}
        text = "\n".join(m["content"] for m in messages)
        return {"quote": "ships a fast parser"} if "Quote the" in text else {"summary": "Alpha."}

    model = ScriptedModel(answer, name="scripted-cli")
    model.spec = spec  # pyright: ignore[reportAttributeAccessIssue]
    return model


def test_run_records_the_model_and_resume_uses_it(
    docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str | None] = []

    def fake_load(spec: str | None) -> ScriptedModel:
        asked.append(spec)
        return _scripted(spec or "local")

    monkeypatch.setattr(remit.cli._run, "load_model", fake_load)
    j = str(docs / "j.db")
    url = "http://127.0.0.1:9/v1#tiny"
    r = runner.invoke(
        app,
        [
            "run",
            "--job",
            "digest",
            "--model",
            url,
            "-j",
            j,
            "--workspace",
            str(docs),
            "--run-id",
            "r1",
        ],
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "report written to out/digest.md" in r.stdout
    assert asked == [url]
    store = SQLiteJournal(docs / "j.db")
    try:
        meta = json.loads(store.get_run("r1").meta or "{}")
        models = {s.name for s in store.steps("r1") if s.kind == "model"}
    finally:
        store.close()
    assert meta["model"] == url and models == {"scripted-cli"}
    again = runner.invoke(app, ["resume", "r1", "-j", j])
    assert again.exit_code == 0
    assert asked == [url, url]  # the resume built the run's own model
    # served from the journal: the report is not written again (each file is in it once)
    report = (docs / "out" / "digest.md").read_text()
    assert report.count("`alpha.md`") == 1 and report.count("`beta.md`") == 1


# --- the real embedded model ------------------------------------------------------------


@pytest.mark.model
def test_digest_job_end_to_end_on_the_embedded_model(docs: Path) -> None:
    j = str(docs / "j.db")
    t0 = time.perf_counter()
    r = runner.invoke(
        app,
        [
            "run",
            "--job",
            "digest",
            "-j",
            j,
            "--workspace",
            str(docs),
            "--run-id",
            "e2e",
            "--durability",
            "normal",
        ],
    )
    seconds = time.perf_counter() - t0
    # a tiny model may plan badly; the run must still end, with the report written
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert "report written to out/digest.md" in r.stdout
    report = (docs / "out" / "digest.md").read_text()
    assert report.startswith("# Read the documents at the top of this project")
    store = SQLiteJournal(docs / "j.db")
    try:
        steps = list(store.steps("e2e"))
    finally:
        store.close()
    models = [s for s in steps if s.kind == "model"]
    assert models and {s.name for s in models} == {"local:SmolLM2-135M-Instruct.Q4_1"}
    spent = [json.loads(s.spent) for s in models if s.spent]
    assert len(spent) == len(models) and all(x["output_tokens"] > 0 for x in spent)
    # every role's decision is in the journal: the atomizer's, the planner's steps as the
    # children's goals, and nothing outside the remit ever ran
    [atomize] = [s for s in steps if s.kind == "atomize"]
    assert json.loads(atomize.output or "null") in ("plan", "execute")
    for s in steps:
        if s.kind == "tool" and s.status == "ok":
            path = json.loads(s.input or "{}").get("path", "")
            assert s.name != "read_file" or path.endswith(".md"), path
            assert s.name != "write_file" or path.startswith("out/"), path
    shown = runner.invoke(app, ["show", "e2e", "-j", j], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert "write_file out/digest.md" in shown.stdout or "execute" in shown.stdout
    assert seconds < 240, f"the job took {seconds:.0f} s"


def test_module_doctests() -> None:
    assert doctest.testmod(remit.jobs.digest).failed == 0
