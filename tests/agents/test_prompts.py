"""Role prompts and schemas: bounded answers, token bounds that cover them, and the plan
checker's repairs (self and cyclic dependencies, unknown tools, calls outside the remit)."""

from __future__ import annotations

import doctest
import json
from typing import Any

import pytest

import remit.agents.prompts
import remit.agents.prompts._bounds
import remit.agents.prompts._checks
import remit.agents.prompts._clip
import remit.agents.prompts._roles
import remit.agents.prompts._spec
from remit import Remit, within
from remit.agents.prompts import (
    MAX_STEPS,
    OVERVIEW_CHARS,
    ROLES,
    SUMMARY_CHARS,
    PlanCheck,
    check_plan,
    clip,
    decide,
    grounded,
    retry_messages,
    tidy,
    token_bound,
    unbounded,
)
from remit.core.tasks import Plan, Subtask

REMIT = Remit(
    tools={
        "read_file": {"path": [{"within": "notes/"}, {"matches": r"notes/[^/]+\.md"}]},
        "write_file": {"path": within("out/")},
    }
)


def biggest(schema: dict[str, Any]) -> Any:
    """The largest answer a schema allows: longest enum values, full strings and arrays."""
    if "enum" in schema:
        return max(schema["enum"], key=lambda v: len(json.dumps(v)))
    kind = schema["type"]
    if kind == "object":
        return {k: biggest(v) for k, v in schema["properties"].items()}
    if kind == "array":
        return [biggest(schema["items"])] * schema["maxItems"]
    if kind == "string":
        return "x" * schema["maxLength"]
    raise AssertionError(f"unexpected schema {schema}")


def steps(*items: tuple[str, str, list[int]]) -> dict[str, Any]:
    return {"steps": [{"tool": t, "path": p, "after": a, "do": f"{t} {p}"} for t, p, a in items]}


def shape(c: PlanCheck) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(s.id, s.tool, s.path, s.after) for s in c.steps]


# --- the role specs ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ROLES))
def test_every_role_answer_is_bounded_and_max_tokens_covers_it(name: str) -> None:
    spec = ROLES[name]
    schema = spec.schema(**spec.example)
    assert unbounded(schema) == [], f"{name}: {unbounded(schema)}"
    bound = token_bound(schema)
    assert spec.max_tokens(**spec.example) >= bound
    # the largest answer, spaced the way llama.cpp's grammar allows, fits the bound
    text = json.dumps(biggest(schema), separators=(", ", ": "))
    assert len(text) <= bound, (name, len(text), bound)
    # and max_tokens stays well inside the embedded model's context
    assert spec.max_tokens(**spec.example) <= 1024


@pytest.mark.parametrize("name", sorted(ROLES))
def test_every_role_builds_messages_from_its_example(name: str) -> None:
    spec = ROLES[name]
    call = spec.call(**spec.example)
    assert call.role == name
    assert call.messages[0] == {"role": "system", "content": spec.system}
    assert call.messages[-1]["role"] == "user"
    assert "{" not in call.messages[-1]["content"].replace("{}", "")  # no unfilled field
    # few-shot turns alternate user / assistant, and assistant turns obey the schema
    for user, assistant in zip(call.messages[1:-1:2], call.messages[2:-1:2], strict=True):
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        answer = json.loads(assistant["content"])
        assert set(answer) == set(call.schema["properties"])


def test_planner_schema_offers_the_listed_files_and_the_report() -> None:
    spec = ROLES["planner"]
    schema = spec.schema(goal="g", files=["a.md", "b.md"], report="out/r.md")
    item = schema["properties"]["steps"]["items"]["properties"]
    assert item["path"]["enum"] == ["a.md", "b.md", "out/r.md"]
    assert item["tool"]["enum"] == ["read_file", "write_file"]
    assert schema["properties"]["steps"]["maxItems"] == MAX_STEPS
    assert (
        "Files: a.md, b.md, out/r.md"
        in spec.messages(goal="g", files=["a.md", "b.md"], report="out/r.md")[-1]["content"]
    )


