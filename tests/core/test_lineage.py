"""Lineage read from journal rows alone: step ids across generations, the DAG's edges,
and exactly which steps an invalidation covers (pure: rows built by hand)."""

from __future__ import annotations

import json

import pytest

from remit.core.lineage import (
    Invalidation,
    Lineage,
    at_generation,
    base_id,
    generation_of,
    generations,
    invalidation_id,
    invalidations,
    parse,
    plan_invalidation,
)
from remit.errors import InvalidInput
from remit.journal import StepRecord

ROOT = "t.0.aaaaaa"
P = f"{ROOT}/0.bbbbbb"
A, B, C, D = (f"{P}/{i}.{h * 6}" for i, h in enumerate("cdef"))
PLAN = {
    "subtasks": [
        {"key": "a", "goal": "A"},
        {"key": "b", "goal": "B", "deps": ["a"]},
        {"key": "c", "goal": "C", "deps": ["a"]},
        {"key": "d", "goal": "D", "deps": ["b", "c"]},
    ]
}


def row(step_id: str, kind: str, output: object = None) -> StepRecord:
    task = step_id.partition(":")[0]
    return StepRecord("r", step_id, task, 0, kind, kind, "ok", None, json.dumps(output))


def diamond() -> list[StepRecord]:
    """root → P → A, then B and C (each needs A), then D (needs B and C); each leaf
    makes two calls."""
    rows = [row(f"{ROOT}:plan", "plan", {"subtasks": [{"key": "p", "goal": "P"}]}),
            row(f"{P}:plan", "plan", PLAN)]  # fmt: skip
    for t in (A, B, C, D):
        rows += [row(f"{t}:atomize", "atomize", "execute"), row(f"{t}:execute.0", "tool"),
                 row(f"{t}:execute.1", "tool"), row(f"{t}:end", "task")]  # fmt: skip
    rows += [row(f"{P}:aggregate", "aggregate"), row(f"{P}:end", "task"),
             row(f"{ROOT}:aggregate", "aggregate"), row(f"{ROOT}:end", "task")]  # fmt: skip
    return rows


def test_a_step_id_carries_its_generation_after_a_hash() -> None:
    assert at_generation(f"{B}:execute.1", 0) == f"{B}:execute.1"
    assert at_generation(f"{B}:execute.1", 2) == f"{B}:execute.1#2"
    assert base_id(f"{B}:execute.1#2") == f"{B}:execute.1"
    assert generation_of(f"{B}:execute.1#2") == 2
    assert generation_of(f"{B}:execute.1#2~retry.1") == 2
    assert generation_of(f"{B}:end") == 0


def test_parse_reads_task_role_and_position() -> None:
    assert parse(f"{B}:execute.1#3") == (B, "execute", 1)
    assert parse(f"{P}:replan.2.0") == (P, "replan.2", 0)
    assert parse(f"{P}:aggregate") == (P, "aggregate", None)
    assert parse(f"{B}:end") == (B, "end", None)
    # rows that record how a step went are not steps of the DAG
    assert parse(f"{B}:execute.1~retry.1") is None
    assert parse(f"{B}:execute.1@backup") is None
    assert parse("health:backup.1") is None


def test_invalidating_a_call_covers_later_calls_its_task_its_dependents_and_the_aggregates() -> (
    None
):
    lineage = Lineage(diamond())
    got = lineage.dependents(f"{B}:execute.1")
    assert got == {
        f"{B}:execute.1", f"{B}:end",  # not B:execute.0: it came before
        f"{D}:atomize", f"{D}:execute.0", f"{D}:execute.1", f"{D}:end",  # D needs B
        f"{P}:aggregate", f"{P}:end", f"{ROOT}:aggregate", f"{ROOT}:end",
    }  # fmt: skip
    # A and C do not depend on B; the plans were made before any result
    assert not {s for s in got if s.startswith((A, C))}
    assert f"{P}:plan" not in got and f"{ROOT}:plan" not in got


def test_an_earlier_call_invalidates_the_calls_after_it_in_its_role() -> None:
    got = Lineage(diamond()).dependents(f"{B}:execute.0")
    assert {f"{B}:execute.0", f"{B}:execute.1"} <= got


def test_invalidating_a_source_task_covers_everything_that_reads_it() -> None:
    lineage = Lineage(diamond())
    got = lineage.invalidated_by(f"{A}:end")
    tasks = {s.partition(":")[0] for s in got}
    assert tasks == {A, B, C, D, P, ROOT}
    assert f"{A}:atomize" in got  # a task marked bad runs again whole
    # what depends on A's result is downstream of it, not A's own steps
    assert f"{A}:atomize" not in lineage.dependents(f"{A}:end")
    assert f"{B}:atomize" in lineage.dependents(f"{A}:end")


def test_upstream_names_earlier_calls_inputs_and_deps() -> None:
    lineage = Lineage(diamond())
    assert lineage.upstream(f"{D}:execute.1") == [
        (f"{D}:execute.0", "call"),
        (f"{P}:plan", "inputs"),
        (f"{B}:end", "dep b"),
        (f"{C}:end", "dep c"),
    ]
    up = lineage.upstream(f"{P}:aggregate")
    assert [e.via for e in up if e.via.startswith("child")] == [
        "child a", "child b", "child c", "child d"
    ]  # fmt: skip


def test_a_person_may_name_a_task_for_its_result_or_a_step_with_its_generation() -> None:
    lineage = Lineage(diamond())
    assert lineage.resolve(B) == f"{B}:end"
    assert lineage.resolve(f"{B}:execute.1#4") == f"{B}:execute.1"
    assert lineage.resolve(f"{B}:execute") == f"{B}:execute"  # the role: all its calls
    assert lineage.resolve(f"{B}:execute.7") is None
    assert lineage.resolve("t.0.ffffff") is None


def test_plan_invalidation_numbers_generations_and_names_what_is_wrong() -> None:
    rows = diamond()
    first = plan_invalidation(rows, f"{B}:execute.1", why="stale", by="ana", at=1.0)
    assert first.generation == 1 and first.tasks == tuple(sorted({B, D, P, ROOT}))
    rows.append(StepRecord("r", invalidation_id(first.step, 1), B, 0, "invalidation",
                           first.step, "ok", None, json.dumps(first.to_dict())))  # fmt: skip
    second = plan_invalidation(rows, C, why="wrong", by="ana", at=2.0)
    assert second.generation == 2
    assert invalidations(rows) == [first]
    with pytest.raises(InvalidInput, match="no such step"):
        plan_invalidation(rows, f"{B}:execute.9", why="x", by="ana", at=3.0)
    with pytest.raises(InvalidInput, match="name the step itself"):
        plan_invalidation(rows, f"{B}:execute.1~retry.1", why="x", by="ana", at=3.0)
    with pytest.raises(InvalidInput, match="needs a reason"):
        plan_invalidation(rows, B, why=" ", by="ana", at=3.0)


def test_the_last_invalidation_to_name_a_step_sets_its_generation() -> None:
    one = Invalidation(1, "x", "", "", 0.0, ("s1", "s2"), ())
    two = Invalidation(2, "y", "", "", 0.0, ("s2",), ())
    assert generations([one, two]) == {"s1": 1, "s2": 2}
