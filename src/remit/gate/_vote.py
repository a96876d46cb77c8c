"""A voted model step: samples drawn through the Gate until one answer wins.

Every sample is an ordinary model call of the task (``<task>:<role>.<n>``): reserved on
the ledger, journaled, replayed on resume, so a vote a crash interrupted continues from
the samples already drawn and never draws them again. The verdict is a row of its own
(kind ``vote``) after them, which ``remit show`` reads. What makes a sample vote or not
is :mod:`remit.core.voting` (pure); here is only the drawing.

The messages are journaled once a vote: the first sample's row holds them (``{"messages",
"schema", "sample": 0}``), and a sample drawn after it came back names that row instead
(``{"sample": n, "messages_as": "<first sample's step>"}``), a row queued before it, so
on disk whenever it is. A vote of many short samples writes its prompt once, not once a
sample.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from remit.core.ledger import ZERO
from remit.core.voting import Sample, Tally, Vote, Voted
from remit.errors import (
    AuthorityError,
    Cancelled,
    JournalError,
    RemitError,
    VoteUndecided,
)
from remit.gate._node import Node
from remit.gate._state import MISS
from remit.gate._taxonomy import mark
from remit.models import Completion, Message

if TYPE_CHECKING:
    from remit.gate._gate import Gate

__all__ = ["draw_vote"]


def _calls_left(node: Node) -> int | None:
    """Model calls the task's budget and every ancestor's still allow (None: unbounded)."""
    left: float | None = None
    account = node.account
    while account is not None:
        r = account.remaining("calls")
        if r is not None:
            left = r if left is None else min(left, r)
        account = account.parent
    return None if left is None else int(left)


def _flags_sample(err: RemitError) -> bool:
    """Whether a sample's failure is the sample's (it does not vote) rather than the
    task's (the budget, the remit, a cancelled run, the journal: those end the vote)."""
    return not isinstance(err, AuthorityError | Cancelled | JournalError)


async def draw_vote(
    gate: Gate,
    node: Node,
    messages: Sequence[Message],
    vote: Vote,
    *,
    max_tokens: int,
) -> Voted:
    """Sample ``messages`` until ``vote`` decides (see :class:`~remit.core.voting.Vote`)."""
    tally = Tally()
    steps: list[str] = []
    contents: dict[str, str] = {}
    # every sample's row records the same messages and schema: encoded once
    common = gate._encode_input({"messages": list(messages), "schema": vote.schema})  # pyright: ignore[reportPrivateUsage]
    if common is not None and len(common) + 32 > gate.max_output_bytes:
        common = None  # near the limit: each sample's input is cut as any other step's
    anchor: str | None = None  # the step of the first sample, once its row is queued
    while True:
        room = vote.max_samples - tally.samples
        # the fewest samples that could decide, as many at once as the vote allows
        want = min(vote.parallel_or_default, tally.needed(vote.k), room)
        left = _calls_left(node)
        if left is not None:
            want = max(1, min(want, left))  # with none left, the one reservation says so
        first = node.scope_n
        outcomes = await _draw(gate, node, messages, vote, max_tokens, tally.samples, want,
                               common, anchor)  # fmt: skip
        stop: BaseException | None = None
        for i, out in enumerate(outcomes):
            steps.append(gate.current_id(f"{node.id}:{node.scope_role}.{first + i}"))
            if isinstance(out, Completion):
                if not tally.samples and i == 0:
                    # recorded whole (or served from the journal, where a first sample
                    # is always whole): later samples' rows name it for the messages
                    anchor = steps[0]
                sample = vote.judge(out.content, truncated=out.output_tokens >= max_tokens)
                if sample.form is not None:
                    contents.setdefault(sample.form, out.content)
            elif isinstance(out, RemitError) and _flags_sample(out):
                sample = Sample(None, flag=f"error: {out.code}: {out.message[:200]}")
            else:
                stop = stop or out
                continue
            tally.add(sample)
        if stop is not None:
            raise stop
        winner = tally.leader(vote.k)
        if winner is not None or tally.samples >= vote.max_samples:
            break
    return _verdict(gate, node, vote, tally, winner, steps, contents)


async def _draw(
    gate: Gate,
    node: Node,
    messages: Sequence[Message],
    vote: Vote,
    max_tokens: int,
    drawn: int,
    want: int,
    common: str | None,
    anchor: str | None,
) -> list[Completion | BaseException]:
    """Draw ``want`` samples at once (their step ids in order), each outcome or error;
    ``common``: the samples' messages and schema, encoded; ``anchor``: the step whose
    row holds them, once there is one."""
    if want == 1:  # the common case of a decided vote's last sample: no task to spawn
        encoded = _with_sample(common, drawn, anchor)
        try:
            return [await gate.complete(node, messages, schema=vote.schema,
                                        max_tokens=max_tokens, sample=drawn,
                                        encoded_args=encoded)]  # fmt: skip
        except Exception as e:
            return [e]
    batch = [
        gate.complete(node, messages, schema=vote.schema, max_tokens=max_tokens,
                      sample=drawn + i, encoded_args=_with_sample(common, drawn + i, anchor))
        for i in range(want)
    ]  # fmt: skip
    return await asyncio.gather(*batch, return_exceptions=True)


def _with_sample(common: str | None, n: int, anchor: str | None = None) -> str | None:
    """A sample's row input: ``{"messages": ..., "schema": ..., "sample": n}`` as the
    Gate's encoder writes it, from the encoded first two (None: encode it whole); with
    ``anchor``, ``{"sample": n, "messages_as": anchor}``."""
    if anchor is not None:
        return f'{{"sample": {n}, "messages_as": {encode_basestring(anchor)}}}'
    if common is None or not common.endswith("}"):  # not an object: a stand-in for one
        return None
    return f'{common[:-1]}, "sample": {n}}}'


def _verdict(
    gate: Gate,
    node: Node,
    vote: Vote,
    tally: Tally,
    winner: str | None,
    steps: list[str],
    contents: Mapping[str, str],
) -> Voted:
    """Journal the vote's outcome as its own row (served as is on a resume)."""
    step_id = gate._next_effect(node)  # pyright: ignore[reportPrivateUsage]
    args = {"k": vote.k, "max_samples": vote.max_samples, "samples": steps}
    hit = gate._replay(node, step_id, "vote", "vote")  # pyright: ignore[reportPrivateUsage]
    if hit is not MISS:
        return Voted.from_dict(hit)
    started = time.time()
    if winner is None:
        top, lead = tally.lead()
        err = VoteUndecided(
            f"task {node.id}: no answer led by {vote.k} after {tally.samples} samples"
            f" ({len(tally.flags)} red-flagged"
            + (f"; the best led by {lead}" if top is not None else "")
            + ")",
            samples=tally.samples,
            flagged=len(tally.flags),
            lead=lead,
        )
        if vote.on_undecided == "escalate":
            mark(err, "escalate", kind="vote")
        else:
            mark(err, "fail", kind="vote")
        gate._record_error(node, step_id, "vote", "vote", err, ZERO, started, "error", args)  # pyright: ignore[reportPrivateUsage]
        raise err
    voted = Voted(
        tally.values[winner],
        contents[winner],
        tally.samples,
        len(tally.flags),
        dict(tally.counts),
        tally.lead()[1],
        tuple(steps),
        tuple(tally.forms),
    )
    record: dict[str, Any] = {**voted.to_dict(), "flags": list(tally.flags)}
    gate._record_ok(node, step_id, "vote", "vote", args, record, ZERO, started, False)  # pyright: ignore[reportPrivateUsage]
    return voted
