"""The argument-constraint language a remit uses to limit tool calls (pure, no I/O).

A *constraint* is an immutable test of one argument value. ``check(value)`` returns
``None`` when the value is accepted, else a short human reason; ``implies(other)`` is
True only when every value this constraint accepts is also accepted by ``other`` (and
is conservative: pairs it cannot reason about are compared structurally). A
:class:`ToolGrant` holds, for one tool, a tuple of constraints per argument; all of
them must hold.

>>> c = within("out/")
>>> c.check("out/report.md") is None
True
>>> c.check("out/../etc/passwd")
"'out/../etc/passwd' is not within 'out/' (normalizes to 'etc/passwd')"
>>> within("out/sub/").implies(c), c.implies(within("out/sub/"))
(True, False)

Serialized forms. In remit files each constraint is a table ``{op = arg}``, with the
op's options if any (:meth:`Constraint.to_spec`); :meth:`Constraint.to_dict` gives the
same as ``{"op": op, "arg": arg}`` plus the options. :func:`constraint_from_dict`
reads both.

==============  ===========================  =========================================
op              arg                          accepts
==============  ===========================  =========================================
``equals``      a scalar                     that value (``True`` is not ``1``)
``one_of``      a list of scalars; option    any listed value
                ``case``
``matches``     a regular expression         strings the pattern matches in full, in
                                             time (see below)
``within``      a path prefix                paths inside that directory (see below)
``glob``        an fnmatch pattern           normalized paths/URLs matching it
``url_prefix``  an absolute URL              URLs on that scheme+host under its path
``between``     ``[lo, hi]`` or              numbers with lo <= x <= hi (not bools);
                ``{min = lo, max = hi}``     an omitted bound is open
``max_len``     an integer                   str/bytes/list/tuple/dict/set, len <= n
``in_inputs``   ``true``; option ``case``    strings/numbers appearing literally in the
                                             task's goal and inputs (needs context)
``each``        a constraint table, or a     lists (or tuples) whose every item
                list of them                 satisfies all of them; ``[]`` too
``absent``      ``true``                     only an argument left out, or null
``absent_or``   a constraint table, or a     an argument left out or null, or else
                list of them                 satisfying all of them
==============  ===========================  =========================================

Scalars are str, int, float (finite) and bool.

Options are written next to the op. ``one_of`` and ``in_inputs`` take
``case = "insensitive"`` (``{ one_of = ["Alice", "Bob"], case = "insensitive" }``):
strings then compare with their ASCII letters folded, A-Z as a-z and nothing else, so
no look-alike (the Kelvin sign for a k) gets in. Ignoring case accepts more, so a
child may narrow such a constraint to a case-sensitive one, never the reverse.

>>> one_of("Alice", "Bob", case="insensitive").check("BOB") is None
True
>>> one_of("Alice").implies(one_of("alice", case="insensitive"))
True
>>> one_of("alice", case="insensitive").implies(one_of("Alice", "alice"))
False

A constrained argument that a call leaves out is denied (default deny), unless every
constraint on it accepts that: ``absent`` (it must be left out or null) and
``absent_or`` (it may be; when given, it must satisfy the constraints inside). A
reason names the item that failed::

    [tools.send_email]
    recipients = { each = { one_of = ["a@x.io", "b@x.io"] } }
    cc = { absent_or = { each = [{ in_inputs = true }, { max_len = 100 }] } }
    bcc = { absent = true }

>>> g = ToolGrant("send_email", {"recipients": each(one_of("a@x.io", "b@x.io"))})
>>> print(g.check({"recipients": ["a@x.io", "eve@evil.io"]}))  # doctest: +NORMALIZE_WHITESPACE
send_email: argument 'recipients[1]'='eve@evil.io' violates one_of('a@x.io', 'b@x.io'):
'eve@evil.io' is not one of 'a@x.io', 'b@x.io'
>>> each(one_of("a", "b")).implies(each(one_of("a", "b", "c")))
True

Argument paths. A key may name a place inside an argument: ``"options.mode"`` is the
field ``mode`` of a mapping argument, ``"attachments[].file_id"`` the field ``file_id``
of every item of a list argument (``[]`` may repeat: ``"matrix[][]"``; indexes such as
``[0]`` are refused when the remit is read). In TOML, quote such a key: unquoted,
``options.mode`` is read as nested tables. Every place a path reaches must satisfy the
constraints. A place that is not there (a missing field or argument, or a null on the
way) is denied like a missing argument, unless every constraint accepts that
(``absent``, ``absent_or``); a value on the way of the wrong kind (a string where a
list of mappings should be) is denied whatever the constraints.

>>> g = ToolGrant("send_email", {"attachments[].file_id": one_of("f1", "f2")})
>>> print(g.check({"attachments": [{"file_id": "f1"}, {"name": "x.pdf"}]}))
send_email: argument 'attachments[1].file_id' is missing but constrained by one_of('f1', 'f2')

``each`` and ``[]`` hold when *every* item does, so in a forbid rule they forbid only
the calls whose every item matches: write what is allowed (an allow rule), and no item
outside it slips through.

Policies. Besides constraints per argument (the *simple* shape: one implicit allow
rule), a :class:`ToolGrant` may hold ordered rules (:class:`Rule`), each ``allow`` or
``forbid`` with constraints per argument; the first rule whose constraints all hold
decides, and a call no rule matches is denied. Rule ids are ``<tool>#<n>``. A grant
also names a *fallback* for denied calls: ``"tell"`` (default), ``"stop"`` or ``"ask"``.
A child's grant is the intersection with its parent's (:meth:`ToolGrant.narrowed`):
the parent's rules stay first, as a layer of their own, and keep their ids.

>>> g = ToolGrant("send", rules=[forbid({"to": equals("eve")}, reason="not eve"), allow()])
>>> v = g.evaluate({"to": "eve"})
>>> v.rule, v.note
('send#1', 'not eve')

A regular expression cannot hang a call. ``matches`` runs on the ``regex`` module (the
syntax of :mod:`re`), whose matching can be stopped, and one check of a call may spend
at most :data:`MATCH_TIMEOUT` (50 ms) of CPU time in all its patterns together, however
many arguments and list items there are. A call that cannot be checked in that time
is denied, whatever the rules say (a forbid rule it could not decide does not let it
through to a later allow rule); :meth:`Constraint.check` gives the reason.

>>> ToolGrant("search", {"q": matches(r"(a|aa)+$")}).quick({"q": "a" * 40 + "b"}) is None
True

Paths are compared lexically after :func:`posixpath.normpath`; symlinks are not
resolved (this module does no I/O), so a tool that writes inside a granted directory
must itself refuse to follow symlinks out of it. ``within("out/")`` accepts ``out``
itself and everything below it, rejects ``out/../etc/x`` (it normalizes to ``etc/x``),
``outside/x``, and absolute paths (a relative prefix only accepts relative paths and
vice versa). Values containing a NUL byte, or (for ``within``) a backslash, which
Windows would read as a separator, are rejected.
"""

