"""Agents: the roles that handle a task, and the context they work in.

A role is a method; any of them may be plain Python or call a model. Roles that use
tools or models are ``async`` and go through ``ctx``, which sends every effect through
the Gate:

>>> class Adder(Agent):
...     def atomize(self, ctx):
...         return "plan" if len(ctx.inputs["xs"]) > 2 else "execute"
...     def plan(self, ctx):
...         xs = ctx.inputs["xs"]; h = len(xs) // 2
...         return Plan([Subtask("l", "sum left", inputs={"xs": xs[:h]}),
...                      Subtask("r", "sum right", inputs={"xs": xs[h:]})])
...     async def execute(self, ctx):
...         return await ctx.call("calculator", expression="+".join(map(str, ctx.inputs["xs"])))
...     def aggregate(self, ctx, results):
...         return sum(r.value for r in results)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from remit.core.quotes import QuoteCheck
from remit.core.receipts import Receipt
from remit.core.remit import Remit
from remit.core.tasks import ChildResult, Plan, Subtask
from remit.core.voting import Vote, Voted
from remit.models import Completion, Message
from remit.tools import Tool

if TYPE_CHECKING:
    from remit.gate import Gate
    from remit.gate._node import Node

Decision = Literal["execute", "plan"]


class Context:
    """What a role sees of its task, and its only way to act."""

    __slots__ = ("_gate", "_node", "deps", "failed")

    def __init__(
        self,
        gate: Gate,
        node: Node,
        deps: Mapping[str, Any] | None = None,
        failed: ChildResult | None = None,
    ) -> None:
        self._gate = gate
        self._node = node
        #: results of the subtasks this one depends on, by their plan keys
        self.deps: Mapping[str, Any] = deps or {}
        #: for ``replan``: the child that failed
        self.failed = failed

    @property
    def goal(self) -> str:
        return self._node.goal

    @property
    def inputs(self) -> Mapping[str, Any]:
        return self._node.inputs

    @property
    def task_id(self) -> str:
        return self._node.id

    @property
    def remit(self) -> Remit:
        return self._node.remit

    @property
    def depth(self) -> int:
        """How many levels this task is below the root."""
        return self._node.depth_index

    @property
    def output_schema(self) -> Mapping[str, Any] | None:
        return self._node.output_schema

    @property
    def receipts(self) -> Sequence[Receipt]:
        """The receipts of the tool calls behind this task so far: its own, and its
        children's once it aggregates (values to pass on or quote; the key that makes
        them stays in the Gate)."""
        return self._gate.receipts_of(self._node)

    async def call(self, tool: str, /, **args: Any) -> Any:
        """Call a tool through the Gate (checked, budgeted, journaled)."""
        return await self._gate.call_tool(self._node, tool, args)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        max_tokens: int = 512,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> Completion:
        """Call the runtime's model through the Gate (``tools``: function-tool schemas
        the model may answer with calls to; calling them is still ``ctx.call``'s job)."""
        return await self._gate.complete(
            self._node, messages, schema=schema, max_tokens=max_tokens, tools=tools
        )

    async def vote(
        self, messages: Sequence[Message], vote: Vote | None = None, *, max_tokens: int = 512
    ) -> Voted:
        """Ask the model several times and take the answer that first leads every other
        by ``vote.k`` (red-flagged samples do not vote); each sample is a model call
        through the Gate, budgeted and journaled. Raises ``VOTE_UNDECIDED`` when
        ``vote.max_samples`` decide nothing.

        >>> # voted = await ctx.vote([{"role": "user", "content": "7 * 8 = ?"}],
        >>> #                        Vote(k=2, max_samples=8, max_chars=6))
        >>> # voted.value, voted.samples
        """
        return await self._gate.vote(self._node, messages, vote or Vote(), max_tokens=max_tokens)

    async def check_quotes(self, value: Any) -> list[QuoteCheck]:
        """The Gate's verdict on every quote of tool output in ``value`` (a verifier's
        tool): ``QUOTE_OK`` where a receipted call of that tool returned the text,
        ``FABRICATED_QUOTE`` (with where and why) where none did. See
        :mod:`remit.core.quotes` for how a value quotes; the receipts' key stays in the
        Gate.

        >>> bad = [c for c in await ctx.check_quotes(answer) if not c.ok]  # doctest: +SKIP
        """
        return await self._gate.check_quotes(self._node, value)


class Agent:
    """The four roles (plus ``replan``). Override what you need.

    Defaults: ``atomize`` says execute; ``aggregate`` returns the list of child
    values; ``replan`` retries the failed subtask unchanged. ``tools`` are registered
    with the runtime (registering grants nothing: the remit does).
    """

    tools: Sequence[Tool] = ()

    def atomize(self, ctx: Context) -> Decision | Any:
        return "execute"

    def plan(self, ctx: Context) -> Plan | Mapping[str, Any] | Any:
        raise NotImplementedError(f"{type(self).__name__} decided to plan but has no plan()")

    def execute(self, ctx: Context) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no execute()")

    def aggregate(self, ctx: Context, results: list[ChildResult]) -> Any:
        return [r.value if r.ok else {"failed": r.error} for r in results]

    def replan(self, ctx: Context, failed: ChildResult) -> Subtask | Mapping[str, Any] | Any:
        return None
