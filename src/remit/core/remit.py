"""Remit and Budget: the authority of one task, as pure immutable values.

A :class:`Remit` says which tools a task may call and with which arguments (the
constraints of :mod:`remit.policy`), how much it may spend (:class:`Budget`), until
when (``deadline``), how many more levels it may delegate (``depth``) and on whose
behalf (``principal``). Tools are default-deny: a tool absent from ``tools`` is not
granted. A child remit is derived only with :meth:`Remit.narrow`, which raises
:class:`~remit.errors.WideningError` rather than widen anything.

>>> from remit.policy import within
>>> root = Remit(
...     tools={"read_file": {}, "write_file": {"path": within("out/")}},
...     budget=Budget(calls=200), deadline="15m", depth=3,
... )
>>> child = root.narrow(tools={"write_file": {"path": within("out/drafts/")}})
>>> child.allows("write_file", {"path": "out/drafts/a.md"}), child.allows("read_file", {})
(True, False)
>>> root.check("write_file", {"path": "/etc/passwd"}).code
'ARGUMENT'

Deadlines are given as None (no deadline), a number (absolute epoch seconds, never a
duration), an aware :class:`~datetime.datetime`, an ISO-8601 string with an offset
(``"2030-01-01T12:00:00Z"``), or a relative duration string (``"90s"``, ``"15m"``,
``"2h"``, ``"1h30m"``, ``"1d"``) resolved against ``time.time()`` (or ``now=``) when
the remit is built or read. They are stored as epoch seconds.

File format — TOML shown; JSON has the same shape and :meth:`Remit.to_dict` produces
it (with ``deadline`` as epoch seconds, so that a round trip is exact)::

    principal = "alice"
    deadline = "15m"          # or "2030-01-01T12:00:00Z", or epoch seconds
    depth = 2                 # remaining delegation levels (default 0)
    [budget]                  # omitted dimensions are unlimited
    calls = 200
    cost_usd = 0.5
    [tools.read_file]         # granted, arguments unconstrained
    [tools.write_file]
    path = { within = "out/" }
    [tools.calc]
    expression = [{ max_len = 200 }, { matches = "[0-9+*/() .-]+" }]

Each argument takes a one-key constraint table ``{op = arg}`` or a list of them (all
must hold); the ops are listed in :mod:`remit.policy`.

A tool may instead carry a policy: ordered allow/forbid rules with the same argument
constraints, where the first matching rule decides and no match denies, and a
fallback for denied calls (``"tell"`` the agent, the default; ``"stop"`` the task;
``"ask"`` a person). Rule ids are ``<tool>#<n>``, and every decision names its rule
(:meth:`Decision.explain`)::

    [tools.send_money]
    fallback = "ask"
    rules = [
      { forbid = { amount = { between = { min = 1000 } } }, reason = "needs a person" },
      { allow = { recipient = { in_inputs = true }, amount = { between = [0, 999] } } },
    ]

A simple grant may name a fallback too (``fallback = "stop"`` next to its argument
constraints). A child's grant is the intersection with its parent's; once it has rules
it is written ``layers = [[parent rules...], [child rules...]]``. Malformed input raises
:class:`~remit.errors.RemitFormatError` naming the location, e.g.
``remit.budget.calls: must be a non-negative integer, got -3``.
"""

from __future__ import annotations

import json
import math
import re
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeAlias, cast

import tomli_w

from remit.errors import (
    DeadlineExceeded,
    DelegationError,
    DeniedError,
    RemitFormatError,
    WideningError,
)
from remit.policy import ConstraintSpec, Fallback, ToolGrant

__all__ = ["Budget", "Decision", "DecisionCode", "Remit", "resolve_deadline"]

#: how a tool's grant may be written: a ToolGrant, or argument name → constraint spec
ToolSpec: TypeAlias = ToolGrant | Mapping[str, ConstraintSpec]
DeadlineSpec: TypeAlias = float | int | str | datetime | None
DecisionCode: TypeAlias = Literal["ALLOW", "TOOL_NOT_GRANTED", "ARGUMENT", "DEADLINE"]


