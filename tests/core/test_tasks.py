"""Tasks, plans and statuses: deterministic ids, the transition table, plan validation."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys

import pytest

from remit.core.tasks import (
    ROOT,
    TRANSITIONS,
    ChildResult,
    Plan,
    Status,
    Subtask,
    check_transition,
    task_id,
)
from remit.errors import PlanError, TransitionError

# --- task ids ---------------------------------------------------------------------------


def test_task_id_is_a_pure_function_of_parent_position_goal_and_attempt() -> None:
    assert task_id(ROOT, 0, "Audit src/") == task_id(ROOT, 0, "Audit src/")
    child = task_id("t.0.4f9e51", 2, "read main.py", 1)
    assert child == task_id("t.0.4f9e51", 2, "read main.py", 1)


def test_task_id_has_the_documented_shape() -> None:
    root = task_id(ROOT, 0, "Audit src/")
    assert root.startswith("t.0.")
    child = task_id(root, 2, "read main.py")
    assert child.startswith(root + "/2.")
    # the parent of a task id is everything before its last "/"
    assert child.rsplit("/", 1)[0] == root
    grandchild = task_id(child, 0, "x")
    assert grandchild.rsplit("/", 1)[0] == child
    assert "/" not in root


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("p", 0, "goal", 0), ("p", 1, "goal", 0)),  # position
        (("p", 0, "goal", 0), ("p", 0, "goal!", 0)),  # goal
        (("p", 0, "goal", 0), ("p", 0, "goal", 1)),  # attempt
        (("p", 0, "goal", 1), ("p", 0, "goal", 2)),  # attempt
        (("p", 0, "goal", 0), ("q", 0, "goal", 0)),  # parent
    ],
    ids=["position", "goal", "attempt", "second-attempt", "parent"],
)
def test_task_id_differs_when_any_input_differs(a: tuple, b: tuple) -> None:
    assert task_id(*a) != task_id(*b)


def test_task_ids_of_many_siblings_are_distinct() -> None:
    ids = {task_id("t.0.abcdef", i, f"goal {i % 7}") for i in range(5000)}
    assert len(ids) == 5000


def test_task_id_does_not_depend_on_the_process_hash_seed() -> None:
    """Never random: another interpreter with another hash seed derives the same ids."""
    code = (
        "from remit.core.tasks import task_id, ROOT\n"
        "r = task_id(ROOT, 0, 'Audit src/')\n"
        "print(r, task_id(r, 3, 'read main.py', 1))\n"
    )
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        outs.add(tuple(out))
    here_root = task_id(ROOT, 0, "Audit src/")
    assert outs == {(here_root, task_id(here_root, 3, "read main.py", 1))}


# --- statuses --------------------------------------------------------------------------

S = Status
ALLOWED: set[tuple[Status, Status]] = {
    (S.PENDING, S.READY),
    (S.PENDING, S.FAILED),  # a dependency failed
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.DONE),  # served from the journal
    (S.READY, S.RUNNING),
    (S.READY, S.FAILED),
    (S.READY, S.CANCELLED),
    (S.READY, S.DONE),
    (S.RUNNING, S.WAITING),  # planned
    (S.RUNNING, S.DONE),  # executed
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.WAITING, S.AGGREGATING),
    (S.WAITING, S.FAILED),
    (S.WAITING, S.CANCELLED),
    (S.AGGREGATING, S.DONE),
    (S.AGGREGATING, S.FAILED),
    (S.AGGREGATING, S.CANCELLED),
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(Status, Status)))
def test_status_transition_table(old: Status, new: Status) -> None:
    if (old, new) in ALLOWED:
        check_transition("t.0.x", old, new)
    else:
        with pytest.raises(TransitionError) as info:
            check_transition("t.0.x", old, new)
        assert info.value.code == "BAD_TRANSITION"
        assert f"{old.value} -> {new.value}" in info.value.message
        assert "t.0.x" in info.value.message


def test_final_statuses_have_no_way_out() -> None:
    for final in (S.DONE, S.FAILED, S.CANCELLED):
        assert not TRANSITIONS[final]
        for new in Status:
            with pytest.raises(TransitionError):
                check_transition("t", final, new)


def test_a_task_cannot_skip_planning_or_aggregation() -> None:
    with pytest.raises(TransitionError):
        check_transition("t", S.RUNNING, S.AGGREGATING)  # must wait on children first
    with pytest.raises(TransitionError):
        check_transition("t", S.WAITING, S.DONE)  # must aggregate first
    with pytest.raises(TransitionError):
        check_transition("t", S.PENDING, S.RUNNING)  # must be ready first


# --- plan validation -------------------------------------------------------------------


def plan(*subs: Subtask, on_failure: str = "fail") -> Plan:
    return Plan(list(subs), on_failure)  # type: ignore[arg-type]


def test_a_valid_plan_validates_and_returns_itself() -> None:
    p = plan(Subtask("a", "fetch"), Subtask("b", "sum", deps=("a",)))
    assert p.validate() is p


def test_cycle_is_refused_and_the_message_names_the_cycle() -> None:
    p = plan(
        Subtask("a", "one", deps=("c",)),
        Subtask("b", "two", deps=("a",)),
        Subtask("c", "three", deps=("b",)),
        Subtask("d", "outside the cycle"),
    )
    with pytest.raises(PlanError) as info:
        p.validate()
    msg = info.value.message
    assert info.value.code == "PLAN_INVALID"
    assert "cycle" in msg
    cycle = msg.split(": ", 1)[1].split(" -> ")
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["a", "b", "c"]
    assert "d" not in cycle


def test_two_node_cycle_is_named() -> None:
    with pytest.raises(PlanError, match=r"cycle: (x -> y -> x|y -> x -> y)"):
        plan(Subtask("x", "1", deps=("y",)), Subtask("y", "2", deps=("x",))).validate()


def test_self_dependency_is_refused() -> None:
    with pytest.raises(PlanError, match=r"'a' depends on itself"):
        plan(Subtask("a", "loop", deps=("a",))).validate()


def test_unknown_dependency_is_refused_naming_both_keys() -> None:
    with pytest.raises(PlanError, match=r"'b' depends on unknown subtask 'zzz'"):
        plan(Subtask("a", "x"), Subtask("b", "y", deps=("zzz",))).validate()


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(PlanError, match=r"two subtasks with key 'a'"):
        plan(Subtask("a", "x"), Subtask("a", "y")).validate()


def test_empty_plan_is_refused() -> None:
    with pytest.raises(PlanError, match="no subtasks"):
        plan().validate()


@pytest.mark.parametrize("policy", ["retry", "", "FAIL", None])
def test_unknown_failure_policy_is_refused(policy: object) -> None:
    with pytest.raises(PlanError, match="on_failure"):
        plan(Subtask("a", "x"), on_failure=policy).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["fail", "aggregate", "replan"])
def test_known_failure_policies_are_accepted(policy: str) -> None:
    plan(Subtask("a", "x"), on_failure=policy).validate()


def test_empty_key_or_goal_is_refused() -> None:
    with pytest.raises(PlanError, match=r"subtasks\[1\] has an empty key"):
        plan(Subtask("a", "x"), Subtask("", "y")).validate()
    with pytest.raises(PlanError, match=r"subtasks\[0\] \('a'\) has an empty goal"):
        plan(Subtask("a", "   ")).validate()


def test_non_subtask_entries_are_refused() -> None:
    with pytest.raises(PlanError, match=r"subtasks\[0\] is dict"):
        Plan([{"key": "a", "goal": "x"}]).validate()  # type: ignore[list-item]


# --- Plan.from_dict ----------------------------------------------------------------------


def test_from_dict_round_trips_to_dict() -> None:
    p = plan(
        Subtask("a", "fetch", inputs={"url": "u"}, output_schema={"type": "string"}),
        Subtask("b", "sum", deps=("a",), remit={"tools": {"calculator": {}}}),
        on_failure="aggregate",
    )
    again = Plan.from_dict(p.to_dict())
    assert again.to_dict() == p.to_dict()
    assert again.on_failure == "aggregate"
    assert again.subtasks[1].deps == ("a",)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "plan must be an object"),
        ({}, "plan.subtasks must be a list"),
        ({"subtasks": "a"}, "plan.subtasks must be a list"),
        ({"subtasks": [1]}, r"plan.subtasks\[0\] must be an object"),
        ({"subtasks": [{"key": "a"}]}, r"plan.subtasks\[0\] needs string 'key' and 'goal'"),
        ({"subtasks": [{"key": 1, "goal": "g"}]}, r"plan.subtasks\[0\] needs string 'key'"),
        (
            {"subtasks": [{"key": "a", "goal": "g"}, {"key": "b", "goal": "g", "deps": "a"}]},
            r"plan.subtasks\[1\].deps",
        ),
        ({"subtasks": [{"key": "a", "goal": "g", "deps": [1]}]}, r"plan.subtasks\[0\].deps"),
        ({"subtasks": [{"key": "a", "goal": "g", "inputs": [1]}]}, r"plan.subtasks\[0\].inputs"),
        (
            {"subtasks": [{"key": "a", "goal": "g", "output_schema": "str"}]},
            r"plan.subtasks\[0\].output_schema",
        ),
        ({"subtasks": [{"key": "a", "goal": "g", "remit": 5}]}, r"plan.subtasks\[0\].remit"),
        (
            {"subtasks": [{"key": "a", "goal": "g", "prio": 1, "zz": 2}]},
            r"plan.subtasks\[0\] has unknown field\(s\): prio, zz",
        ),
        ({"subtasks": [{"key": "a", "goal": "g"}], "on_failure": "nope"}, "on_failure"),
        ({"subtasks": []}, "no subtasks"),
        (
            {
                "subtasks": [
                    {"key": "a", "goal": "g", "deps": ["b"]},
                    {"key": "b", "goal": "h", "deps": ["a"]},
                ]
            },
            "cycle",
        ),
    ],
)
def test_from_dict_errors_name_the_field(data: object, field: str) -> None:
    with pytest.raises(PlanError, match=field):
        Plan.from_dict(data)


def test_from_dict_uses_the_callers_location_in_messages() -> None:
    with pytest.raises(PlanError, match=r"task t.0.abc plan.subtasks\[0\] must be an object"):
        Plan.from_dict({"subtasks": [None]}, where="task t.0.abc plan")


def test_from_dict_defaults_to_fail_policy_and_no_deps() -> None:
    p = Plan.from_dict({"subtasks": [{"key": "a", "goal": "g"}]})
    assert p.on_failure == "fail"
    assert p.subtasks[0].deps == ()
    assert p.subtasks[0].output_schema is None
    assert p.subtasks[0].remit is None


# --- topological order --------------------------------------------------------------------


def _assert_topological(p: Plan, order: list[str]) -> None:
    assert sorted(order) == sorted(s.key for s in p.subtasks)
    where = {k: i for i, k in enumerate(order)}
    for s in p.subtasks:
        for d in s.deps:
            assert where[d] < where[s.key], f"{d} must come before {s.key}"


def test_order_puts_every_dependency_first() -> None:
    p = plan(
        Subtask("report", "r", deps=("sum", "lint")),
        Subtask("sum", "s", deps=("fetch",)),
        Subtask("lint", "l", deps=("fetch",)),
        Subtask("fetch", "f"),
    )
    order = p.order()
    _assert_topological(p, order)
    assert order[0] == "fetch" and order[-1] == "report"


def test_order_of_random_dags() -> None:
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 30)
        keys = [f"k{i}" for i in range(n)]
        rng.shuffle(keys)
        # an edge only from a later key to an earlier one: acyclic by construction
        subs = [
            Subtask(k, "g", deps=tuple(rng.sample(keys[:i], rng.randint(0, min(i, 4)))))
            for i, k in enumerate(keys)
        ]
        rng.shuffle(subs)
        p = Plan(subs).validate()
        _assert_topological(p, p.order())


def test_random_graphs_with_a_back_edge_are_refused() -> None:
    rng = random.Random(11)
    for _ in range(200):
        n = rng.randint(2, 20)
        keys = [f"k{i}" for i in range(n)]
        deps: dict[str, list[str]] = {k: [] for k in keys}
        for i in range(1, n):  # a chain k0 <- k1 <- ... guarantees a path back
            deps[keys[i]].append(keys[i - 1])
        lo, hi = sorted(rng.sample(range(n), 2))
        deps[keys[lo]].append(keys[hi])  # closes a cycle
        subs = [Subtask(k, "g", deps=tuple(v)) for k, v in deps.items()]
        rng.shuffle(subs)
        with pytest.raises(PlanError, match="cycle"):
            Plan(subs).validate()


def test_order_handles_a_long_chain_without_recursion() -> None:
    n = 20_000
    subs = [Subtask(f"s{i}", "g", deps=(f"s{i - 1}",) if i else ()) for i in range(n)]
    order = Plan(list(reversed(subs))).validate().order()
    assert order == [f"s{i}" for i in range(n)]


def test_child_result_carries_failure_details() -> None:
    r = ChildResult("a", "goal", False, error="boom", code="STEP_FAILED")
    assert (r.ok, r.value, r.error, r.code) == (False, None, "boom", "STEP_FAILED")
