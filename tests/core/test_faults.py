"""Fault plans: read from TOML, every fault type known with its level, where a fault
strikes, and a seeded coin that strikes the same steps every time."""

from __future__ import annotations

import doctest

import pytest

from remit.core import faults as faults_module
from remit.core.faults import FAULT_LEVELS, FAULT_TYPES, Fault, FaultPlan, FaultPlanError

PLAN = """
seed = 3

[[fault]]
type = "tool_error"
tool = "fetch_*"
after = 1
times = 2

[[fault]]
type = "model_refusal"
model = "*"
task = "*summary*"
rate = 0.5
"""


def test_a_plan_reads_from_toml() -> None:
    plan = FaultPlan.from_toml(PLAN, where="plan.toml")
    assert plan.seed == 3
    first, second = plan.faults
    assert (first.type, first.tool, first.after, first.times, first.index) == (
        "tool_error",
        "fetch_*",
        1,
        2,
        0,
    )
    assert (second.level, second.rate, second.index) == ("step", 0.5, 1)


def test_fourteen_types_over_three_levels() -> None:
    assert len(FAULT_TYPES) == 14
    assert set(FAULT_LEVELS.values()) == {"step", "agent", "system"}


def test_where_a_fault_strikes() -> None:
    f = Fault("tool_error", tool="fetch_*", task="*summary*")
    assert f.matches("tool", "fetch_a", "t.0/1", "execute", "write the summary")
    assert not f.matches("tool", "read_file", "t.0/1", "execute", "write the summary")
    assert not f.matches("tool", "fetch_a", "t.0/1", "execute", "read the data")
    assert not f.matches("model", "fetch_a", "t.0/1", "execute", "write the summary")
    kill = Fault("process_kill", tool="calculator")  # at calls to it, not at a role
    assert kill.matches("tool", "calculator", "t.0/1", "execute", "")
    assert not kill.matches("role", "execute", "t.0/1", "execute", "")
    lost = Fault("message_lost")
    assert lost.matches("message", "result", "t.0/2", "", "")
    assert not lost.matches("tool", "fetch_a", "t.0/2", "execute", "")


def test_the_seeded_coin_is_the_same_every_time_and_about_the_rate() -> None:
    f = Fault("timeout", rate=0.3)
    draws = [f.draws(7, f"step-{i}") for i in range(2000)]
    assert draws == [f.draws(7, f"step-{i}") for i in range(2000)]
    assert 0.25 < sum(draws) / len(draws) < 0.35
    assert draws != [f.draws(8, f"step-{i}") for i in range(2000)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"fault": [{"type": "meteor"}]}, "plan.toml: fault 1: type 'meteor' is not a fault type"),
        ({"fault": [{"type": "timeout", "when": 1}]}, "fault 1: unknown field(s) when"),
        ({"fault": [{"type": "timeout", "rate": 0}]}, "fault 1: rate must be a number in (0, 1]"),
        ({"fault": [{"type": "timeout", "times": -1}]}, "fault 1: times must be an integer >= 0"),
        ({"faults": []}, "unknown key(s) faults"),
        ({"seed": "x"}, "seed must be an integer"),
    ],
)
def test_a_bad_plan_is_refused_with_where(data: dict[str, object], message: str) -> None:
    with pytest.raises(FaultPlanError) as e:
        FaultPlan.from_dict(data, where="plan.toml")
    assert message in e.value.message
    assert e.value.message.startswith("plan.toml")


def test_bad_toml_names_the_file() -> None:
    with pytest.raises(FaultPlanError, match=r"plan\.toml: not valid TOML"):
        FaultPlan.from_toml("[[fault]\n", where="plan.toml")


def test_module_examples() -> None:
    assert doctest.testmod(faults_module).failed == 0
