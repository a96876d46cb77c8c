"""Fault plans: declarative, seeded failures to inject on purpose. Pure.

A plan lists faults; each names a type, where it strikes and how often. The Gate
applies them (``remit run --faults PLAN.toml``) and journals every injected fault as
such, so ``remit show`` tells an injected fault from a real one.

.. code-block:: toml

    seed = 7

    [[fault]]
    type = "tool_error"     # see FAULT_TYPES
    tool = "fetch_*"        # where: a tool, a model, a task (its id or goal), a role: globs
    after = 1               # let the first matching call through (journal: records)
    times = 2               # then inject twice (default 1; 0 = every time)
    rate = 1.0              # chance per matching call, drawn from the seed

Types, by the level they strike at (a step, an agent, the system):

- step: ``tool_error``, ``timeout``, ``hang``, ``malformed_output``,
  ``oversized_output``, ``wrong_schema_output``, ``model_refusal``, ``wrong_question``;
- agent: ``message_lost``, ``message_duplicated``, ``message_reordered`` (a child's
  result on its way to its parent), ``child_never_returns``;
- system: ``journal_write_failure``, ``process_kill``.

>>> plan = FaultPlan.from_dict({"seed": 1, "fault": [{"type": "timeout", "tool": "fetch*"}]})
>>> plan.faults[0].matches("tool", "fetch_api", "t.0/1", "execute")
True
>>> plan.faults[0].matches("tool", "read_file", "t.0/1", "execute")
False
"""

from __future__ import annotations

import fnmatch
import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from remit.errors import InvalidInput

__all__ = ["FAULT_LEVELS", "FAULT_TYPES", "Fault", "FaultPlan", "FaultPlanError"]

#: every fault type, with the level it strikes at
FAULT_LEVELS: Final[Mapping[str, str]] = {
    "tool_error": "step",
    "timeout": "step",
    "hang": "step",
    "malformed_output": "step",
    "oversized_output": "step",
    "wrong_schema_output": "step",
    "model_refusal": "step",
    "wrong_question": "step",
    "message_lost": "agent",
    "message_duplicated": "agent",
    "message_reordered": "agent",
    "child_never_returns": "agent",
    "journal_write_failure": "system",
    "process_kill": "system",
}
FAULT_TYPES: Final = tuple(FAULT_LEVELS)

# where each type strikes: a tool or model call, a task's role, a child's result on
# its way to the parent, a journal write
_POINTS: Final[Mapping[str, frozenset[str]]] = {
    "tool_error": frozenset({"tool"}),
    "timeout": frozenset({"tool", "model"}),
    "hang": frozenset({"tool", "model"}),
    "malformed_output": frozenset({"tool", "model"}),
    "oversized_output": frozenset({"tool", "model"}),
    "wrong_schema_output": frozenset({"model"}),
    "model_refusal": frozenset({"model"}),
    "wrong_question": frozenset({"model"}),
    "message_lost": frozenset({"message"}),
    "message_duplicated": frozenset({"message"}),
    "message_reordered": frozenset({"message"}),
    "child_never_returns": frozenset({"role"}),
    "journal_write_failure": frozenset({"journal"}),
    "process_kill": frozenset({"tool", "model", "role"}),
}

_FIELDS: Final = frozenset({"type", "tool", "model", "task", "role", "after", "times", "rate"})


