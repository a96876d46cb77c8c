"""Remit and Budget: default-deny tool checks, narrowing that never widens, deadlines,
and exact, location-naming serialization."""

from __future__ import annotations

import doctest
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import remit.core.remit
import remit.core.remit._budget
import remit.core.remit._deadline
import remit.core.remit._decision
import remit.core.remit._fields
import remit.core.remit._format
import remit.core.remit._remit
from remit.core.remit import Budget, Decision, Remit, resolve_deadline
from remit.errors import (
    DeadlineExceeded,
    DelegationError,
    DeniedError,
    RemitFormatError,
    WideningError,
)
from remit.policy import (
    Constraint,
    ToolGrant,
    between,
    equals,
    glob,
    matches,
    max_len,
    one_of,
    within,
)

NOW = 1_800_000_000.0


def root(**overrides: Any) -> Remit:
    kwargs: dict[str, Any] = {
        "tools": {"read_file": {}, "write_file": {"path": within("out/")}},
        "budget": Budget(calls=200, cost_usd=0.5),
        "deadline": NOW + 900,
        "depth": 3,
        "principal": "alice",
    }
    kwargs.update(overrides)
    return Remit(**kwargs)


# --- Budget -----------------------------------------------------------------------------


def test_budget_dimensions_default_to_unlimited() -> None:
    assert Budget.DIMENSIONS == (
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "calls",
        "wall_seconds",
    )
    assert all(getattr(Budget(), d) is None for d in Budget.DIMENSIONS)
    assert Budget().to_dict() == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calls": -3}, "budget.calls: must be a non-negative integer, got -3"),
        ({"calls": True}, "budget.calls: must be a non-negative integer, got True"),
        ({"input_tokens": 1.5}, "budget.input_tokens: must be a non-negative integer, got 1.5"),
        ({"cost_usd": -0.1}, "budget.cost_usd: must be a non-negative number, got -0.1"),
        ({"wall_seconds": float("inf")}, "budget.wall_seconds: must be a non-negative number"),
    ],
)
def test_budget_limits_must_be_non_negative(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RemitFormatError) as e:
        Budget(**kwargs)
    assert e.value.message.startswith(message)


def test_budget_money_and_time_are_stored_as_floats() -> None:
    assert Budget(cost_usd=1) == Budget(cost_usd=1.0)
    assert isinstance(Budget(cost_usd=1).cost_usd, float)


def test_budget_is_within_names_the_first_wider_dimension() -> None:
    parent = Budget(calls=10, cost_usd=1.0)
    assert Budget(calls=10, cost_usd=0.5, input_tokens=5).is_within(parent) is None
    assert Budget(calls=11, cost_usd=0.5).is_within(parent) == "budget.calls"
    assert Budget(calls=5).is_within(parent) == "budget.cost_usd"  # unlimited is wider
    assert Budget(calls=5).is_within(Budget()) is None


def test_budget_narrowed_inherits_unlimited_dimensions_from_the_parent() -> None:
    parent = Budget(calls=10, cost_usd=1.0)
    assert parent.narrowed(Budget(calls=4)) == Budget(calls=4, cost_usd=1.0)
    assert parent.narrowed(Budget(wall_seconds=30)) == Budget(
        calls=10, cost_usd=1.0, wall_seconds=30
    )
    with pytest.raises(WideningError) as e:
        parent.narrowed(Budget(cost_usd=2.0))
    assert e.value.dimension == "budget.cost_usd"
    assert "child asks for 2.0, parent has 1.0" in e.value.message


def test_budget_dict_round_trip_and_errors() -> None:
    b = Budget(calls=3, cost_usd=0.25, wall_seconds=60)
    assert Budget.from_dict(b.to_dict()) == b
    with pytest.raises(RemitFormatError, match=r"^x\.tokens: unknown budget dimension"):
        Budget.from_dict({"tokens": 5}, where="x")
    with pytest.raises(RemitFormatError, match=r"^x: expected a table"):
        Budget.from_dict([1], where="x")


# --- construction -----------------------------------------------------------------------


def test_tools_are_default_deny() -> None:
    r = Remit()
    assert dict(r.tools) == {}
    assert r.check("read_file", {}).code == "TOOL_NOT_GRANTED"
    assert r.depth == 0 and r.principal == "user" and r.deadline is None
    assert r.budget == Budget()