def _kind(value: object) -> str:
    return type(value).__name__


# --- deadlines --------------------------------------------------------------------

_NUM = r"(\d+(?:\.\d*)?)"
_DURATION = re.compile(rf"(?:{_NUM}d)?(?:{_NUM}h)?(?:{_NUM}m)?(?:{_NUM}s)?")
_UNIT_SECONDS = (86400.0, 3600.0, 60.0, 1.0)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def resolve_deadline(
    value: object, *, now: float | None = None, where: str = "deadline"
) -> float | None:
    """A deadline spec as epoch seconds (None = no deadline); see the module docs.

    >>> resolve_deadline("1h30m", now=1000.0)
    6400.0
    >>> resolve_deadline("2030-01-01T00:00:00Z")
    1893456000.0
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise RemitFormatError(f"{where}: expected a time or duration, got bool")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise RemitFormatError(f"{where}: must be finite, got {value!r}")
        return float(value)
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise RemitFormatError(
                f"{where}: {value.isoformat()!r} has no timezone; add one (e.g. 'Z')"
            )
        return value.timestamp()
    if isinstance(value, str):
        m = _DURATION.fullmatch(value.strip())
        if m is not None and any(m.groups()):
            seconds = sum(float(g) * u for g, u in zip(m.groups(), _UNIT_SECONDS, strict=True) if g)
            return (time.time() if now is None else now) + seconds
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise RemitFormatError(
                f"{where}: cannot parse {value!r} (expected a duration like '15m' or "
                "'1h30m', an ISO-8601 time with timezone, or epoch seconds)"
            ) from None
        return resolve_deadline(parsed, where=where)
    raise RemitFormatError(
        f"{where}: expected a duration, ISO-8601 time or epoch seconds, got {_kind(value)}"
    )


# --- budget -----------------------------------------------------------------------

_INT_DIMENSIONS = frozenset({"input_tokens", "output_tokens", "calls"})


def _limit(dim: str, value: object, where: str) -> int | float | None:
    if value is None:
        return None
    if dim in _INT_DIMENSIONS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RemitFormatError(f"{where}.{dim}: must be a non-negative integer, got {value!r}")
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise RemitFormatError(f"{where}.{dim}: must be a non-negative number, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """Spending limits of a task; a None dimension is unlimited.

    >>> Budget(calls=10).is_within(Budget(calls=5))
    'budget.calls'
    >>> Budget(calls=3).narrowed(Budget(cost_usd=0.5))
    Budget(input_tokens=None, output_tokens=None, cost_usd=0.5, calls=3, wall_seconds=None)
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    calls: int | None = None
    wall_seconds: float | None = None

    DIMENSIONS: ClassVar[tuple[str, ...]] = (
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "calls",
        "wall_seconds",
    )

    def __post_init__(self) -> None:
        for dim in self.DIMENSIONS:
            value = getattr(self, dim)
            if value is not None:
                object.__setattr__(self, dim, _limit(dim, value, "budget"))

    def is_within(self, parent: Budget) -> str | None:
        """The first dimension (``"budget.<name>"``) wider than ``parent``'s, or None."""
        for dim in self.DIMENSIONS:
            limit = getattr(parent, dim)
            if limit is not None:
                mine = getattr(self, dim)
                if mine is None or mine > limit:
                    return f"budget.{dim}"
        return None

    def narrowed(self, child: Budget) -> Budget:
        """``child`` with unlimited dimensions inheriting this budget's limits.

        Raises :class:`~remit.errors.WideningError` if a child limit exceeds ours.
        """
        values: dict[str, Any] = {}
        for dim in self.DIMENSIONS:
            mine, theirs = getattr(self, dim), getattr(child, dim)
            if theirs is None:
                values[dim] = mine
            elif mine is not None and theirs > mine:
                raise WideningError(f"budget.{dim}", f"child asks for {theirs}, parent has {mine}")
            else:
                values[dim] = theirs
        return Budget(**values)

    def to_dict(self) -> dict[str, Any]:
        """The limited dimensions only: ``{"calls": 200}``."""
        return {d: v for d in self.DIMENSIONS if (v := getattr(self, d)) is not None}

    @classmethod
    def from_dict(cls, d: object, *, where: str = "budget") -> Budget:
        """Read :meth:`to_dict`'s form; errors name ``where.<dimension>``."""
        if not isinstance(d, Mapping):
            raise RemitFormatError(f"{where}: expected a table of limits, got {_kind(d)}")
        items = cast(Mapping[object, object], d)
        values: dict[str, Any] = {}
        for key, value in items.items():
            if key not in cls.DIMENSIONS:
                raise RemitFormatError(
                    f"{where}.{key}: unknown budget dimension "
                    f"(expected one of {', '.join(cls.DIMENSIONS)})"
                )
            values[cast(str, key)] = _limit(cast(str, key), value, where)
        return cls(**values)


