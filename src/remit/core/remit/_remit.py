"""The Remit: the authority of one task, checked on every call and narrowed for each child."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from types import MappingProxyType
from typing import Any, cast

import tomli_w

from remit.core.remit._budget import Budget
from remit.core.remit._deadline import DeadlineSpec, resolve_deadline
from remit.core.remit._decision import ALLOW, Decision, allowed_by
from remit.core.remit._fields import (
    FIELDS,
    NO_TOOLS,
    ToolSpec,
    as_budget,
    as_depth,
    as_grants,
    as_principal,
)
from remit.core.remit._format import iso, kind
from remit.errors import DelegationError, RemitFormatError, WideningError
from remit.policy import ToolGrant


@dataclass(frozen=True, slots=True, init=False, repr=False)
class Remit:
    """The authority of one task. Immutable; compare with ``==``.

    >>> r = Remit(tools={"calc": {}}, budget=Budget(calls=5), depth=1, principal="alice")
    >>> r.narrow().depth, r.narrow(budget=Budget(cost_usd=1.0)).budget.calls
    (0, 5)
    """

    #: tool name → grant, sorted by name
    tools: Mapping[str, ToolGrant]
    budget: Budget
    #: epoch seconds, or None for no deadline
    deadline: float | None
    #: remaining delegation levels: 0 means this task may not delegate
    depth: int
    #: who the authority derives from; inherited unchanged by children
    principal: str

    def __init__(
        self,
        *,
        tools: Mapping[str, ToolSpec] | None = None,
        budget: Budget | Mapping[str, Any] | None = None,
        deadline: DeadlineSpec = None,
        depth: int = 0,
        principal: str = "user",
        now: float | None = None,
    ) -> None:
        """Build a remit; ``now`` (epoch seconds) resolves a relative ``deadline``."""
        self._assign(
            as_grants(NO_TOOLS if tools is None else tools, "tools"),
            as_budget(budget, "budget"),
            resolve_deadline(deadline, now=now),
            as_depth(depth, "depth"),
            as_principal(principal, "principal"),
        )

    def _assign(
        self,
        tools: Mapping[str, ToolGrant],
        budget: Budget,
        deadline: float | None,
        depth: int,
        principal: str,
    ) -> None:
        object.__setattr__(self, "tools", tools)
        object.__setattr__(self, "budget", budget)
        object.__setattr__(self, "deadline", deadline)
        object.__setattr__(self, "depth", depth)
        object.__setattr__(self, "principal", principal)

    @classmethod
    def _make(
        cls,
        tools: Mapping[str, ToolGrant],
        budget: Budget,
        deadline: float | None,
        depth: int,
        principal: str,
    ) -> Remit:
        # Skips validation: only for values already normalized by a Remit.
        remit = object.__new__(cls)
        remit._assign(tools, budget, deadline, depth, principal)
        return remit

    # --- checking calls (the hot path) ---------------------------------------------

    def check(
        self,
        tool: str,
        args: Mapping[str, object],
        *,
        now: float | None = None,
        inputs_text: str | None = None,
    ) -> Decision:
        """Whether this remit allows calling ``tool`` with ``args``, and why not.

        ``inputs_text`` is the task's goal and inputs as text, what ``in_inputs``
        constraints compare values with; without it they deny.

        >>> from remit.policy import within
        >>> r = Remit(tools={"write_file": {"path": within("out/")}})
        >>> r.check("write_file", {"path": "out/a.md"}).allowed
        True
        >>> r.check("delete", {}).reason
        'delete: tool not granted (granted: write_file)'
        """
        deadline = self.deadline
        if deadline is not None:
            t = time.time() if now is None else now
            if t >= deadline:
                return Decision(
                    allowed=False,
                    reason=f"{tool}: deadline {iso(deadline)} passed {t - deadline:.1f}s ago",
                    code="DEADLINE",
                    fallback="stop",
                )
        grant = self.tools.get(tool)
        if grant is None:
            granted = ", ".join(list(self.tools)[:20]) or "none"
            return Decision(
                allowed=False,
                reason=f"{tool}: tool not granted (granted: {granted})",
                code="TOOL_NOT_GRANTED",
            )
        # Compiled constraints decide allowed calls; a denial is explained by the
        # reference checks below, so every reason, rule and fallback stays theirs.
        quick = grant._quick  # pyright: ignore[reportPrivateUsage]
        verdict = grant.quick(args, inputs_text) if quick is None else quick(args, inputs_text)
        if verdict is not None:
            rule = verdict.rule
            return ALLOW if rule is None else allowed_by(rule)
        if not grant.layers:
            reason = grant.check(args, inputs_text)
            if reason is None:
                return ALLOW
            return Decision(
                allowed=False, reason=reason, code="ARGUMENT", fallback=grant.effective_fallback
            )
        verdict = grant.evaluate(args, inputs_text=inputs_text)
        if verdict.reason is None:
            return allowed_by(verdict.rule)
        return Decision(
            allowed=False,
            reason=verdict.reason,
            code="ARGUMENT",
            rule=verdict.rule,
            fallback=grant.effective_fallback,
            note=verdict.note,
        )

    def allows(
        self,
        tool: str,
        args: Mapping[str, object],
        *,
        now: float | None = None,
        inputs_text: str | None = None,
    ) -> bool:
        """``check(...).allowed``."""
        return self.check(tool, args, now=now, inputs_text=inputs_text).allowed

    def expired(self, now: float | None = None) -> bool:
        """Whether the deadline has passed (never, without a deadline)."""
        if self.deadline is None:
            return False
        return (time.time() if now is None else now) >= self.deadline

    def remaining_seconds(self, now: float | None = None) -> float | None:
        """Seconds until the deadline (0.0 once passed), or None without a deadline."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - (time.time() if now is None else now))

    # --- narrowing -------------------------------------------------------------------

    def narrow(
        self,
        *,
        tools: Mapping[str, ToolSpec] | None = None,
        budget: Budget | Mapping[str, Any] | None = None,
        deadline: DeadlineSpec = None,
        depth: int | None = None,
        now: float | None = None,
    ) -> Remit:
        """The remit of a child task: never wider than this one in any dimension.

        - ``tools``: None keeps every grant; else only the named tools, each the
          intersection of this remit's grant and the child's (constraints conjoined,
          rules layered after ours; see :meth:`~remit.policy.ToolGrant.narrowed`, which
          also says how a child may name a stricter fallback).
        - ``budget``: None keeps ours; a child dimension left unlimited inherits our
          limit.
        - ``deadline``: None keeps ours; a later one is an error (pass
          ``min(parent, wanted)`` to clamp instead).
        - ``depth``: None means ``self.depth - 1``.

        Raises :class:`~remit.errors.DelegationError` when ``self.depth == 0`` and
        :class:`~remit.errors.WideningError` (``.dimension`` like ``"tools.shell"``,
        ``"budget.calls"``, ``"deadline"``, ``"depth"``) for anything wider.

        >>> Remit(tools={"read": {}}, depth=1).narrow(tools={"shell": {}})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        remit.errors.WideningError: narrowing would widen tools.shell: not granted by the parent ...
        """
        if self.depth <= 0:
            raise DelegationError(
                "cannot delegate: this remit has no delegation depth left (depth 0); "
                "execute the task directly"
            )
        return self._narrowed(tools, budget, deadline, depth, self.depth - 1, now)

    def restrict(
        self,
        *,
        tools: Mapping[str, ToolSpec] | None = None,
        budget: Budget | Mapping[str, Any] | None = None,
        deadline: DeadlineSpec = None,
        depth: int | None = None,
        now: float | None = None,
    ) -> Remit:
        """This remit for the same task, made narrower: what a caller who hands the whole
        task on (an MCP client of ``remit mcp serve``, say) may ask for. As
        :meth:`narrow`, except that it is not a delegation: ``depth`` may stay as it is
        (None keeps it) and a remit of depth 0 can be restricted.

        >>> Remit(tools={"a": {}, "b": {}}, depth=1).restrict(tools={"a": {}}).depth
        1
        """
        return self._narrowed(tools, budget, deadline, depth, self.depth, now)

    def _narrowed(
        self,
        tools: Mapping[str, ToolSpec] | None,
        budget: Budget | Mapping[str, Any] | None,
        deadline: DeadlineSpec,
        depth: int | None,
        max_depth: int,
        now: float | None,
    ) -> Remit:
        grants = self.tools
        if tools is not None:
            child = as_grants(tools, "tools")
            narrowed: dict[str, ToolGrant] = {}
            for name, grant in child.items():
                mine = self.tools.get(name)
                if mine is None:
                    granted = ", ".join(self.tools) or "none"
                    raise WideningError(
                        f"tools.{name}", f"not granted by the parent (parent grants: {granted})"
                    )
                narrowed[name] = mine.narrowed(grant)
            grants = MappingProxyType(narrowed)
        child_budget = self.budget
        if budget is not None:
            child_budget = self.budget.narrowed(as_budget(budget, "budget"))
        child_deadline = self.deadline
        if deadline is not None:
            wanted = resolve_deadline(deadline, now=now)
            assert wanted is not None
            if self.deadline is not None and wanted > self.deadline:
                raise WideningError(
                    "deadline",
                    f"child asks for {iso(wanted)}, parent ends at {iso(self.deadline)}",
                )
            child_deadline = wanted
        child_depth = max_depth
        if depth is not None:
            wanted_depth = as_depth(depth, "depth")
            if wanted_depth > child_depth:
                raise WideningError(
                    "depth", f"child asks for {wanted_depth}, at most {child_depth} remains"
                )
            child_depth = wanted_depth
        return Remit._make(grants, child_budget, child_deadline, child_depth, self.principal)

    def is_within(self, parent: Remit) -> str | None:
        """The first dimension in which this remit is wider than a child of ``parent``
        may be (``"tools.x"``, ``"tools.x.arg"``, ``"tools.x.rules"``,
        ``"tools.x.fallback"``, ``"budget.calls"``, ``"deadline"``, ``"depth"``,
        ``"principal"``), or None. Depth must be <= ``parent.depth - 1``. A child
        that dropped or changed a parent's rules (a forbid rule, say) is wider.

        >>> parent = Remit(tools={"a": {}, "b": {}}, depth=2)
        >>> parent.narrow(tools={"a": {}}).is_within(parent) is None, parent.is_within(parent)
        (True, 'depth')
        """
        for name, grant in self.tools.items():
            theirs = parent.tools.get(name)
            if theirs is None:
                return f"tools.{name}"
            arg = grant.widening(theirs)
            if arg is not None:
                return f"tools.{name}.{arg}"
        dim = self.budget.is_within(parent.budget)
        if dim is not None:
            return dim
        if parent.deadline is not None and (
            self.deadline is None or self.deadline > parent.deadline
        ):
            return "deadline"
        if self.depth > parent.depth - 1:
            return "depth"
        if self.principal != parent.principal:
            return "principal"
        return None

    # --- serialization -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON/TOML-ready form described in the module docs."""
        d: dict[str, Any] = {"principal": self.principal}
        if self.deadline is not None:
            d["deadline"] = self.deadline
        d["depth"] = self.depth
        d["budget"] = self.budget.to_dict()
        d["tools"] = {name: grant.spec() for name, grant in self.tools.items()}
        return d

    @classmethod
    def from_dict(cls, d: object, *, now: float | None = None) -> Remit:
        """Read :meth:`to_dict`'s form; errors name the location (``remit.tools.x.arg``)."""
        if not isinstance(d, Mapping):
            raise RemitFormatError(f"remit: expected a table, got {kind(d)}")
        items = cast(Mapping[str, object], d)
        for key in items:
            if key not in FIELDS:
                raise RemitFormatError(
                    f"remit.{key}: unknown field (expected one of {', '.join(FIELDS)})"
                )
        return cls._make(
            as_grants(items.get("tools", NO_TOOLS), "remit.tools"),
            as_budget(items.get("budget"), "remit.budget"),
            resolve_deadline(items.get("deadline"), now=now, where="remit.deadline"),
            as_depth(items.get("depth", 0), "remit.depth"),
            as_principal(items.get("principal", "user"), "remit.principal"),
        )

    def to_json(self, *, indent: int | None = None) -> str:
        """JSON text of :meth:`to_dict`; ``Remit.from_json(r.to_json()) == r``."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes, *, now: float | None = None) -> Remit:
        """Read :meth:`to_json`'s output (or a hand-written file of the same shape)."""
        try:
            data = json.loads(text)
        except ValueError as e:
            raise RemitFormatError(f"remit: invalid JSON: {e}") from None
        return cls.from_dict(data, now=now)

    def to_toml(self) -> str:
        """TOML text of :meth:`to_dict`; ``Remit.from_toml(r.to_toml()) == r``."""
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, *, now: float | None = None) -> Remit:
        """Read a TOML remit (see the module docs for the shape)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise RemitFormatError(f"remit: invalid TOML: {e}") from None
        return cls.from_dict(data, now=now)

    @classmethod
    def load(cls, path: str | PathLike[str], *, now: float | None = None) -> Remit:
        """Read a ``.toml`` or ``.json`` remit file; errors are prefixed with the path.

        A file may also declare MCP servers (``[mcp.<name>]``): they are not part of the
        remit, so this leaves them out; :class:`~remit.core.remit.RemitFile` reads both.
        """
        from remit.core.remit._file import RemitFile  # the file module builds on this one

        return RemitFile.load(path, now=now).remit

    def __repr__(self) -> str:
        tools = {
            name: dict(g.args) if not g.layers and g.fallback is None else g
            for name, g in self.tools.items()
        }
        return (
            f"Remit(tools={tools!r}, budget={self.budget!r}, deadline={self.deadline!r}, "
            f"depth={self.depth!r}, principal={self.principal!r})"
        )
