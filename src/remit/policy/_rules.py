"""The ordered allow/forbid rules a policy is written in and a denial is explained by,
and the verdict they give: what one rule means (when it matches, what its miss says).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, TypeAlias, cast

from remit.errors import RemitFormatError
from remit.policy._constraints import ArgRules, Constraint, ConstraintSpec
from remit.policy._parsing import constraints_from_spec
from remit.policy._structure import arg_failure, arg_path
from remit.policy._values import kind, show

#: what a rule does when it matches
Effect: TypeAlias = Literal["allow", "forbid"]


_RULE_KEYS = ("allow", "forbid", "reason")


def _dedupe(cs: Iterable[Constraint]) -> tuple[Constraint, ...]:
    out: list[Constraint] = []
    for c in cs:
        if c not in out:
            out.append(c)
    return tuple(out)


def normalize_args(name: str, args: object, where: str) -> dict[str, tuple[Constraint, ...]]:
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


def args_spec(items: Iterable[tuple[str, tuple[Constraint, ...]]]) -> dict[str, Any]:
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
        items = normalize_args("", args, f"{where}.{effect}")
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
        d: dict[str, Any] = {self.effect: args_spec(self._items)}
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


def layers_from_spec(rules: object, layers: object, where: str) -> tuple[Layer, ...]:
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


def is_rules_table(table: Mapping[object, object]) -> bool:
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