from __future__ import annotations

from remit.policy._compiled import compile_args
from remit.policy._constraints import (
    ArgRules,
    Between,
    Constraint,
    ConstraintSpec,
    Equals,
    MaxLen,
    Miss,
    OneOf,
    between,
    equals,
    max_len,
    one_of,
)
from remit.policy._fallback import FALLBACKS, Fallback
from remit.policy._grant import ToolGrant
from remit.policy._inputs import InInputs, in_inputs
from remit.policy._locations import Glob, UrlPrefix, Within, glob, url_prefix, within
from remit.policy._matching import MATCH_TIMEOUT, Matches, matches
from remit.policy._parsing import OPS, constraint_from_dict, constraints_from_spec
from remit.policy._rules import Effect, Layer, Rule, RuleSpec, Verdict, allow, forbid
from remit.policy._structure import Absent, AbsentOr, Each, absent, absent_or, each
from remit.policy._values import Scalar

__all__ = [
    "FALLBACKS",
    "MATCH_TIMEOUT",
    "OPS",
    "Absent",
    "AbsentOr",
    "ArgRules",
    "Between",
    "Constraint",
    "ConstraintSpec",
    "Each",
    "Effect",
    "Equals",
    "Fallback",
    "Glob",
    "InInputs",
    "Layer",
    "Matches",
    "MaxLen",
    "Miss",
    "OneOf",
    "Rule",
    "RuleSpec",
    "Scalar",
    "ToolGrant",
    "UrlPrefix",
    "Verdict",
    "Within",
    "absent",
    "absent_or",
    "allow",
    "between",
    "compile_args",
    "constraint_from_dict",
    "constraints_from_spec",
    "each",
    "equals",
    "forbid",
    "glob",
    "in_inputs",
    "matches",
    "max_len",
    "one_of",
    "url_prefix",
    "within",
]
