"""Routes: the cheapest path from a capability to an alternative, deterministic, and a
routes table that cannot be used is refused with where it is wrong."""

from __future__ import annotations

import doctest

import pytest

from remit.core import routes as routes_module
from remit.core.routes import Routes, RoutesError


def test_the_cheapest_path_wins_and_ties_go_to_the_first_name() -> None:
    r = Routes({"fetch": {"b": 1, "a": 1, "c": 0.5}})
    assert r.cheapest("fetch") == ("c", 0.5)
    assert r.cheapest("fetch", failed={"c"}) == ("a", 1.0)  # a tie: by name


def test_costs_add_up_along_nested_capabilities() -> None:
    r = Routes({"fetch": {"api": 3, "mirror": 1}, "mirror": {"eu": 1, "us": 5}})
    assert r.cheapest("fetch") == ("eu", 2.0)
    assert r.cheapest("fetch", failed={"eu"}) == ("api", 3.0)
    assert r.cheapest("fetch", usable=lambda n: n == "us") == ("us", 6.0)
    assert r.leaves("fetch") == {"api", "eu", "us"}


def test_the_same_failures_give_the_same_route() -> None:
    table = {"x": {f"t{i}": (i * 7) % 5 for i in range(20)}}
    failed = {"t0", "t5", "t3"}
    picks = {Routes(table).cheapest("x", failed=failed) for _ in range(10)}
    assert len(picks) == 1


def test_a_capability_without_routes_is_its_own_alternative() -> None:
    assert Routes({}).cheapest("read_file") == ("read_file", 0.0)
    assert Routes.from_dict({"read_file": ["read_file", "mirror"]}).cheapest(
        "read_file", failed={"read_file"}
    ) == ("mirror", 2.0)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"fetch": {"a": -1}}, "routes.fetch.a: cost must be a finite number >= 0"),
        ({"fetch": {"a": float("nan")}}, "routes.fetch.a: cost"),
        ({"fetch": {}}, "routes.fetch: must map each alternative to its cost"),
        ({"a": {"b": 1}, "b": {"a": 1}}, "cannot lead back to itself: a -> b -> a"),
    ],
)
def test_a_bad_table_is_refused_with_where(table: dict[str, object], message: str) -> None:
    with pytest.raises(RoutesError, match="routes") as e:
        Routes(table)  # type: ignore[arg-type]
    assert message in e.value.message
    assert e.value.code == "ROUTES_INVALID"


def test_module_examples() -> None:
    assert doctest.testmod(routes_module).failed == 0