def test_tool_specs_are_normalized_to_read_only_grants() -> None:
    r = Remit(tools={"w": {"path": [within("out"), max_len(50)]}, "calc": {"x": {"max_len": 9}}})
    assert r.tools["w"] == ToolGrant("w", {"path": (within("out/"), max_len(50))})
    assert r.tools["calc"].args["x"] == (max_len(9),)
    assert list(r.tools) == ["calc", "w"]
    with pytest.raises(TypeError):
        r.tools["shell"] = ToolGrant("shell")  # type: ignore[index]


def test_remit_is_immutable() -> None:
    r = root()
    with pytest.raises(AttributeError):
        r.depth = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tools": "*"}, "tools: expected a table of tool name"),
        ({"tools": {"": {}}}, "tools: tool names must be non-empty strings"),
        ({"tools": {"w": {"path": {"inside": "out"}}}}, "tools.w.path: unknown constraint op"),
        ({"tools": {"w": ["path"]}}, "tools.w: expected a table of argument constraints"),
        ({"tools": {"w": ToolGrant("v")}}, "tools.w: holds a grant for 'v'"),
        ({"depth": -1}, "depth: must be a non-negative integer, got -1"),
        ({"principal": ""}, "principal: must be a non-empty string"),
        ({"deadline": "soon"}, "deadline: cannot parse 'soon'"),
    ],
)
def test_bad_constructor_arguments_name_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RemitFormatError) as e:
        Remit(**kwargs)
    assert e.value.message.startswith(message)


# --- deadlines ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("90s", NOW + 90),
        ("15m", NOW + 900),
        ("2h", NOW + 7200),
        ("1h30m", NOW + 5400),
        ("1d", NOW + 86400),
        ("1.5m", NOW + 90),
        (" 10s ", NOW + 10),
        (NOW + 5, NOW + 5),  # a number is an absolute time, not a duration
        (1_900_000_000, 1_900_000_000.0),
        ("2030-01-01T00:00:00Z", 1_893_456_000.0),
        ("2030-01-01T01:00:00+01:00", 1_893_456_000.0),
        (datetime(2030, 1, 1, tzinfo=UTC), 1_893_456_000.0),
        (None, None),
    ],
)
def test_deadline_specs(spec: Any, expected: float | None) -> None:
    assert resolve_deadline(spec, now=NOW) == expected
    assert Remit(deadline=spec, now=NOW).deadline == expected


def test_relative_deadlines_resolve_against_the_clock_by_default() -> None:
    import time

    before = time.time()
    r = Remit(deadline="60s")
    assert r.deadline is not None and before + 60 <= r.deadline <= time.time() + 60


@pytest.mark.parametrize(
    "spec", ["", "15", "15x", "m", "-5m", "2030-01-01T00:00:00", datetime(2030, 1, 1), True, [1]]
)
def test_bad_deadlines_are_format_errors(spec: Any) -> None:
    with pytest.raises(RemitFormatError, match=r"^deadline: "):
        resolve_deadline(spec, now=NOW)


def test_expired_and_remaining_seconds() -> None:
    r = Remit(deadline=NOW + 10)
    assert not r.expired(NOW) and r.expired(NOW + 10)
    assert r.remaining_seconds(NOW) == 10 and r.remaining_seconds(NOW + 20) == 0.0
    assert Remit().remaining_seconds(NOW) is None and not Remit().expired(NOW)


# --- check ----------------------------------------------------------------------------------


def test_check_allows_granted_calls_within_constraints() -> None:
    d = root().check("write_file", {"path": "out/report.md", "text": "x"}, now=NOW)
    assert d == Decision(allowed=True, reason="allowed", code="ALLOW")
    assert d and root().allows("read_file", {"path": "/anything"}, now=NOW)


def test_check_denies_with_a_code_and_a_reason() -> None:
    r = root()
    d = r.check("write_file", {"path": "/etc/passwd"}, now=NOW)
    assert not d and d.code == "ARGUMENT"
    assert d.reason.startswith("write_file: argument 'path'='/etc/passwd' violates within('out/')")
    d = r.check("shell", {"cmd": "rm -rf /"}, now=NOW)
    assert d.code == "TOOL_NOT_GRANTED"
    assert d.reason == "shell: tool not granted (granted: read_file, write_file)"
    d = r.check("write_file", {"text": "x"}, now=NOW)
    assert d.code == "ARGUMENT" and "'path' is missing" in d.reason


