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

from remit.core.remit import _format
from remit.core.remit._budget import Budget
from remit.core.remit._deadline import DeadlineSpec as DeadlineSpec
from remit.core.remit._deadline import resolve_deadline
from remit.core.remit._decision import Decision, DecisionCode
from remit.core.remit._fields import ToolSpec as ToolSpec
from remit.core.remit._file import RemitFile
from remit.core.remit._remit import Remit

__all__ = ["Budget", "Decision", "DecisionCode", "Remit", "RemitFile", "resolve_deadline"]

#: its name here from before this module was a package (tests read it)
_iso = _format.iso