def test_executor_and_verifier_share_their_prefix_and_clip_the_file() -> None:
    text = "word " * 1000
    ex = ROLES["executor"].messages(path="a.md", text=text)
    ve = ROLES["verifier"].messages(path="a.md", text=text, summary="s")
    assert ex[0] == ve[0]
    head = ex[-1]["content"].split("---\n")[1]
    assert ve[-1]["content"].startswith(ex[-1]["content"][: len(head)])
    assert len(head) < len(text) and head.rstrip().endswith("…")


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "array", "items": {"enum": [1]}}, "$: array without maxItems"),
        ({"type": "string"}, "$: string without maxLength or enum"),
        ({"type": "integer", "minimum": 0, "maximum": 3}, "$: integer value without enum"),
        ({"type": "object", "properties": {}}, "$: object without closed properties"),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "number"}},
                "additionalProperties": False,
            },
            "$.a: number value without enum",
        ),
    ],
)
def test_unbounded_names_what_lets_an_answer_grow(schema: dict[str, Any], problem: str) -> None:
    assert problem in unbounded(schema)
    with pytest.raises(ValueError, match="unbounded"):
        token_bound(schema)


def test_decide_thresholds_the_estimate() -> None:
    assert [decide({"steps": n}) for n in (1, 2, 8)] == ["execute", "plan", "plan"]
    assert decide({}) == "execute"


def test_grounded_needs_a_real_run_of_words_from_the_text() -> None:
    text = "# Alpha\n\nThe alpha project ships in *May*, after the beta."
    assert grounded("the alpha project ships", text)
    assert grounded("It says: The Alpha project ships in May!", text)
    assert not grounded("alpha", text)  # one word proves nothing
    assert not grounded("the beta project ships soon", text)
    assert not grounded("", text)


def test_clip_and_retry_messages() -> None:
    assert clip("short") == "short"
    assert len(clip("x" * 5000)) <= remit.agents.prompts.MAX_TEXT_CHARS + 1
    call = ROLES["atomizer"].call(goal="g")
    again = retry_messages(call, "not JSON")
    assert again[: len(call.messages)] == call.messages
    assert again[-1]["role"] == "user" and "not JSON" in again[-1]["content"]


def test_an_answer_cut_at_its_length_ends_at_a_whole_word_marked_as_cut() -> None:
    """The decoder stops a summary at its schema's maxLength, often inside a word."""
    assert ROLES["executor"].fixed["properties"]["summary"]["maxLength"] == SUMMARY_CHARS
    assert ROLES["aggregator"].fixed["properties"]["overview"]["maxLength"] == OVERVIEW_CHARS
    tail = "under an authority that can only be *narr"
    cut = ("remit runs task trees " * 10)[: SUMMARY_CHARS - len(tail)] + tail
    assert len(cut) == SUMMARY_CHARS
    shown = tidy(cut, SUMMARY_CHARS)
    assert shown.endswith("that can only be…")
    assert len(shown) <= SUMMARY_CHARS
    assert tidy("  One whole sentence.\n", SUMMARY_CHARS) == "One whole sentence."
    # one long word: nothing to cut back to, the cut is only marked
    assert tidy("x" * 20, 10) == "x" * 10 + "…"
    # what a small model wrote once: a capped overview that wanders off after a line
    wandered = "It manages tasks and their budgets in a simple way to…\n}\n\nThe [D2"
    assert tidy(wandered, len(wandered)) == "It manages tasks and their budgets in a simple way to…"


def test_module_doctests() -> None:
    prompts = remit.agents.prompts
    result = doctest.testmod(prompts)
    assert result.attempted > 0 and result.failed == 0
    # The modules' examples use the public names, as a reader of remit.agents.prompts would.
    public = {name: getattr(prompts, name) for name in prompts.__all__}
    for module in (
        prompts._bounds,
        prompts._spec,
        prompts._clip,
        prompts._checks,
    ):
        result = doctest.testmod(module, extraglobs=public)
        assert result.attempted > 0 and result.failed == 0, (module.__name__, result)
    # the five roles' texts carry no examples (RoleSpec's, in _spec, shows one)
    assert doctest.testmod(prompts._roles).failed == 0


# --- plan checking and repair ---------------------------------------------------------


def test_a_good_plan_passes_unchanged() -> None:
    c = check_plan(
        steps(
            ("read_file", "notes/a.md", []),
            ("read_file", "notes/b.md", []),
            ("write_file", "out/r.md", [1, 2]),
        ),
        remit=REMIT,
        report="out/r.md",
    )
    assert shape(c) == [
        ("s1", "read_file", "notes/a.md", ()),
        ("s2", "read_file", "notes/b.md", ()),
        ("s3", "write_file", "out/r.md", ("s1", "s2")),
    ]
    assert c.repairs == () and dict(c.outside) == {} and c.usable


def test_self_dependency_is_dropped() -> None:
    c = check_plan(steps(("read_file", "notes/a.md", [1])))
    assert shape(c) == [("s1", "read_file", "notes/a.md", ())]
    assert c.repairs == ('s1: dropped "after s1" (a step cannot come after itself)',)