def test_check_denies_everything_once_the_deadline_passed() -> None:
    r = root()
    assert r.check("read_file", {}, now=NOW + 899).allowed
    d = r.check("read_file", {}, now=NOW + 900)
    assert d.code == "DEADLINE" and "deadline" in d.reason and "passed" in d.reason


def test_decision_raise_if_denied() -> None:
    r = root()
    r.check("read_file", {}, now=NOW).raise_if_denied()
    with pytest.raises(DeniedError):
        r.check("shell", {}, now=NOW).raise_if_denied()
    with pytest.raises(DeadlineExceeded):
        r.check("read_file", {}, now=NOW + 10_000).raise_if_denied()


# --- narrow ---------------------------------------------------------------------------------


def test_narrow_without_arguments_keeps_everything_but_one_level_of_depth() -> None:
    parent = root()
    child = parent.narrow()
    assert child.depth == 2
    assert (child.tools, child.budget, child.deadline, child.principal) == (
        parent.tools,
        parent.budget,
        parent.deadline,
        parent.principal,
    )
    assert child.is_within(parent) is None


def test_narrow_tools_keeps_only_named_tools_and_conjoins_constraints() -> None:
    parent = root()
    child = parent.narrow(tools={"write_file": {"path": within("out/drafts/"), "text": max_len(9)}})
    assert list(child.tools) == ["write_file"]
    assert child.allows("write_file", {"path": "out/drafts/a", "text": "hi"}, now=NOW)
    assert not child.allows("write_file", {"path": "out/a", "text": "hi"}, now=NOW)
    assert not child.allows("read_file", {}, now=NOW)
    # asking for a wider constraint does not widen: the parent's still applies
    wide = parent.narrow(tools={"write_file": {"path": within(".")}})
    assert not wide.allows("write_file", {"path": "src/x"}, now=NOW)
    assert parent.narrow(tools={}).tools == {}


def test_narrow_refuses_a_tool_the_parent_does_not_grant() -> None:
    with pytest.raises(WideningError) as e:
        root().narrow(tools={"read_file": {}, "shell": {}})
    assert e.value.dimension == "tools.shell"
    assert "not granted by the parent (parent grants: read_file, write_file)" in e.value.message


def test_narrow_budget_must_fit_and_inherits_limits() -> None:
    parent = root()
    assert parent.narrow(budget=Budget(calls=10)).budget == Budget(calls=10, cost_usd=0.5)
    assert parent.narrow(budget={"cost_usd": 0.1}).budget == Budget(calls=200, cost_usd=0.1)
    with pytest.raises(WideningError) as e:
        parent.narrow(budget=Budget(cost_usd=0.75))
    assert e.value.dimension == "budget.cost_usd"


def test_narrow_deadline_may_only_come_earlier() -> None:
    parent = root()
    assert parent.narrow(deadline=NOW + 60).deadline == NOW + 60
    assert parent.narrow(deadline="1m", now=NOW).deadline == NOW + 60
    with pytest.raises(WideningError) as e:
        parent.narrow(deadline=NOW + 901)
    assert e.value.dimension == "deadline"
    assert Remit(depth=1).narrow(deadline=NOW).deadline == NOW


def test_narrow_depth() -> None:
    parent = root(depth=3)
    assert parent.narrow(depth=0).depth == 0
    with pytest.raises(WideningError) as e:
        parent.narrow(depth=3)
    assert e.value.dimension == "depth"
    with pytest.raises(DelegationError, match="no delegation depth left"):
        root(depth=0).narrow()
    with pytest.raises(RemitFormatError):
        parent.narrow(depth=-1)


def test_narrow_keeps_the_principal() -> None:
    assert root(principal="bob").narrow().principal == "bob"


def test_is_within_names_the_widening_dimension() -> None:
    parent = root()
    base = parent.narrow()
    assert base.is_within(parent) is None
    assert root().is_within(parent) == "depth"  # a hop must spend one level
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tools": {"shell": {}}}, "tools.shell"),
        ({"tools": {"write_file": {}}}, "tools.write_file.path"),
        ({"tools": {"write_file": {"path": within("src")}}}, "tools.write_file.path"),
        ({"budget": Budget(calls=201, cost_usd=0.5)}, "budget.calls"),
        ({"budget": Budget(calls=1)}, "budget.cost_usd"),
        ({"deadline": NOW + 901}, "deadline"),
        ({"deadline": None}, "deadline"),
        ({"principal": "mallory"}, "principal"),
    ]
    for change, dimension in cases:
        kwargs: dict[str, Any] = {
            "tools": base.tools,
            "budget": base.budget,
            "deadline": base.deadline,
            "depth": base.depth,
            "principal": base.principal,
        }
        kwargs.update(change)
        assert Remit(**kwargs).is_within(parent) == dimension, change


