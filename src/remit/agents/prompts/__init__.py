"""Role prompts and their output schemas, written for very small models (pure: no I/O).

Each role of a model-driven agent (atomizer, planner, executor, verifier, aggregator)
is a :class:`RoleSpec`: a system prompt, few-shot turns, a user template, a JSON schema
(the model is held to it by a grammar where the adapter can, and the Gate checks it
always) and a ``max_tokens`` that covers the schema's largest answer.

What small models taught us, and how the specs answer it:

- asked "is this atomic? yes/no", a 135M model says yes to everything; asked for an
  estimated number of tool calls from an ``enum``, with worked examples as chat turns,
  it separates one-file goals from many-file goals, so the atomizer asks for a count
  and code applies a threshold (:data:`PLAN_FROM_STEPS`);
- ``minimum``/``maximum`` are ignored by llama.cpp's schema-to-grammar converter:
  every choice is an ``enum``;
- an unbounded array or string lets a small model loop until ``max_tokens``: every
  array has ``maxItems``, every string ``maxLength`` or an ``enum``
  (:func:`unbounded`), and ``max_tokens`` is :func:`token_bound` of the schema;
- a zero-shot planner makes steps depend on themselves, on later steps, in cycles, and
  repeats steps: the planner prompt carries a worked example, and :func:`check_plan`
  repairs what a plan gets wrong and says what it changed.

The package, one idea a module (import from here, the modules are private):

- ``_bounds``: whether a schema is bounded, and its token bound (:func:`unbounded`,
  :func:`token_bound`);
- ``_spec``: what a role is (:class:`RoleSpec`, :class:`RoleCall`,
  :func:`retry_messages`);
- ``_clip``: text cut to its room (:func:`clip`, :func:`tidy`);
- ``_roles``: the five roles' prompts, shots and schemas (:data:`ROLES`);
- ``_checks``: the checks on what the model says (:func:`decide`, :func:`grounded`,
  :func:`check_plan`).

>>> call = ROLES["atomizer"].call(goal="Read a.md and b.md, then write out/c.md")
>>> call.messages[-1]["content"], call.max_tokens >= token_bound(call.schema)
('Goal: Read a.md and b.md, then write out/c.md', True)
>>> decide({"steps": 3})
'plan'
"""

from __future__ import annotations

from remit.agents.prompts._bounds import token_bound, unbounded
from remit.agents.prompts._checks import (
    PLAN_FROM_STEPS,
    PlanCheck,
    Step,
    check_plan,
    decide,
    grounded,
    sentences,
    supporting,
    supports,
    within_remit,
)
from remit.agents.prompts._clip import MAX_TEXT_CHARS, clip, tidy
from remit.agents.prompts._roles import (
    MAX_STEPS,
    OVERVIEW_CHARS,
    ROLES,
    STEP_TOOLS,
    SUMMARY_CHARS,
)
from remit.agents.prompts._spec import RoleCall, RoleSpec, retry_messages

__all__ = [
    "MAX_STEPS",
    "MAX_TEXT_CHARS",
    "OVERVIEW_CHARS",
    "PLAN_FROM_STEPS",
    "ROLES",
    "STEP_TOOLS",
    "SUMMARY_CHARS",
    "PlanCheck",
    "RoleCall",
    "RoleSpec",
    "Step",
    "check_plan",
    "clip",
    "decide",
    "grounded",
    "retry_messages",
    "sentences",
    "supporting",
    "supports",
    "tidy",
    "token_bound",
    "unbounded",
    "within_remit",
]
