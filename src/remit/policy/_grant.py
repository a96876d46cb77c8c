"""A tool's grant (simple constraints or layers of rules, and a fallback): how its layers
of rules combine, how a child's grant is narrowed, and what would widen its parent's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

from remit.errors import RemitFormatError, WideningError
from remit.policy._compiled import ArgsTest
from remit.policy._constraints import ArgRules, Constraint, ConstraintSpec
from remit.policy._fallback import STRICTNESS, Fallback, as_fallback
from remit.policy._matching import MatchTimeout, within_budget
from remit.policy._narrowing import args_imply, layer_within
from remit.policy._quick import compile_grant
from remit.policy._rules import (
    Layer,
    Rule,
    RuleSpec,
    Verdict,
    args_spec,
    is_rules_table,
    layers_from_spec,
    normalize_args,
)
from remit.policy._structure import arg_failure
from remit.policy._values import show

_RULES_GRANT_KEYS = ("fallback", "rules", "layers")


@dataclass(frozen=True, slots=True, init=False)
class ToolGrant:
    r"""Permission to call one tool: simple argument constraints, or ordered rules.

    *Simple* (``args``): a constraint, a list of constraints, or their dict forms per
    argument, stored as a read-only mapping of tuples; all must hold. Arguments
    without constraints are not limited here (the tool validates its own types); a
    constrained argument that is missing from a call is denied, unless every
    constraint on it accepts that (``absent``, ``absent_or``). This is the same as one
    allow rule, but its decisions name no rule id.

    *Rules* (``rules``): ordered :class:`Rule`\ s, the first matching one decides; when
    none matches the call is denied. Rule ids are ``<tool>#<n>``, 1-based. A grant
    narrowed by a child keeps *layers*: the parent's rules, then the child's, each
    layer evaluated in that order and all of them must allow the call (ids keep
    counting across layers, so a parent's rule keeps its id in every descendant).

    ``fallback`` is what happens when a call is denied: ``"tell"`` (the default,
    stored as None when not named), ``"stop"`` or ``"ask"``. A call that a ``matches``
    cannot decide in time is denied, whatever the rules (see :mod:`remit.policy`).

    >>> g = ToolGrant("write_file", {"path": within("out/")})
    >>> g.check({"path": "/etc/x", "text": "hi"})
    "write_file: argument 'path'='/etc/x' violates within('out/'): '/etc/x' is not within 'out/'"
    >>> g = ToolGrant("send", rules=[forbid({"n": between(10, None)}), allow()], fallback="ask")
    >>> g.evaluate({"n": 12}).reason
    "send: forbidden by rule send#1: argument 'n'=12 matches between(10, None)"
    >>> g.evaluate({"n": 2}), g.effective_fallback
    (Verdict(reason=None, rule='send#2', note=None), 'ask')
    """

    name: str
    #: argument name → constraints, sorted by argument name (empty for a rules grant)
    args: ArgRules
    #: the rules of each layer, parents' first (empty for a simple grant)
    layers: tuple[Layer, ...]
    #: the fallback named for this grant; None means the default, "tell"
    fallback: Fallback | None
    _items: tuple[tuple[str, tuple[Constraint, ...]], ...] = field(repr=False, compare=False)
    _plan: tuple[tuple[tuple[str, Rule], ...], ...] = field(repr=False, compare=False)
    # compiled on first use by quick(): grants are built far more often than checked
    _quick: ArgsTest[Verdict | None] | None = field(repr=False, compare=False)

    def __init__(
        self,
        name: str,
        args: Mapping[str, ConstraintSpec] | None = None,
        *,
        rules: Sequence[RuleSpec] | None = None,
        layers: Sequence[Sequence[RuleSpec]] | None = None,
        fallback: Fallback | None = None,
    ) -> None:
        where = f"tools.{name}"
        if (rules is not None or layers is not None) and args:
            raise RemitFormatError(
                f"{where}: give either argument constraints or rules, not both "
                "(put the constraints in an allow rule)"
            )
        parsed = () if rules is None and layers is None else layers_from_spec(rules, layers, where)
        self._init(name, {} if args is None else args, parsed, fallback, None)

    def _init(
        self,
        name: object,
        args: object,
        layers: tuple[Layer, ...],
        fallback: object,
        where: str | None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise RemitFormatError(
                f"{where or 'tools'}: tool names must be non-empty strings, got {show(name)}"
            )
        where = where or f"tools.{name}"
        fb = None if fallback is None else as_fallback(fallback, f"{where}.fallback")
        items = normalize_args(name, args, where)
        if "fallback" in items and fb is not None:
            raise RemitFormatError(
                f"{where}.fallback: an argument named 'fallback' cannot be combined with a "
                "fallback in the simple shape; write the grant as rules"
            )
        self._set(name, items, layers, fb)

    def _set(
        self,
        name: str,
        args: dict[str, tuple[Constraint, ...]],
        layers: tuple[Layer, ...],
        fallback: Fallback | None,
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "args", MappingProxyType(args))
        object.__setattr__(self, "_items", tuple(args.items()))
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "fallback", fallback)
        plan: list[tuple[tuple[str, Rule], ...]] = []
        n = 0
        for layer in layers:
            ids = range(n + 1, n + len(layer) + 1)
            plan.append(tuple((f"{name}#{i}", r) for i, r in zip(ids, layer, strict=True)))
            n += len(layer)
        object.__setattr__(self, "_plan", tuple(plan))
        object.__setattr__(self, "_quick", None)

    @classmethod
    def _make(
        cls,
        name: str,
        args: dict[str, tuple[Constraint, ...]],
        layers: tuple[Layer, ...],
        fallback: Fallback | None,
    ) -> ToolGrant:
        grant = object.__new__(cls)
        grant._set(name, args, layers, fallback)
        return grant

    @classmethod
    def from_spec(cls, name: str, spec: object, *, where: str | None = None) -> ToolGrant:
        """Build from the file form; errors name ``where`` (default ``tools.<name>``).

        The simple shape ``{"path": {"within": "out/"}}`` (plus optionally
        ``"fallback": "stop"``), or ``{"fallback": ..., "rules": [{"allow": {...}}]}``,
        or, for a grant narrowed by children, ``{"fallback": ..., "layers": [[...], ...]}``.

        >>> ToolGrant.from_spec("calc", {"expression": [{"max_len": 200}]})
        ToolGrant(name='calc', args={'expression': (max_len(200),)})
        """
        grant = object.__new__(cls)
        if not isinstance(cast(object, name), str) or not name:
            raise RemitFormatError(
                f"{where or 'tools'}: tool names must be non-empty strings, got {show(name)}"
            )
        at = where or f"tools.{name}"
        if isinstance(spec, Mapping):
            table = cast(Mapping[object, object], spec)
            if is_rules_table(table):
                for key in table:
                    if key not in _RULES_GRANT_KEYS:
                        raise RemitFormatError(
                            f"{at}.{key}: unknown key in a tool with rules (expected "
                            "fallback and rules; put argument constraints in a rule)"
                        )
                layers = layers_from_spec(table.get("rules"), table.get("layers"), at)
                grant._init(name, {}, layers, table.get("fallback"), where)
                return grant
            fb = table.get("fallback")
            if isinstance(fb, str):  # a string is never an argument's constraint spec
                rest = {k: v for k, v in table.items() if k != "fallback"}
                grant._init(name, rest, (), fb, where)
                return grant
        grant._init(name, spec, (), None, where)
        return grant

    def spec(self) -> dict[str, Any]:
        """The file form read by :meth:`from_spec` (rules only if the grant has them)."""
        d: dict[str, Any] = {} if self.fallback is None else {"fallback": self.fallback}
        if not self.layers:
            d.update(args_spec(self._items))
        elif len(self.layers) == 1:
            d["rules"] = [r.spec() for r in self.layers[0]]
        else:
            d["layers"] = [[r.spec() for r in layer] for layer in self.layers]
        return d

    @property
    def effective_fallback(self) -> Fallback:
        """The fallback that applies: the named one, else ``"tell"``."""
        return self.fallback or "tell"

    @property
    def rules(self) -> tuple[tuple[str, Rule], ...]:
        """Every rule with its id, parents' layers first (empty for a simple grant)."""
        return tuple(entry for layer in self._plan for entry in layer)

    # --- checking --------------------------------------------------------------------

    def quick(self, args: Mapping[str, object], inputs_text: str | None = None) -> Verdict | None:
        """The verdict of an allowed call, exactly as :meth:`evaluate` gives it, or None
        if the call is denied (then :meth:`evaluate` says why).

        The fast path for checking calls: the constraints are compiled once per grant and
        build no reason text.

        >>> g = ToolGrant("send", rules=[forbid({"to": equals("eve")}), allow()])
        >>> g.quick({"to": "bob"}), g.quick({"to": "eve"})
        (Verdict(reason=None, rule='send#2', note=None), None)
        """
        run = self._quick
        if run is None:
            run = compile_grant(self)
            object.__setattr__(self, "_quick", run)
        return run(args, inputs_text)

    def check(self, args: Mapping[str, object], inputs_text: str | None = None) -> str | None:
        """None if the call's ``args`` are allowed, else the reason.

        ``inputs_text`` (the task's goal and inputs) is what ``in_inputs`` compares with.
        """
        if self._plan:
            return self.evaluate(args, inputs_text=inputs_text).reason
        try:
            with within_budget():
                for arg, cs in self._items:
                    reason = arg_failure(arg, cs, args, inputs_text)
                    if reason is not None:
                        return f"{self.name}: {reason}"
        except MatchTimeout as e:
            return f"{self.name}: {e.located or e.reason}"
        return None

    def evaluate(self, args: Mapping[str, object], *, inputs_text: str | None = None) -> Verdict:
        """The decision with the rule that made it (an allowed call: the last layer's).

        >>> g = ToolGrant("w", rules=[allow({"path": within("out/")}, reason="only out/")])
        >>> g.evaluate({"path": "out/a"})
        Verdict(reason=None, rule='w#1', note=None)
        >>> print(g.evaluate({"path": "src/a"}).reason)  # doctest: +NORMALIZE_WHITESPACE
        w: no rule allows this call; rule w#1 (only out/) fails: argument 'path'='src/a' violates
        within('out/'): 'src/a' is not within 'out/'
        """
        if not self._plan:
            return Verdict(self.check(args, inputs_text))
        with within_budget():
            return self._evaluate(args, inputs_text)

    def _evaluate(self, args: Mapping[str, object], inputs_text: str | None) -> Verdict:
        decided: str | None = None
        for layer in self._plan:
            decided = None
            nearest: tuple[str, Rule, str] | None = None
            for rid, rule in layer:
                try:
                    miss = rule.miss(args, inputs_text)
                except MatchTimeout as e:
                    note = "" if rule.reason is None else f" ({rule.reason})"
                    return Verdict(
                        f"{self.name}: rule {rid}{note} could not be decided in time: "
                        f"{e.located or e.reason}",
                        rid,
                        rule.reason,
                    )
                if miss is None:
                    if rule.effect == "forbid":
                        note = "" if rule.reason is None else f" ({rule.reason})"
                        matched = rule._matched(args)  # pyright: ignore[reportPrivateUsage]
                        return Verdict(
                            f"{self.name}: forbidden by rule {rid}{note}"
                            + (f": {matched}" if matched else ""),
                            rid,
                            rule.reason,
                        )
                    decided = rid
                    break
                if nearest is None and rule.effect == "allow":
                    nearest = (rid, rule, miss)
            if decided is None:
                if nearest is None:
                    return Verdict(f"{self.name}: no rule allows this call (its rules only forbid)")
                rid, rule, miss = nearest
                note = "" if rule.reason is None else f" ({rule.reason})"
                return Verdict(
                    f"{self.name}: no rule allows this call; rule {rid}{note} fails: {miss}",
                    rid,
                    rule.reason,
                )
        return Verdict(None, decided)

    # --- narrowing ---------------------------------------------------------------------

    def _layer_view(self) -> tuple[Layer, ...]:
        """This grant as layers: a simple grant is one allow rule (none if unconstrained)."""
        if self.layers or not self._items:
            return self.layers
        rule = object.__new__(Rule)
        rule._init("allow", dict(self._items), None, f"tools.{self.name}")  # pyright: ignore[reportPrivateUsage]
        return ((rule,),)

    def narrowed(self, child: ToolGrant) -> ToolGrant:
        """The intersection of this grant and ``child``'s (never wider than either).

        Two simple grants conjoin their constraints, dropping child constraints that a
        parent constraint already implies. Otherwise the result keeps this grant's
        layers and appends the child's that add something, so the parent's rules are
        evaluated first and still name themselves in explanations.

        The fallback is inherited unless the child names one, which may be as strict
        or stricter (``ask`` < ``tell`` < ``stop``) but not laxer: ``ask`` lets a
        person approve a call, so a child may not turn the parent's outright denials
        into questions; it may turn ``ask`` into ``tell`` or ``stop`` for a task that
        runs unattended, or ``tell`` into ``stop``. Raises
        :class:`~remit.errors.WideningError` (``tools.<name>.fallback``) otherwise.

        >>> ToolGrant("w", {"path": within("out/")}).narrowed(
        ...     ToolGrant("w", {"path": [within("out/"), max_len(9)]}))
        ToolGrant(name='w', args={'path': (within('out/'), max_len(9))})
        """
        if child.name != self.name:
            raise WideningError(
                f"tools.{child.name}", f"cannot narrow the grant of {self.name!r} with it"
            )
        fallback = self.fallback
        if child.fallback is not None:
            mine = self.effective_fallback
            if STRICTNESS[child.fallback] < STRICTNESS[mine]:
                raise WideningError(
                    f"tools.{self.name}.fallback",
                    f"child asks for {child.fallback!r}, laxer than the parent's {mine!r} "
                    "(order: 'ask' < 'tell' < 'stop')",
                )
            if child.fallback != mine:
                fallback = child.fallback
        if not self.layers and not child.layers:
            merged = dict(self._items)
            with within_budget():
                for arg, ccs in child._items:
                    pcs = merged.get(arg, ())
                    extra = tuple(c for c in ccs if not any(p.implies(c) for p in pcs))
                    if extra:
                        merged[arg] = pcs + extra
            same = len(merged) == len(self._items) and all(merged[a] is cs for a, cs in self._items)
            if same and fallback == self.fallback:
                return self
            return ToolGrant._make(self.name, dict(sorted(merged.items())), (), fallback)
        layers = list(self._layer_view())
        added = False
        for layer in child._layer_view():
            if not any(layer_within(mine, layer) for mine in layers):
                layers.append(layer)
                added = True
        if not added:
            if fallback == self.fallback:
                return self
            return ToolGrant._make(self.name, dict(self._items), self.layers, fallback)
        return ToolGrant._make(self.name, {}, tuple(layers), fallback)

    def widening(self, parent: ToolGrant) -> str | None:
        """What makes this grant wider than ``parent``, or None: an argument name (both
        simple), ``"rules"`` (a parent rule layer without an equal or narrower layer
        here; dropping a parent's forbid rule is widening), or ``"fallback"``.
        """
        if STRICTNESS[self.effective_fallback] < STRICTNESS[parent.effective_fallback]:
            return "fallback"
        if not self.layers and not parent.layers:
            return args_imply(self.args, parent._items)
        mine = self._layer_view()
        for theirs in parent._layer_view():
            if not any(layer_within(layer, theirs) for layer in mine):
                return "rules"
        return None

    def is_within(self, parent: ToolGrant) -> bool:
        """Whether every call this grant allows, ``parent`` allows too (conservatively),
        with a fallback at least as strict.

        >>> parent = ToolGrant("w", {"path": within("out")})
        >>> ToolGrant("w", {"path": within("out/a")}).is_within(parent)
        True
        """
        return self.name == parent.name and self.widening(parent) is None

    def __repr__(self) -> str:
        fallback = "" if self.fallback is None else f", fallback={self.fallback!r}"
        if self.layers:
            return f"ToolGrant(name={self.name!r}, layers={self.layers!r}{fallback})"
        return f"ToolGrant(name={self.name!r}, args={dict(self.args)!r}{fallback})"