# --- serialization --------------------------------------------------------------------------

EXAMPLE_TOML = """
principal = "alice"
deadline = "15m"
depth = 2
[budget]
calls = 200
cost_usd = 0.5
[tools.read_file]
[tools.write_file]
path = { within = "out/" }
[tools.calc]
expression = [{ max_len = 200 }]
"""


def test_reads_the_documented_toml_shape() -> None:
    r = Remit.from_toml(EXAMPLE_TOML, now=NOW)
    assert r == Remit(
        tools={
            "read_file": {},
            "write_file": {"path": within("out/")},
            "calc": {"expression": max_len(200)},
        },
        budget=Budget(calls=200, cost_usd=0.5),
        deadline=NOW + 900,
        depth=2,
        principal="alice",
    )
    assert r.to_dict() == {
        "principal": "alice",
        "deadline": NOW + 900,
        "depth": 2,
        "budget": {"calls": 200, "cost_usd": 0.5},
        "tools": {
            "calc": {"expression": {"max_len": 200}},
            "read_file": {},
            "write_file": {"path": {"within": "out/"}},
        },
    }


def test_file_deadlines_may_be_absolute() -> None:
    assert Remit.from_toml("deadline = 2030-01-01T00:00:00Z").deadline == 1_893_456_000.0
    assert Remit.from_toml('deadline = "2030-01-01T00:00:00Z"').deadline == 1_893_456_000.0
    assert Remit.from_json('{"deadline": 1893456000}').deadline == 1_893_456_000.0
    with pytest.raises(RemitFormatError, match=r"^remit\.deadline: .* has no timezone"):
        Remit.from_toml("deadline = 2030-01-01T00:00:00")


def test_json_and_toml_round_trips_are_exact() -> None:
    r = Remit(
        tools={
            "w": {"path": [within("out/"), glob("*.md")], "mode": one_of("a", "w")},
            "calc": {"x": [max_len(200), matches(r"[0-9+]+")], "n": between(0, None)},
            "flag": {"on": equals(True)},
        },
        budget=Budget(input_tokens=10, output_tokens=5, cost_usd=0.1, calls=3, wall_seconds=1.5),
        deadline=NOW + 0.123456789,
        depth=1,
        principal="ålice",
    )
    assert Remit.from_json(r.to_json()) == r
    assert Remit.from_toml(r.to_toml()) == r
    assert Remit.from_dict(json.loads(r.to_json(indent=2))) == r
    assert Remit.from_json(r.to_json()).to_json() == r.to_json()


