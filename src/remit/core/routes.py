"""Routes: the alternatives a capability may be served by, each with a cost. Pure.

A capability (what an agent asks for: ``fetch``, ``read_file``, ``model``) lists its
alternatives: tools, models, or other capabilities, each with a cost. The Gate serves
a call by the cheapest path from the capability to a concrete alternative; when an
alternative fails it is taken out and the cheapest remaining path is chosen. The choice
is a shortest path over this graph, with ties broken by name, so the same failures
always give the same route.

Routing never widens authority: the Gate only considers alternatives the task's remit
grants (a route names *where* a granted call may go, not *what* may be called).

>>> routes = Routes.from_dict({"fetch": {"fetch_api": 1, "mirror": 3},
...                            "mirror": {"fetch_eu": 1, "fetch_us": 1}})
>>> routes.cheapest("fetch")
('fetch_api', 1.0)
>>> routes.cheapest("fetch", failed={"fetch_api"})
('fetch_eu', 4.0)
>>> routes.cheapest("fetch", failed={"fetch_api", "fetch_eu", "fetch_us"}) is None
True
>>> sorted(routes.leaves("fetch"))
['fetch_api', 'fetch_eu', 'fetch_us']

A capability may name the tool of its own name as its first alternative:

>>> Routes.from_dict({"read_file": ["read_file", "read_mirror"]}).cheapest(
...     "read_file", failed={"read_file"})
('read_mirror', 2.0)
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from remit.errors import InvalidInput

__all__ = ["Route", "Routes", "RoutesError"]


class RoutesError(InvalidInput):
    """A routes table that cannot be used: a bad cost, a cycle, an empty capability."""

    code = "ROUTES_INVALID"


@dataclass(frozen=True, slots=True)
class Route:
    """One edge of the graph: ``capability`` may be served by ``target`` at ``cost``."""

    capability: str
    target: str
    cost: float


class Routes:
    """The capability graph (see the module docstring). Immutable once built."""

    __slots__ = ("_edges",)

    def __init__(self, routes: Mapping[str, Mapping[str, float]] | None = None) -> None:
        edges: dict[str, tuple[Route, ...]] = {}
        for capability, targets in (routes or {}).items():
            where = f"routes.{capability}"
            if not isinstance(capability, str) or not capability:  # pyright: ignore[reportUnnecessaryIsInstance]
                raise RoutesError(
                    f"routes: capability names must be non-empty strings, got {capability!r}"
                )
            if not isinstance(targets, Mapping) or not targets:  # pyright: ignore[reportUnnecessaryIsInstance]
                raise RoutesError(
                    f"{where}: must map each alternative to its cost, e.g. "
                    '{"fetch_api": 1, "fetch_mirror": 3}'
                )
            out: list[Route] = []
            for target, cost in targets.items():
                if not isinstance(target, str) or not target:  # pyright: ignore[reportUnnecessaryIsInstance]
                    raise RoutesError(f"{where}: alternative names must be non-empty strings")
                if (
                    isinstance(cost, bool)
                    or not isinstance(cost, int | float)  # pyright: ignore[reportUnnecessaryIsInstance]
                    or not math.isfinite(cost)
                    or cost < 0
                ):
                    raise RoutesError(
                        f"{where}.{target}: cost must be a finite number >= 0, got {cost!r}"
                    )
                out.append(Route(capability, target, float(cost)))
            edges[capability] = tuple(sorted(out, key=lambda r: (r.cost, r.target)))
        self._edges = edges
        for capability in edges:
            self._check_acyclic(capability, (capability,))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Routes:
        """From a ``[routes]`` table: ``{capability: {alternative: cost}}``; a list of
        names is read as costs 1, 2, 3... in that order (first preferred)."""
        table: dict[str, Mapping[str, float]] = {}
        for capability, targets in data.items():
            if isinstance(targets, list | tuple):
                table[capability] = {str(t): float(i + 1) for i, t in enumerate(targets)}  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
            else:
                table[capability] = targets
        return cls(table)

    def _check_acyclic(self, node: str, path: tuple[str, ...]) -> None:
        for route in self._edges.get(node, ()):
            if route.target == node:
                continue  # the tool of the capability's own name
            if route.target in path:
                cycle = " -> ".join((*path[path.index(route.target) :], route.target))
                raise RoutesError(f"routes: a capability cannot lead back to itself: {cycle}")
            self._check_acyclic(route.target, (*path, route.target))

    def __contains__(self, capability: object) -> bool:
        return capability in self._edges

    def __bool__(self) -> bool:
        return bool(self._edges)

    def __iter__(self) -> Iterator[Route]:
        for routes in self._edges.values():
            yield from routes

    def to_dict(self) -> dict[str, dict[str, float]]:
        """The table as :meth:`from_dict` reads it."""
        return {c: {r.target: r.cost for r in rs} for c, rs in self._edges.items()}

    def leaves(self, capability: str) -> set[str]:
        """Every concrete alternative reachable from ``capability`` (itself, if it has no
        routes)."""
        routes = self._edges.get(capability)
        if routes is None:
            return {capability}
        out: set[str] = set()
        for r in routes:
            out |= {r.target} if r.target == capability else self.leaves(r.target)
        return out

    def check_models(self, have: Container[str]) -> None:
        """Refuse routes for the capability ``model`` to a model not in ``have`` (names)."""
        if "model" not in self._edges:
            return
        missing = sorted(m for m in self.leaves("model") if m not in have)
        if missing:
            raise RoutesError(
                f"routes.model names model(s) this runtime does not have: "
                f"{', '.join(missing)}; pass them as Runtime(models=[...])"
            )

    def cheapest(
        self,
        capability: str,
        *,
        failed: Container[str] = (),
        usable: Callable[[str], bool] | None = None,
    ) -> tuple[str, float] | None:
        """The concrete alternative at the end of the cheapest path from ``capability``
        and the path's cost, skipping ``failed`` alternatives and those ``usable`` refuses
        (not granted, circuit open); None when no path is left. Deterministic: equal
        costs go to the name that sorts first."""
        # Dijkstra: the graph is small and acyclic, but costs make the nearest leaf the
        # right one, not the first found
        # (cost, name, concrete?): a capability may route to the tool of its own name
        queue: list[tuple[float, str, bool]] = [(0.0, capability, capability not in self._edges)]
        seen: set[tuple[str, bool]] = set()
        while queue:
            cost, node, leaf = heapq.heappop(queue)
            if (node, leaf) in seen:
                continue
            seen.add((node, leaf))
            if leaf:
                if node in failed or (usable is not None and not usable(node)):
                    continue
                return node, cost
            for r in self._edges[node]:
                concrete = r.target == node or r.target not in self._edges
                heapq.heappush(queue, (cost + r.cost, r.target, concrete))
        return None
