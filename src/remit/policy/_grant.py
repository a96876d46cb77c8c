"""A tool's grant: simple constraints or layers of rules, a fallback, and narrowing.

This is what a remit holds per tool, so it sits on top of the other modules. It reads
in two parts. First the ordered allow/forbid rules a policy is written in and a denial
is explained by, and the verdict they give: what one rule means (when it matches, what
its miss says). Then :class:`~remit.policy.ToolGrant`, the only part that knows about
layers and fallbacks: how a grant's layers of rules combine, how a child's grant is
narrowed, and what would widen its parent's. They share a module because a grant
evaluates and narrows through a rule's internals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, TypeAlias, cast

from remit.errors import RemitFormatError, WideningError
from remit.policy._compiled import ArgsTest, arg_checks, args_test
from remit.policy._constraints import ArgRules, Constraint, ConstraintSpec, kind, show, walk
from remit.policy._matching import Matches, MatchTimeout, guarded, within_budget
from remit.policy._parsing import constraints_from_spec
from remit.policy._structure import arg_failure, arg_path

# --- rules ------------------------------------------------------------------------

#: what a rule does when it matches
Effect: TypeAlias = Literal["allow", "forbid"]


_RULE_KEYS = ("allow", "forbid", "reason")


def _dedupe(cs: Iterable[Constraint]) -> tuple[Constraint, ...]:
    out: list[Constraint] = []
    for c in cs:
        if c not in out:
            out.append(c)
    return tuple(out)


def _normalize_args(name: str, args: object, where: str) -> dict[str, tuple[Constraint, ...]]:
    if not isinstance(args, Mapping):
        raise RemitFormatError(
            f"{where}: expected a table of argument constraints, got {kind(args)}"
        )
    out: dict[str, tuple[Constraint, ...]] = {}
    for arg, spec in sorted(args.items(), key=lambda kv: str(kv[0])):  # pyright: ignore[reportUnknownArgumentType, reportUnknownLambdaType]
        if not isinstance(arg, str) or not arg:
            raise RemitFormatError(f"{where}: argument names must be non-empty strings")
        try:
            arg_path(arg)
        except RemitFormatError as e:
            raise RemitFormatError(f"{where}.{arg}: {e.message}") from None
        if isinstance(spec, tuple) and all(isinstance(c, Constraint) for c in spec):  # pyright: ignore[reportUnknownVariableType]
            cs: tuple[Constraint, ...] = spec  # pyright: ignore[reportUnknownVariableType]
        else:
            cs = constraints_from_spec(spec, f"{where}.{arg}")
        cs = _dedupe(cs)
        if cs:  # an argument with no constraints is unconstrained: keep no entry
            out[arg] = cs
    return out


def _args_spec(items: Iterable[tuple[str, tuple[Constraint, ...]]]) -> dict[str, Any]:
    return {
        arg: cs[0].to_spec() if len(cs) == 1 else [c.to_spec() for c in cs] for arg, cs in items
    }


@dataclass(frozen=True, slots=True, init=False, repr=False)
class Rule:
    """One ordered rule of a tool's policy: ``allow`` or ``forbid`` the calls whose
    arguments satisfy every constraint (``args`` like a simple grant's; a rule without
    constraints matches every call). ``reason`` is the text an explanation uses when
    this rule decides a denial: a forbid rule that matched, or the first allow rule
    that failed when no rule allowed the call.

    A constrained argument missing from a call makes the rule not match (an allow
    rule then does not allow, a forbid rule does not forbid) unless every constraint
    on it accepts a missing argument (``absent``, ``absent_or``). Likewise a forbid rule
    matches only values its constraints accept (``within`` refuses a non-string), so
    write least privilege as allow rules and use forbid rules to carve exceptions out
    of them. An ``in_inputs`` constraint checked without the task's inputs fails
    closed: it fails in an allow rule and holds in a forbid rule.

    >>> r = forbid({"amount": between(1000, None)}, reason="large transfers need a person")
    >>> r.spec()
    {'forbid': {'amount': {'between': {'min': 1000}}}, 'reason': 'large transfers need a person'}
    """

    effect: Effect
    #: argument name → constraints, sorted by argument name
    args: ArgRules
    reason: str | None
    _items: tuple[tuple[str, tuple[Constraint, ...]], ...] = field(compare=False)

    def __init__(
        self,
        effect: Effect,
        args: Mapping[str, ConstraintSpec] | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        self._init(effect, {} if args is None else args, reason, "rule")

    def _init(self, effect: object, args: object, reason: object, where: str) -> None:
        if effect not in ("allow", "forbid"):
            raise RemitFormatError(f"{where}: effect must be 'allow' or 'forbid', got {effect!r}")
        if reason is not None and (not isinstance(reason, str) or not reason):
            raise RemitFormatError(
                f"{where}.reason: must be a non-empty string, got {show(reason)}"
            )
        items = _normalize_args("", args, f"{where}.{effect}")
        object.__setattr__(self, "effect", effect)
        object.__setattr__(self, "args", MappingProxyType(items))
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "_items", tuple(items.items()))

    @classmethod
    def from_spec(cls, spec: object, *, where: str = "rule") -> Rule:
        """Read ``{"allow": {...}, "reason": "..."}`` (or ``forbid``); errors name ``where``.

        >>> Rule.from_spec({"allow": {}, "reson": "x"}, where="r[1]")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        remit.errors.RemitFormatError: r[1].reson: unknown key in a rule (expected allow or ...
        """
        if isinstance(spec, Rule):
            return spec
        if not isinstance(spec, Mapping):
            raise RemitFormatError(
                f"{where}: expected a rule table like {{allow = {{...}}}}, got {kind(spec)}"
            )
        table = cast(Mapping[object, object], spec)
        for key in table:
            if key not in _RULE_KEYS:
                raise RemitFormatError(
                    f"{where}.{key}: unknown key in a rule "
                    "(expected allow or forbid, and optionally reason)"
                )
        effects = [k for k in ("allow", "forbid") if k in table]
        if len(effects) != 1:
            raise RemitFormatError(
                f"{where}: a rule has exactly one of allow, forbid "
                f"(got {' and '.join(effects) or 'neither'})"
            )
        rule = object.__new__(cls)
        rule._init(effects[0], table[effects[0]], table.get("reason"), where)
        return rule

    def spec(self) -> dict[str, Any]:
        """The file form read by :meth:`from_spec`."""
        d: dict[str, Any] = {self.effect: _args_spec(self._items)}
        if self.reason is not None:
            d["reason"] = self.reason
        return d

    def miss(self, args: Mapping[str, object], inputs_text: str | None = None) -> str | None:
        """None if this rule matches the call, else why not (naming argument and constraint).

        Raises :class:`~remit.policy._matching.MatchTimeout` (a :class:`TimeoutError`)
        when a ``matches`` runs out of time: the call must then be denied.
        """
        forbid = self.effect == "forbid"
        for arg, cs in self._items:
            reason = arg_failure(arg, cs, args, inputs_text, forbid)
            if reason is not None:
                return reason
        return None

    def _matched(self, args: Mapping[str, object]) -> str:
        return ", ".join(
            f"argument {arg!r}"
            + ("" if arg not in args or arg_path(arg) is not None else f"={show(args[arg])}")
            + " matches "
            + " and ".join(c.describe() for c in cs)
            for arg, cs in self._items
        )

    def _allows_all(self) -> bool:
        return self.effect == "allow" and not self._items

    def __repr__(self) -> str:
        reason = "" if self.reason is None else f", reason={self.reason!r}"
        return f"{self.effect}({dict(self.args)!r}{reason})"


def allow(args: Mapping[str, ConstraintSpec] | None = None, *, reason: str | None = None) -> Rule:
    """A rule allowing calls whose ``args`` satisfy their constraints.

    >>> allow({"path": within("docs/")})
    allow({'path': (within('docs/'),)})
    """
    return Rule("allow", args, reason=reason)


def forbid(args: Mapping[str, ConstraintSpec] | None = None, *, reason: str | None = None) -> Rule:
    """A rule forbidding calls whose ``args`` satisfy their constraints."""
    return Rule("forbid", args, reason=reason)


#: one layer of a grant: ordered rules, the first matching one decides
Layer: TypeAlias = tuple[Rule, ...]
#: what may stand for a rule: a Rule or its table form
RuleSpec: TypeAlias = Rule | Mapping[str, Any]


class Verdict(NamedTuple):
    """What :meth:`ToolGrant.evaluate` found: ``reason`` is None when allowed."""

    reason: str | None
    #: the id (``tool#n``) of the rule that decided, if a rule did
    rule: str | None = None
    #: that rule's own ``reason`` text, if it has one
    note: str | None = None


# --- grants -----------------------------------------------------------------------

#: what happens when a call is denied: the reason goes back to the agent as the tool
#: result ("tell"), the task fails ("stop"), or a person approves or denies ("ask")
Fallback: TypeAlias = Literal["tell", "stop", "ask"]
#: every fallback, from the laxest to the strictest (see :meth:`ToolGrant.narrowed`)
FALLBACKS: tuple[Fallback, ...] = ("ask", "tell", "stop")
_STRICTNESS: dict[str, int] = {f: i for i, f in enumerate(FALLBACKS)}
_RULES_GRANT_KEYS = ("fallback", "rules", "layers")


def _args_imply(
    mine: Mapping[str, tuple[Constraint, ...]], theirs: Iterable[tuple[str, tuple[Constraint, ...]]]
) -> str | None:
    """The first argument of ``theirs`` some constraint of which ``mine`` does not imply."""
    with within_budget():  # implies may match a child's values against our patterns
        for arg, pcs in theirs:
            ccs = mine.get(arg, ())
            for p in pcs:
                if not any(c.implies(p) for c in ccs):
                    return arg
    return None


def _fallback(value: object, where: str) -> Fallback:
    if value not in _STRICTNESS:
        raise RemitFormatError(
            f"{where}: expected one of {', '.join(map(repr, FALLBACKS))}, got {show(value)}"
        )
    return cast(Fallback, value)


#: the verdict of an allowed call to a simple grant (no rule decided)
_ALLOWED = Verdict(None)


def _compile_grant(grant: ToolGrant) -> ArgsTest[Verdict | None]:
    """The compiled :meth:`ToolGrant.quick`: a call whose ``matches`` runs out of time
    is denied (None), whatever the rules say."""
    run = _compile_plan(grant)
    items = (c for _, cs in grant._items for c in cs)  # pyright: ignore[reportPrivateUsage]
    rules = (c for _, rule in grant.rules for _, cs in rule._items for c in cs)  # pyright: ignore[reportPrivateUsage]
    if any(isinstance(x, Matches) for c in (*items, *rules) for x in walk(c)):
        return guarded(run, None)
    return run


def _compile_plan(grant: ToolGrant) -> ArgsTest[Verdict | None]:
    plan = grant._plan  # pyright: ignore[reportPrivateUsage]
    if not plan:
        return args_test(arg_checks(grant._items, False), _ALLOWED, None)  # pyright: ignore[reportPrivateUsage]
    layers = tuple(
        tuple(
            (
                Verdict(None, rid),
                rule.effect == "forbid",
                args_test(arg_checks(rule._items, rule.effect == "forbid"), True, False),  # pyright: ignore[reportPrivateUsage]
            )
            for rid, rule in layer
        )
        for layer in plan
    )

    def evaluate(args: Mapping[str, object], t: str | None) -> Verdict | None:
        # As ToolGrant.evaluate: per layer the first matching rule decides, a forbid
        # denies, a layer without a matching allow denies; allowed names the last layer's.
        decided: Verdict | None = None
        for layer in layers:
            for verdict, is_forbid, hit in layer:
                if hit(args, t):
                    if is_forbid:
                        return None
                    decided = verdict
                    break
            else:
                return None
        return decided

    return evaluate


def _pure_allow(layer: Layer) -> Rule | None:
    """The rule of a layer that is a single allow rule (what a simple grant is)."""
    return layer[0] if len(layer) == 1 and layer[0].effect == "allow" else None


def _layer_within(mine: Layer, theirs: Layer) -> bool:
    """Conservatively, whether every call ``mine`` allows is allowed by ``theirs``."""
    if mine == theirs or theirs[0]._allows_all():  # pyright: ignore[reportPrivateUsage]
        return True
    a, b = _pure_allow(mine), _pure_allow(theirs)
    return a is not None and b is not None and _args_imply(a.args, b._items) is None  # pyright: ignore[reportPrivateUsage]


def _layers_from_spec(rules: object, layers: object, where: str) -> tuple[Layer, ...]:
    if rules is not None and layers is not None:
        raise RemitFormatError(f"{where}: give either rules or layers, not both")
    if rules is not None:
        return (_layer_from_spec(rules, f"{where}.rules"),)
    if not isinstance(layers, list | tuple) or not layers:
        raise RemitFormatError(f"{where}.layers: expected a non-empty list of rule lists")
    return tuple(
        _layer_from_spec(layer, f"{where}.layers[{i}]")
        for i, layer in enumerate(cast(Sequence[object], layers))
    )


def _layer_from_spec(rules: object, where: str) -> Layer:
    if isinstance(rules, str | Mapping) or not isinstance(rules, Sequence):
        raise RemitFormatError(f"{where}: expected a list of rules, got {kind(rules)}")
    items = cast(Sequence[object], rules)
    if not items:
        raise RemitFormatError(
            f"{where}: needs at least one rule (to grant nothing, leave the tool out)"
        )
    return tuple(Rule.from_spec(r, where=f"{where}[{i}]") for i, r in enumerate(items))


def _is_rules_table(table: Mapping[object, object]) -> bool:
    """Whether a tool table is written with rules (else it is the simple shape).

    Backwards compatible: an argument named ``rules`` or ``layers`` with constraint
    specs, or ``fallback`` with a constraint table, still reads as the simple shape.
    An empty ``rules`` or ``layers`` list is read as rules (and refused), never as an
    unconstrained argument that would allow every call.
    """
    rules, layers = table.get("rules"), table.get("layers")
    if (isinstance(rules, list | tuple) and not rules) or (
        isinstance(layers, list | tuple) and not layers
    ):
        return True
    if isinstance(rules, list | tuple) and any(
        isinstance(r, Rule) or (isinstance(r, Mapping) and any(k in r for k in _RULE_KEYS))
        for r in cast(Sequence[object], rules)
    ):
        return True
    return isinstance(layers, list | tuple) and any(
        isinstance(x, list | tuple) for x in cast(Sequence[object], layers)
    )


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
        parsed = () if rules is None and layers is None else _layers_from_spec(rules, layers, where)
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
        fb = None if fallback is None else _fallback(fallback, f"{where}.fallback")
        items = _normalize_args(name, args, where)
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
            if _is_rules_table(table):
                for key in table:
                    if key not in _RULES_GRANT_KEYS:
                        raise RemitFormatError(
                            f"{at}.{key}: unknown key in a tool with rules (expected "
                            "fallback and rules; put argument constraints in a rule)"
                        )
                layers = _layers_from_spec(table.get("rules"), table.get("layers"), at)
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
            d.update(_args_spec(self._items))
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
            run = _compile_grant(self)
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
            if _STRICTNESS[child.fallback] < _STRICTNESS[mine]:
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
            if not any(_layer_within(mine, layer) for mine in layers):
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
        if _STRICTNESS[self.effective_fallback] < _STRICTNESS[parent.effective_fallback]:
            return "fallback"
        if not self.layers and not parent.layers:
            return _args_imply(self.args, parent._items)
        mine = self._layer_view()
        for theirs in parent._layer_view():
            if not any(_layer_within(layer, theirs) for layer in mine):
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