def test_load_reads_toml_and_json_by_suffix(tmp_path: Path) -> None:
    r = root()
    (tmp_path / "r.toml").write_text(r.to_toml())
    (tmp_path / "r.json").write_text(r.to_json())
    assert Remit.load(tmp_path / "r.toml") == r == Remit.load(str(tmp_path / "r.json"))
    (tmp_path / "r.yaml").write_text("")
    with pytest.raises(RemitFormatError, match=r"expected a \.toml or \.json"):
        Remit.load(tmp_path / "r.yaml")
    with pytest.raises(RemitFormatError, match="cannot read"):
        Remit.load(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text('[tools.w]\npath = { inside = "out/" }\n')
    with pytest.raises(RemitFormatError) as e:
        Remit.load(tmp_path / "bad.toml")
    assert e.value.message.startswith(f"{tmp_path / 'bad.toml'}: remit.tools.w.path: unknown")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[tools.write_file]\npath = { inside = "out/" }',
            "remit.tools.write_file.path: unknown constraint op 'inside' (expected one of equals,"
            " one_of, matches, within, glob, url_prefix, between, max_len, in_inputs, each, absent,"
            " absent_or)",
        ),
        ("[budget]\ncalls = -3", "remit.budget.calls: must be a non-negative integer, got -3"),
        ("[budget]\ntokens = 3", "remit.budget.tokens: unknown budget dimension"),
        ("depth = -1", "remit.depth: must be a non-negative integer, got -1"),
        ("depth = 1.5", "remit.depth: must be a non-negative integer, got 1.5"),
        ('principal = ""', "remit.principal: must be a non-empty string"),
        ('deadline = "later"', "remit.deadline: cannot parse 'later'"),
        ("deadline = 2030-01-01", "remit.deadline: expected a duration"),
        ('tools = ["read_file"]', "remit.tools: expected a table of tool name"),
        ("[tools]\nread_file = true", "remit.tools.read_file: expected a table of argument"),
        ('[tools.w]\npath = "out/"', "remit.tools.w.path: expected a constraint or a list"),
        ("[tools.w]\npath = [{ max_len = 2 }, 3]", "remit.tools.w.path[1]: expected a constraint"),
        ("[tools.w]\nn = { between = [3, 1] }", "remit.tools.w.n: between: lo 3 is above hi 1"),
        ('[tools.w]\nx = { matches = "(" }', "remit.tools.w.x: matches: invalid regular"),
        ("depht = 2", "remit.depht: unknown field (expected one of principal, deadline,"),
        ("depth = ", "remit: invalid TOML"),
    ],
)
def test_malformed_toml_names_the_location(toml: str, message: str) -> None:
    with pytest.raises(RemitFormatError) as e:
        Remit.from_toml(toml, now=NOW)
    assert e.value.message.startswith(message), e.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "remit: expected a table, got list"),
        ("{", "remit: invalid JSON"),
        ('{"budget": {"calls": 2.0}}', "remit.budget.calls: must be a non-negative integer"),
        ('{"tools": {"w": {"p": {"op": "within"}}}}', "remit.tools.w.p: expected exactly the keys"),
        ('{"deadline": true}', "remit.deadline: expected a time or duration, got bool"),
    ],
)
def test_malformed_json_names_the_location(text: str, message: str) -> None:
    with pytest.raises(RemitFormatError) as e:
        Remit.from_json(text, now=NOW)
    assert e.value.message.startswith(message), e.value.message


def test_json_accepts_the_op_arg_constraint_form() -> None:
    r = Remit.from_json('{"tools": {"w": {"path": {"op": "within", "arg": "out/"}}}}')
    assert r.tools["w"].args["path"] == (within("out"),)


def test_module_examples_run() -> None:
    result = doctest.testmod(remit.core.remit)
    assert result.attempted > 0 and result.failed == 0
    attempted = result.attempted
    for module in (
        remit.core.remit._deadline,
        remit.core.remit._budget,
        remit.core.remit._decision,
        remit.core.remit._remit,
    ):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, (module.__name__, result)
        attempted += result.attempted
    # how values read in messages, and reading a remit's fields, show no examples
    for module in (remit.core.remit._format, remit.core.remit._fields):
        result = doctest.testmod(module)
        assert result.failed == 0, (module.__name__, result)
        attempted += result.attempted
    assert attempted == 21


# --- properties -----------------------------------------------------------------------------

TOOLS = ["read", "write", "calc"]
ARGS = ["path", "n", "mode"]
SEGMENTS = ["out", "sub", "..", ".", "etc", "a.md", ""]


def join(lead: str, segments: list[str]) -> str:
    return lead + "/".join(segments)


paths = st.builds(
    join,
    st.sampled_from(["", "/", "./", "../"]),
    st.lists(st.sampled_from(SEGMENTS), max_size=4),
)
scalars = st.one_of(st.integers(-3, 12), st.sampled_from([True, False, 0.5, "r", "w", "out/a.md"]))
values = st.one_of(paths, scalars, st.floats(-5, 15), st.text(max_size=4), st.none())


@st.composite
def ranges(draw: st.DrawFn) -> Constraint:
    lo, hi = sorted((draw(st.integers(-3, 12)), draw(st.integers(-3, 12))))
    return between(draw(st.sampled_from([lo, None])), draw(st.sampled_from([hi, None])))


constraints: st.SearchStrategy[Constraint] = st.one_of(
    scalars.map(equals),
    st.lists(scalars, min_size=1, max_size=3).map(lambda vs: one_of(*vs)),
    st.sampled_from(["[a-z]+", "out/.*", ".*"]).map(matches),
    st.sampled_from(["out", "out/sub", ".", "/", "etc"]).map(within),
    st.sampled_from(["*.md", "out/*"]).map(glob),
    ranges(),
    st.integers(0, 6).map(max_len),
)
grant_specs = st.dictionaries(
    st.sampled_from(ARGS), st.lists(constraints, max_size=2).map(tuple), max_size=2
)


