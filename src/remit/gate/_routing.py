"""Routing: a call to a capability goes to its cheapest healthy alternative, and around
the ones that fail.

When a call names a capability of the run's :class:`~remit.core.routes.Routes`, the
Gate serves it by the cheapest path to an alternative that the task's remit grants and
whose breaker is not open (:mod:`remit.gate._health`). An alternative that fails in a
way another might not share (:func:`~remit.gate._taxonomy.reroutable`: an error, a
timeout after its retries, garbage out) is taken out, the reroute is journaled
(``<step>~reroute.<n>``, naming the failed alternative, its error and the next one) and
the call goes to the next cheapest path. Same failures, same route: the choice is a
shortest path with ties broken by name.

With no path left the call **escalates**: the step's error is
:class:`~remit.errors.NoRouteLeft`, marked ``escalate``; the engine has the task's
parent re-plan that branch under the same remit, and when a re-planned task finds no
route either and its grant says ``fallback = "ask"``, a person is asked (``remit
approve``) whether to try the routes again.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from remit.core.ledger import ZERO, Usage
from remit.core.remit import Decision
from remit.core.routes import Routes
from remit.errors import NoRouteLeft, RemitError
from remit.errors import from_dict as error_from_dict
from remit.gate._execute import Execution
from remit.gate._health import DEFAULT_COOLDOWN_S, DEFAULT_THRESHOLD, Health
from remit.gate._node import Node
from remit.gate._state import MISS
from remit.gate._taxonomy import mark

__all__ = ["Routing"]

#: one alternative tried: (alternative, the step id it runs under) -> the result
TryOne = Callable[[str, str], Awaitable[Any]]


class Routing(Execution):
    """Chooses among a capability's alternatives; keeps their health."""

    def use_routes(
        self,
        routes: Routes | None,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
    ) -> None:
        """Route calls by ``routes`` from now on; breakers start from the journal's
        last recorded state of each alternative (a resume routes as the run would have)."""
        self.routes = routes if routes else None
        self.health = {}
        if self.routes is not None:
            self.routes.check_models(self.models)
        self._breaker = (threshold, cooldown_s)
        if not self.routes:
            return
        last: dict[str, tuple[int, dict[str, Any]]] = {}
        for rec in self.recorded.values():
            if rec.kind == "health" and rec.output:
                n = int(rec.step_id.rpartition(".")[2])
                if n >= last.get(rec.name, (-1, {}))[0]:
                    last[rec.name] = (n, json.loads(rec.output))
        for name, (n, data) in last.items():
            self._health_of(name).restore(data)
            self._health_n[name] = n + 1

    def _health_of(self, name: str) -> Health:
        h = self.health.get(name)
        if h is None:
            threshold, cooldown = self._breaker
            h = self.health[name] = Health(name, threshold=threshold, cooldown_s=cooldown)
        return h

    def _observe(self, node: Node, name: str, ok: bool, started: float) -> None:
        """Count a call's outcome; journal the breaker when its state changes."""
        now = time.time()
        h = self._health_of(name)
        if h.record(ok, now - started, now):
            n = self._health_n.get(name, 0)
            self._health_n[name] = n + 1
            self._record(node, f"health:{name}.{n}", "health", name, "ok", None,
                         json.dumps(h.to_dict()), None, ZERO, now)  # fmt: skip

    def _healthy(self, name: str) -> bool:
        """Whether ``name``'s breaker lets a call through now."""
        h = self.health.get(name)
        return h is None or h.allows(time.time())

    def _usable(self, node: Node, args: Mapping[str, Any]) -> Callable[[str], bool]:
        now = time.time()

        def usable(name: str) -> bool:
            h = self.health.get(name)
            if h is not None and not h.allows(now):
                return False  # its breaker is open
            # routing never widens authority: only what the remit grants is a route
            return node.remit.check(name, args, now=now, inputs_text=self.inputs_text).allowed

        return usable

    def _first_route(self, node: Node, capability: str, args: Mapping[str, Any]) -> str | None:
        """The alternative a call to ``capability`` goes to first (None: none is usable)."""
        assert self.routes is not None
        choice = self.routes.cheapest(capability, usable=self._usable(node, args))
        return None if choice is None else choice[0]

    async def _routed(
        self,
        node: Node,
        step_id: str,
        capability: str,
        args: Mapping[str, Any],
        first: str,
        try_one: TryOne,
        *,
        kind: str = "tool",
    ) -> Any:
        """Serve a call by ``first``, then around each alternative that fails. Each
        alternative tried is a step of its own, ``<step>@<alternative>`` (its intent,
        proof, retries and result, as for any call); the call's outcome is recorded on
        ``<step>`` as a ``route`` row, which a resume serves. Tools are routed among those
        the remit grants; models (``kind="model"``) by health alone (the budget governs
        model calls, not grants)."""
        routes = self.routes
        assert routes is not None
        failed: set[str] = set()
        alt, rounds, reroutes = first, 0, 0
        started_at = time.time()
        usable = self._healthy if kind == "model" else self._usable(node, args)
        while True:
            sub_id = f"{step_id}@{alt}" if rounds == 0 else f"{step_id}@{alt}~{rounds}"
            started, replayed = time.time(), self.replayed
            try:
                value = await try_one(alt, sub_id)
            except RemitError as err:
                if getattr(err, "outcome", None) != "reroute":
                    raise  # the agent's mistake or the task's (authority, budget, ...)
                if self.replayed == replayed:  # a replayed failure was counted already
                    self._observe(node, alt, False, started)
                failed.add(alt)
                choice = routes.cheapest(capability, failed=failed, usable=usable)
                if choice is None and await self._person_says_retry(
                    node, step_id, capability, args, failed, err
                ):
                    failed.clear()  # a person said: try the routes again
                    rounds += 1
                    choice = routes.cheapest(capability, usable=usable)
                if choice is None:
                    raise self._escalate(node, step_id, kind, capability, alt, failed, err,
                                         started_at) from err  # fmt: skip
                nxt = choice[0]
                reroutes += 1
                mark(err, "reroute", to=nxt, via=sub_id)
                self._record(node, f"{step_id}~reroute.{reroutes}", "reroute", alt, "error",
                             None, None, json.dumps(err.to_dict()), ZERO, started)  # fmt: skip
                alt = nxt
                continue
            if self.replayed == replayed:
                self._observe(node, alt, True, started)
            encoded = value if kind != "model" else dataclasses.asdict(value)
            self._record(node, step_id, "route", alt, "ok", args or None,
                         self._encode(encoded, step_id), None, ZERO, started_at)  # fmt: skip
            return value

    def _served_route(self, node: Node, step_id: str) -> Any:
        """A routed call recorded by an earlier process: its outcome, with what every
        alternative tried spent booked on the ledger (MISS if it was not recorded)."""
        rec = self.recorded.get(step_id) if self.recorded else None
        if rec is None or rec.kind != "route" or rec.status == "started":
            return MISS
        if self._tried is None:  # one pass over the journal, on the first served route
            self._tried = {}
            for sid, r in self.recorded.items():
                if "@" in sid:
                    self._tried.setdefault(sid.split("@", 1)[0], []).append(r)
        for r in self._tried.get(step_id, ()):
            if r.spent and r.status != "started":
                self.ledger.charge(node.account, Usage.from_dict(json.loads(r.spent)), r.step_id)
            self._receipt_served(node, r)  # the alternative that served it has one
        self.replayed += 1
        if rec.status == "ok":
            return self.decode(rec)
        raise error_from_dict(self.decode(rec, "error") or {})

    async def _person_says_retry(
        self,
        node: Node,
        step_id: str,
        capability: str,
        args: Mapping[str, Any],
        failed: set[str],
        cause: RemitError,
    ) -> bool:
        """The last step of an escalation: a re-planned task that found no route either
        asks a person, if an alternative's grant says ``fallback = "ask"``. Approved:
        the breakers of the failed alternatives half-open, and the routes are tried once
        more. Asked at most once per step (the answer is journaled)."""
        if node.attempt < 1 or f"{step_id}~approval" in self._asked:
            return False
        grants = node.remit.tools
        if not any(
            (g := grants.get(name)) is not None and g.effective_fallback == "ask"
            for name in sorted(failed)
        ):
            return False
        self._asked.add(f"{step_id}~approval")
        why = (
            f"every route of {capability!r} failed ({', '.join(sorted(failed))}; last: "
            f"{cause.code}: {cause.message}) and a re-plan did not help; approve to try "
            "the routes again, deny to fail the task"
        )
        decision = Decision(allowed=False, reason=why, code="ARGUMENT", fallback="ask", note=why)
        approved, _reason = await self._approval(node, step_id, capability, args, decision)
        if not approved:
            return False
        for name in failed:
            h = self.health.get(name)
            if h is not None and h.state == "open":
                h.state = "half-open"
        return True

    def _all_out(
        self, node: Node, step_id: str, capability: str, granted: list[str], kind: str = "tool"
    ) -> NoRouteLeft:
        """Every alternative the remit grants has its breaker open: escalate at once."""
        err = NoRouteLeft(
            f"no route left for {capability!r}: the circuit of every alternative the remit "
            f"grants is open ({', '.join(granted)})",
            capability=capability,
            cause="CIRCUIT_OPEN",
        )
        mark(err, "escalate", kind=kind)
        self._record_error(node, step_id, "route", capability, err, ZERO, time.time(), "error")
        return err

    def _escalate(
        self,
        node: Node,
        step_id: str,
        kind: str,
        capability: str,
        last: str,
        failed: set[str],
        cause: RemitError,
        started: float,
    ) -> NoRouteLeft:
        tried = ", ".join(sorted(failed))
        err = NoRouteLeft(
            f"no route left for {capability!r}: every alternative failed or is out "
            f"(tried {tried}); last: {last}: {cause.code}: {cause.message}",
            capability=capability,
            cause=cause.code,
        )
        mark(err, "escalate", kind=kind)
        # the alternatives' rows hold what they spent; this row holds the outcome
        self._record_error(node, step_id, "route", last, err, ZERO, started, "error")
        return err