class FaultPlanError(InvalidInput):
    """A fault plan that cannot be applied: an unknown type or field, a bad number."""

    code = "FAULT_PLAN_INVALID"


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault of a plan; ``index`` is its position in the plan (journaled with it)."""

    type: str
    index: int = 0
    tool: str | None = None
    model: str | None = None
    task: str = "*"
    role: str = "*"
    after: int = 0
    times: int = 1
    rate: float = 1.0

    @property
    def level(self) -> str:
        """``step``, ``agent`` or ``system``."""
        return FAULT_LEVELS[self.type]

    def matches(self, point: str, name: str, task_id: str, role: str, goal: str = "") -> bool:
        """Whether this fault may strike at ``point`` (``tool``, ``model``, ``role``,
        ``message``, ``journal``) for ``name`` in task ``task_id`` (whose goal is
        ``goal``: ``task`` matches either), role ``role``."""
        if point not in _POINTS[self.type]:
            return False
        # naming a tool (or a model) means: at calls to it, nowhere else
        if self.tool is not None and self.model is None and point != "tool":
            return False
        if self.model is not None and self.tool is None and point != "model":
            return False
        pattern = self.tool if point == "tool" else self.model if point == "model" else None
        if pattern is not None and not fnmatch.fnmatchcase(name, pattern):
            return False
        if self.role != "*" and not fnmatch.fnmatchcase(role, self.role):
            return False
        task = self.task
        return task == "*" or fnmatch.fnmatchcase(task_id, task) or fnmatch.fnmatchcase(goal, task)

    def draws(self, seed: int, key: str) -> bool:
        """The seeded coin for this fault at ``key`` (a step id): the same plan and seed
        strike the same steps in every run."""
        if self.rate >= 1.0:
            return True
        digest = hashlib.blake2b(f"{seed}\x00{self.index}\x00{key}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big") / 2**64 < self.rate

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for name in ("tool", "model"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name, default in (
            ("task", "*"),
            ("role", "*"),
            ("after", 0),
            ("times", 1),
            ("rate", 1.0),
        ):
            if getattr(self, name) != default:
                out[name] = getattr(self, name)
        return out


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """A seeded list of :class:`Fault` (see the module docstring)."""

    faults: tuple[Fault, ...] = ()
    seed: int = 0
    source: str = field(default="", compare=False)

    @classmethod
    def from_toml(cls, text: str, *, where: str = "fault plan") -> FaultPlan:
        """Read a plan from TOML text; ``where`` names it in errors (a file path)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise FaultPlanError(f"{where}: not valid TOML: {e}") from None
        return cls.from_dict(data, where=where)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "fault plan") -> FaultPlan:
        """Read a plan from its table form: ``seed`` and a list ``fault``."""
        unknown = set(data) - {"seed", "fault"}
        if unknown:
            raise FaultPlanError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; a plan has 'seed' "
                "and [[fault]] tables"
            )
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise FaultPlanError(f"{where}: seed must be an integer, got {seed!r}")
        raw = data.get("fault", [])
        if not isinstance(raw, Sequence) or isinstance(raw, str):
            raise FaultPlanError(f"{where}: 'fault' must be a list of [[fault]] tables")
        faults = tuple(_fault(f, i, f"{where}: fault {i + 1}") for i, f in enumerate(raw))  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
        return cls(faults, seed, where)

    def at(self, point: str, name: str, task_id: str, role: str, goal: str = "") -> list[Fault]:
        """The faults that may strike at this point (in plan order)."""
        return [f for f in self.faults if f.matches(point, name, task_id, role, goal)]


def _fault(raw: Any, index: int, where: str) -> Fault:
    if not isinstance(raw, Mapping):
        raise FaultPlanError(f"{where}: must be a table, got {raw!r}")
    spec: Mapping[str, Any] = raw  # pyright: ignore[reportUnknownVariableType]
    unknown = set(spec) - _FIELDS
    if unknown:
        raise FaultPlanError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_FIELDS))}"
        )
    kind = spec.get("type")
    if kind not in FAULT_LEVELS:
        raise FaultPlanError(
            f"{where}: type {kind!r} is not a fault type; one of: {', '.join(FAULT_TYPES)}"
        )
    for name in ("tool", "model", "task", "role"):
        if name in spec and (not isinstance(spec[name], str) or not spec[name]):
            raise FaultPlanError(f"{where}: {name} must be a non-empty string (a glob)")
    for name in ("after", "times"):
        value = spec.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FaultPlanError(f"{where}: {name} must be an integer >= 0, got {value!r}")
    rate = spec.get("rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise FaultPlanError(f"{where}: rate must be a number in (0, 1], got {rate!r}")
    return Fault(
        type=str(kind),
        index=index,
        tool=spec.get("tool"),
        model=spec.get("model"),
        task=spec.get("task", "*"),
        role=spec.get("role", "*"),
        after=int(spec.get("after", 0)),
        times=int(spec.get("times", 1)),
        rate=float(rate),
    )