def optional(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), s)


budgets = st.builds(
    Budget,
    input_tokens=optional(st.integers(0, 1000)),
    output_tokens=optional(st.integers(0, 1000)),
    cost_usd=optional(st.floats(0, 10)),
    calls=optional(st.integers(0, 50)),
    wall_seconds=optional(st.floats(0, 3600)),
)
deadlines = optional(st.floats(NOW - 100, NOW + 10_000))
remits = st.builds(
    Remit,
    tools=st.dictionaries(st.sampled_from(TOOLS), grant_specs, max_size=3),
    budget=budgets,
    deadline=deadlines,
    depth=st.integers(0, 3),
    principal=st.one_of(st.sampled_from(["user", "alice"]), st.text(min_size=1, max_size=8)),
)
narrow_requests = st.fixed_dictionaries(
    {},
    optional={
        "tools": st.dictionaries(st.sampled_from([*TOOLS, "shell"]), grant_specs, max_size=3),
        "budget": budgets,
        "deadline": st.floats(NOW - 100, NOW + 20_000),
        "depth": st.integers(0, 4),
    },
)
calls = st.tuples(
    st.sampled_from([*TOOLS, "shell"]),
    st.dictionaries(st.sampled_from([*ARGS, "extra"]), values, max_size=4),
    st.floats(NOW - 200, NOW + 20_000),
)


@settings(max_examples=200, deadline=None)
@given(remits, narrow_requests, st.lists(calls, max_size=10))
def test_narrowing_either_raises_for_the_right_dimension_or_never_widens(
    parent: Remit, request: dict[str, Any], calls: list[tuple[str, dict[str, object], float]]
) -> None:
    try:
        child = parent.narrow(**request)
    except DelegationError:
        assert parent.depth == 0
        return
    except WideningError as e:
        dim = e.dimension
        if dim.startswith("tools."):
            assert dim.removeprefix("tools.") not in parent.tools
        elif dim.startswith("budget."):
            name = dim.removeprefix("budget.")
            limit, asked = getattr(parent.budget, name), getattr(request["budget"], name)
            assert limit is not None and asked is not None and asked > limit
        elif dim == "deadline":
            assert parent.deadline is not None and request["deadline"] > parent.deadline
        else:
            assert dim == "depth" and request["depth"] > parent.depth - 1
        return
    assert child.is_within(parent) is None
    assert child.principal == parent.principal
    for tool, args, now in calls:
        if child.allows(tool, args, now=now):
            assert parent.allows(tool, args, now=now), (tool, args)


@settings(max_examples=200, deadline=None)
@given(
    remits,
    st.data(),
    st.lists(calls, max_size=10),
)
def test_is_within_is_sound_for_independently_built_children(
    parent: Remit, data: st.DataObject, calls: list[tuple[str, dict[str, object], float]]
) -> None:
    """A remit built from scratch that passes is_within allows nothing the parent denies."""
    names = data.draw(st.lists(st.sampled_from([*parent.tools, "shell"]), unique=True))
    child = Remit(
        tools={name: data.draw(grant_specs) for name in names},
        budget=parent.budget,
        deadline=parent.deadline,
        depth=max(parent.depth - 1, 0),
        principal=parent.principal,
    )
    if child.is_within(parent) is not None:
        return
    for tool, args, now in calls:
        if child.allows(tool, args, now=now):
            assert parent.allows(tool, args, now=now), (tool, args)


def guarded_call(
    remit: Remit,
    tool_fn: Callable[[str, Mapping[str, object]], object],
    name: str,
    args: Mapping[str, object],
    now: float,
) -> Decision:
    """The smallest possible gate: check, then call only if allowed."""
    decision = remit.check(name, args, now=now)
    if decision:
        tool_fn(name, args)
    return decision


@settings(max_examples=200, deadline=None)
@given(remits, st.lists(calls, max_size=15))
def test_a_denied_call_never_reaches_the_tool(
    r: Remit, calls: list[tuple[str, dict[str, object], float]]
) -> None:
    seen: list[tuple[str, Mapping[str, object], float]] = []
    allowed = 0
    for name, args, now in calls:

        def tool(n: str, a: Mapping[str, object], now: float = now) -> None:
            seen.append((n, a, now))

        allowed += bool(guarded_call(r, tool, name, args, now))
    assert len(seen) == allowed
    for name, args, now in seen:
        # verified independently of Remit.check
        assert name in r.tools
        assert r.deadline is None or now < r.deadline
        for arg, cs in r.tools[name].args.items():
            assert arg in args
            assert all(c.check(args[arg]) is None for c in cs)


