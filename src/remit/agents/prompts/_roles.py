"""The five roles' prompts: the atomizer, planner, executor, verifier and aggregator as
:class:`~remit.agents.prompts._spec.RoleSpec` values in :data:`ROLES`, with their
few-shot turns, example fields, answer schemas and the bounds those schemas carry.

Separate from the machinery (``_spec``) and from the checks on the answers
(``_checks``): this is what a prompt tuner edits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from remit.agents.prompts._clip import clip
from remit.agents.prompts._spec import RoleSpec

#: the most steps a plan may have (the planner's array bound)
MAX_STEPS = 6
#: the tools a plan step may name, and what each does for a step
STEP_TOOLS: Mapping[str, str] = {
    "read_file": "reads one file, which is then summarized",
    "write_file": "writes the report, from the results of the steps it comes after",
}

#: the longest summary of a file, and the longest overview, the roles may give
SUMMARY_CHARS = 160
OVERVIEW_CHARS = 240


def _obj(**props: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def _text(n: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": n}


_STEPS_ENUM = [1, 2, 3, 4, 5, 6, 8]


def _atomizer_schema(_: Mapping[str, Any]) -> dict[str, Any]:
    return _obj(steps={"enum": _STEPS_ENUM})


def _paths(fields: Mapping[str, Any]) -> list[str]:
    paths = [str(p) for p in fields.get("files", ())]
    report = fields.get("report")
    if report and report not in paths:
        paths.append(str(report))
    return paths or ["."]


def _planner_schema(fields: Mapping[str, Any]) -> dict[str, Any]:
    n = MAX_STEPS
    tools = list(fields.get("tools") or STEP_TOOLS)
    step = _obj(
        tool={"enum": tools},
        path={"enum": _paths(fields)},
        # step numbers; a step may come only after earlier ones (check_plan enforces it)
        after={"type": "array", "maxItems": n - 1, "items": {"enum": list(range(1, n + 1))}},
        do=_text(40),
    )
    return _obj(steps={"type": "array", "minItems": 1, "maxItems": n, "items": step})


def _planner_render(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {"goal": fields["goal"], "files": ", ".join(_paths(fields))}


_PLAN_EXAMPLE = json.dumps(
    {
        "steps": [
            {"tool": "read_file", "path": "a.md", "after": [], "do": "summarize a.md"},
            {"tool": "read_file", "path": "b.txt", "after": [], "do": "summarize b.txt"},
            {"tool": "read_file", "path": "c.md", "after": [], "do": "summarize c.md"},
            {
                "tool": "write_file",
                "path": "out/summary.md",
                "after": [1, 2, 3],
                "do": "write the summary",
            },
        ]
    }
)


def _lines(fields: Mapping[str, Any]) -> dict[str, Any]:
    results: Sequence[str] = fields.get("results") or ("(nothing was read)",)
    return {"goal": fields["goal"], "results": "\n".join(f"- {r}" for r in results)}


def _file(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {**fields, "text": clip(str(fields.get("text", "")))}


_READER = "You read one file and answer one question about it."
_FILE = "File: {path}\n---\n{text}\n---\n"
_SAMPLE_TEXT = (
    "# remit\n\nremit is a Python runtime for recursive multi-agent work. You state a goal "
    "and grant an authority; the runtime breaks the goal into a tree of tasks.\n"
)

ROLES: Mapping[str, RoleSpec] = {
    "atomizer": RoleSpec(
        name="atomizer",
        system="How many tool calls does the goal need? One call reads or writes one file.",
        shots=(
            ("Goal: Read a.txt", '{"steps": 1}'),
            ("Goal: Read a.txt and b.txt, then write out/c.md", '{"steps": 3}'),
            ("Goal: Read the docs and write a summary to out/s.md", '{"steps": 4}'),
            ("Goal: Write hi to out/h.txt", '{"steps": 1}'),
        ),
        user="Goal: {goal}",
        example={"goal": "Read the notes in notes/ and write a digest to out/digest.md"},
        schema_for=_atomizer_schema,
    ),
    "planner": RoleSpec(
        name="planner",
        system=(
            "You are a planner. Split the goal into steps. Each step calls one tool on one "
            "file: read_file reads a file; write_file writes the report from the steps it "
            'comes after. "after" lists the numbers of earlier steps. Use only the files '
            "listed."
        ),
        shots=(
            # the example skips what is not a document: the model learns to choose
            (
                "Goal: Read the documents in notes/ and write a summary to out/summary.md\n"
                "Files: a.md, b.txt, c.md, run.sh, data.db, out/summary.md",
                _PLAN_EXAMPLE,
            ),
        ),
        user="Goal: {goal}\nFiles: {files}",
        example={
            "goal": "Read the notes in notes/ and write a digest to out/digest.md",
            "files": ["notes/intro.md", "notes/plan.md", "notes/secrets.env"],
            "report": "out/digest.md",
            "tools": list(STEP_TOOLS),
        },
        schema_for=_planner_schema,
        render=_planner_render,
    ),
    "executor": RoleSpec(
        name="executor",
        system=_READER,
        user=_FILE + "Summarize the file in one sentence.",
        example={"path": "README.md", "text": _SAMPLE_TEXT},
        fixed=_obj(summary=_text(SUMMARY_CHARS)),
        render=_file,
    ),
    "verifier": RoleSpec(
        name="verifier",
        system=_READER,
        # the same system prompt and file block as the executor's: a verifier call that
        # follows the executor's on the same file reuses the model's cached prompt
        user=_FILE + "Quote the sentence of the file that best matches this summary: {summary}",
        example={
            "path": "README.md",
            "text": _SAMPLE_TEXT,
            "summary": "remit is a runtime for recursive multi-agent work.",
        },
        fixed=_obj(quote=_text(60)),
        render=_file,
    ),
    "aggregator": RoleSpec(
        name="aggregator",
        system="You combine short summaries of files into an overview.",
        user="Goal: {goal}\nSummaries:\n{results}\nWrite one or two sentences that sum them up.",
        example={
            "goal": "Read the notes in notes/ and write a digest to out/digest.md",
            "results": [
                "notes/intro.md: what the project is for",
                "notes/plan.md: the milestones for the next release",
            ],
        },
        fixed=_obj(overview=_text(OVERVIEW_CHARS)),
        render=_lines,
    ),
}