def test_a_two_cycle_keeps_write_after_read() -> None:
    c = check_plan(steps(("read_file", "notes/a.md", [2]), ("write_file", "out/r.md", [1])))
    assert shape(c) == [
        ("s1", "read_file", "notes/a.md", ()),
        ("s2", "write_file", "out/r.md", ("s1",)),
    ]
    assert 's1: dropped "after s2" (it would close a cycle)' in c.repairs


def test_a_three_cycle_is_broken_into_a_dag() -> None:
    c = check_plan(
        steps(("read_file", "a.md", [3]), ("read_file", "b.md", [1]), ("read_file", "c.md", [2]))
    )
    deps = {s.id: s.after for s in c.steps}
    assert deps == {"s1": ("s3",), "s2": ("s1",), "s3": ()}
    assert any("would close a cycle" in r for r in c.repairs)
    Plan([Subtask(s.id, s.id, s.after) for s in c.steps]).validate()  # the engine accepts it


def test_unknown_tool_and_malformed_steps_are_dropped() -> None:
    raw = {
        "steps": [
            {"tool": "shell", "path": "rm -rf /", "after": [], "do": "x"},
            "read everything",
            {"tool": "read_file", "after": []},
            {"tool": "read_file", "path": "notes/a.md", "after": [1, 9, "2", True]},
        ]
    }
    c = check_plan(raw)
    assert shape(c) == [("s4", "read_file", "notes/a.md", ())]
    assert c.repairs[:3] == (
        "s1 dropped: unknown tool 'shell'",
        "s2 dropped: not an object",
        "s3 dropped: no path",
    )
    assert sum("no such step" in r for r in c.repairs) == 4


def test_repeats_are_dropped_and_their_dependents_follow_the_first() -> None:
    c = check_plan(
        steps(("read_file", "a.md", []), ("read_file", "a.md", []), ("write_file", "out/r.md", [2]))
    )
    assert shape(c) == [("s1", "read_file", "a.md", ()), ("s3", "write_file", "out/r.md", ("s1",))]
    assert "s2 dropped: repeats s1 (read_file a.md)" in c.repairs


def test_a_write_after_nothing_comes_after_every_read_and_a_missing_report_is_added() -> None:
    c = check_plan(
        steps(("read_file", "a.md", []), ("write_file", "todo.txt", []), ("read_file", "b.md", [])),
        report="out/r.md",
    )
    assert shape(c) == [
        ("s1", "read_file", "a.md", ()),
        ("s2", "write_file", "todo.txt", ("s1", "s3")),
        ("s3", "read_file", "b.md", ()),
        ("s4", "write_file", "out/r.md", ("s1", "s3")),
    ]
    assert c.repairs[-1] == "s4 added: write_file out/r.md (the plan never wrote the report)"


def test_steps_outside_the_remit_are_kept_and_named() -> None:
    only_read = Remit(tools={"read_file": {"path": within("notes/")}})
    c = check_plan(
        steps(
            ("read_file", "notes/a.md", []),
            ("read_file", "secrets.env", []),
            ("write_file", "out/r.md", [1]),
        ),
        remit=only_read,
    )
    assert [s.id for s in c.steps] == ["s1", "s2", "s3"]  # the Gate will deny s2 and s3
    assert set(c.outside) == {"s2", "s3"}
    assert "not within 'notes/'" in c.outside["s2"]
    assert "tool not granted" in c.outside["s3"]
    assert c.usable


def test_a_plan_that_reads_nothing_allowed_is_not_usable() -> None:
    c = check_plan(steps(("read_file", "notes/run.sh", [])), remit=REMIT, report="out/r.md")
    assert not c.usable
    assert c.outside.keys() == {"s1"}
    assert not check_plan(None, report="out/r.md").usable
    assert check_plan({"steps": "all"}).repairs == ("the answer has no list of steps",)


def test_more_steps_than_allowed_are_dropped() -> None:
    c = check_plan(steps(*[("read_file", f"{i}.md", []) for i in range(MAX_STEPS + 2)]))
    assert len(c.steps) == MAX_STEPS
    assert c.repairs[-1] == f"s{MAX_STEPS + 2} dropped: more than {MAX_STEPS} steps"


def test_notes_for_a_step() -> None:
    c = check_plan(steps(("read_file", "a.md", [1]), ("read_file", "b.md", [2])))
    assert c.notes_for("s1") == ['s1: dropped "after s1" (a step cannot come after itself)']
    assert c.notes_for("s3") == []