def reference_check(r: Remit, tool: str, args: Mapping[str, object], now: float) -> Decision:
    """Remit.check as it was before its compiled fast path: the reference checks only."""
    if r.deadline is not None and now >= r.deadline:
        return Decision(
            allowed=False,
            reason=f"{tool}: deadline {remit.core.remit._iso(r.deadline)} passed "
            f"{now - r.deadline:.1f}s ago",
            code="DEADLINE",
            fallback="stop",
        )
    grant = r.tools.get(tool)
    if grant is None:
        granted = ", ".join(list(r.tools)[:20]) or "none"
        return Decision(
            allowed=False,
            reason=f"{tool}: tool not granted (granted: {granted})",
            code="TOOL_NOT_GRANTED",
        )
    reason = grant.check(args)
    if reason is None:
        return Decision(allowed=True, reason="allowed", code="ALLOW")
    return Decision(
        allowed=False, reason=reason, code="ARGUMENT", fallback=grant.effective_fallback
    )


@settings(max_examples=300, deadline=None)
@given(remits, st.lists(calls, max_size=15))
def test_check_decides_and_explains_exactly_like_the_reference_checks(
    r: Remit, calls: list[tuple[str, dict[str, object], float]]
) -> None:
    for name, args, now in calls:
        assert r.check(name, args, now=now) == reference_check(r, name, args, now), (name, args)
        # twice: the second call runs the grant's already compiled checks
        assert r.check(name, args, now=now) == reference_check(r, name, args, now), (name, args)


def test_check_of_a_deeply_narrowed_path_grant() -> None:
    r = Remit(tools={"w": {"path": within("out/"), "text": max_len(9)}}, depth=5)
    for i in range(4):
        r = r.narrow(tools={"w": {"path": within("out/" + "d/" * (i + 1))}})
    assert len(r.tools["w"].args["path"]) == 5
    ok = {"path": "out/d/d/d/d/x.md", "text": "hi"}
    assert r.check("w", ok, now=NOW) == Decision(allowed=True, reason="allowed", code="ALLOW")
    for bad in (
        {"path": "out/d/d/d/x.md", "text": "hi"},
        {"path": "out/d/d/d/d/../x.md", "text": "hi"},
        {"path": "out/d/d/d/d/x.md", "text": "0123456789"},
        {"path": "out/d/d/d/d/x.md"},
        {"path": 7, "text": "hi"},
    ):
        assert r.check("w", bad, now=NOW) == reference_check(r, "w", bad, NOW)
        assert not r.check("w", bad, now=NOW).allowed


@settings(max_examples=200, deadline=None)
@given(remits)
def test_json_and_toml_round_trips_are_exact_for_any_remit(r: Remit) -> None:
    assert Remit.from_json(r.to_json()) == r
    assert Remit.from_toml(r.to_toml()) == r
    assert Remit.from_json(r.to_json()).to_json() == r.to_json()
    assert Remit.from_toml(r.to_toml()).to_toml() == r.to_toml()


def test_timezone_offsets_are_honoured() -> None:
    tz = timezone(timedelta(hours=-5))
    assert Remit(deadline=datetime(2030, 1, 1, tzinfo=tz)).deadline == 1_893_456_000.0 + 5 * 3600


def test_restrict_narrows_the_same_task_without_spending_a_level() -> None:
    parent = Remit(tools={"a": {"x": max_len(5)}, "b": {}}, budget=Budget(calls=10), depth=1)
    same = parent.restrict(tools={"a": {}}, budget={"calls": 4})
    assert sorted(same.tools) == ["a"] and same.budget.calls == 4 and same.depth == 1
    assert not same.allows("a", {"x": "toolong"})  # the parent's constraint still holds
    assert Remit(tools={"a": {}}, depth=0).restrict(tools={"a": {}}).depth == 0
    with pytest.raises(WideningError) as e:
        parent.restrict(depth=2)
    assert e.value.dimension == "depth"
    with pytest.raises(WideningError) as e:
        parent.restrict(budget={"calls": 11})
    assert e.value.dimension == "budget.calls"