# --- decisions --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The answer of :meth:`Remit.check`; truthy when the call is allowed.

    ``code`` is ``"ALLOW"``, ``"TOOL_NOT_GRANTED"``, ``"ARGUMENT"`` (the arguments
    or the tool's rules deny it) or ``"DEADLINE"``. ``rule`` is the id of the rule
    that decided (``"send_money#2"``; None for simple grants and for the other codes;
    for an allowed call through several layers, the last layer's rule). ``fallback``
    says what to do with a denial: ``"tell"`` the agent (the reason is the tool
    result), ``"stop"`` the task, or ``"ask"`` a person; past the deadline it is
    ``"stop"``. ``note`` is the deciding rule's own ``reason`` text, if any.

    >>> d = Decision(allowed=False, reason="send: ...", code="ARGUMENT",
    ...              rule="send#2", note="recipient not in prompt")
    >>> bool(d), d.explain()
    (False, 'denied: recipient not in prompt; rule send#2')
    """

    allowed: bool
    reason: str
    code: DecisionCode
    rule: str | None = None
    fallback: Fallback = "tell"
    note: str | None = None

    def __bool__(self) -> bool:
        return self.allowed

    def explain(self) -> str:
        """One line: ``"allowed: rule send_money#1"``, ``"denied: <why>; rule send_money#2"``.

        The why is the rule's own reason text when it has one, else :attr:`reason`.
        """
        if self.allowed:
            return "allowed" if self.rule is None else f"allowed: rule {self.rule}"
        why = self.note or self.reason
        return f"denied: {why}" if self.rule is None else f"denied: {why}; rule {self.rule}"

    def raise_if_denied(self) -> None:
        """Raise :class:`~remit.errors.DeadlineExceeded` or :class:`~remit.errors.DeniedError`."""
        if self.allowed:
            return
        if self.code == "DEADLINE":
            raise DeadlineExceeded(self.reason)
        raise DeniedError(self.reason, rule=self.rule)


_ALLOW = Decision(allowed=True, reason="allowed", code="ALLOW")


@lru_cache(maxsize=1024)
def _allowed_by(rule: str | None) -> Decision:
    return Decision(allowed=True, reason="allowed", code="ALLOW", rule=rule)


# --- remit ------------------------------------------------------------------------

_FIELDS = ("principal", "deadline", "depth", "budget", "tools")


def _depth(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RemitFormatError(f"{where}: must be a non-negative integer, got {value!r}")
    return value


def _principal(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise RemitFormatError(f"{where}: must be a non-empty string, got {value!r}")
    return value


def _budget(value: object, where: str) -> Budget:
    if value is None:
        return _UNLIMITED
    if isinstance(value, Budget):
        return value
    return Budget.from_dict(value, where=where)


def _grants(tools: object, where: str) -> MappingProxyType[str, ToolGrant]:
    if not isinstance(tools, Mapping):
        raise RemitFormatError(
            f"{where}: expected a table of tool name to argument constraints, got {_kind(tools)}"
        )
    out: dict[str, ToolGrant] = {}
    for name, spec in cast(Mapping[object, object], tools).items():
        if not isinstance(name, str) or not name:
            raise RemitFormatError(f"{where}: tool names must be non-empty strings, got {name!r}")
        if isinstance(spec, ToolGrant):
            if spec.name != name:
                raise RemitFormatError(f"{where}.{name}: holds a grant for {spec.name!r}")
            out[name] = spec
        else:
            out[name] = ToolGrant.from_spec(name, spec, where=f"{where}.{name}")
    return MappingProxyType(dict(sorted(out.items())))


_UNLIMITED = Budget()
_NO_TOOLS: MappingProxyType[str, ToolGrant] = MappingProxyType({})


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
            _grants(_NO_TOOLS if tools is None else tools, "tools"),
            _budget(budget, "budget"),
            resolve_deadline(deadline, now=now),
            _depth(depth, "depth"),
            _principal(principal, "principal"),
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
                    reason=f"{tool}: deadline {_iso(deadline)} passed {t - deadline:.1f}s ago",
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
            return _ALLOW if rule is None else _allowed_by(rule)
        if not grant.layers:
            reason = grant.check(args, inputs_text)
            if reason is None:
                return _ALLOW
            return Decision(
                allowed=False, reason=reason, code="ARGUMENT", fallback=grant.effective_fallback
            )
        verdict = grant.evaluate(args, inputs_text=inputs_text)
        if verdict.reason is None:
            return _allowed_by(verdict.rule)
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
        grants = self.tools
        if tools is not None:
            child = _grants(tools, "tools")
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
            child_budget = self.budget.narrowed(_budget(budget, "budget"))
        child_deadline = self.deadline
        if deadline is not None:
            wanted = resolve_deadline(deadline, now=now)
            assert wanted is not None
            if self.deadline is not None and wanted > self.deadline:
                raise WideningError(
                    "deadline",
                    f"child asks for {_iso(wanted)}, parent ends at {_iso(self.deadline)}",
                )
            child_deadline = wanted
        child_depth = self.depth - 1
        if depth is not None:
            wanted_depth = _depth(depth, "depth")
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
            raise RemitFormatError(f"remit: expected a table, got {_kind(d)}")
        items = cast(Mapping[str, object], d)
        for key in items:
            if key not in _FIELDS:
                raise RemitFormatError(
                    f"remit.{key}: unknown field (expected one of {', '.join(_FIELDS)})"
                )
        return cls._make(
            _grants(items.get("tools", _NO_TOOLS), "remit.tools"),
            _budget(items.get("budget"), "remit.budget"),
            resolve_deadline(items.get("deadline"), now=now, where="remit.deadline"),
            _depth(items.get("depth", 0), "remit.depth"),
            _principal(items.get("principal", "user"), "remit.principal"),
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
        """Read a ``.toml`` or ``.json`` remit file; errors are prefixed with the path."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in (".toml", ".json"):
            raise RemitFormatError(f"{p}: expected a .toml or .json remit file")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise RemitFormatError(f"{p}: cannot read: {e}") from e
        try:
            if suffix == ".toml":
                return cls.from_toml(text, now=now)
            return cls.from_json(text, now=now)
        except RemitFormatError as e:
            raise RemitFormatError(f"{p}: {e.message}") from None

    def __repr__(self) -> str:
        tools = {
            name: dict(g.args) if not g.layers and g.fallback is None else g
            for name, g in self.tools.items()
        }
        return (
            f"Remit(tools={tools!r}, budget={self.budget!r}, deadline={self.deadline!r}, "
            f"depth={self.depth!r}, principal={self.principal!r})"
        )
