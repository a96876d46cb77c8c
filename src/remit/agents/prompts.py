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

>>> call = ROLES["atomizer"].call(goal="Read a.md and b.md, then write out/c.md")
>>> call.messages[-1]["content"], call.max_tokens >= token_bound(call.schema)
('Goal: Read a.md and b.md, then write out/c.md', True)
>>> decide({"steps": 3})
'plan'
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remit.core.remit import Remit

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
    "tidy",
    "token_bound",
    "unbounded",
]

#: the most steps a plan may have (the planner's array bound)
MAX_STEPS = 6
#: an atomizer estimate of at least this many tool calls means: plan
PLAN_FROM_STEPS = 2
#: how much of a file the executor and verifier see (a 135M model reads ~80 tokens/s)
MAX_TEXT_CHARS = 700
#: the tools a plan step may name, and what each does for a step
STEP_TOOLS: Mapping[str, str] = {
    "read_file": "reads one file, which is then summarized",
    "write_file": "writes the report, from the results of the steps it comes after",
}

Message = dict[str, str]


# --- schema bounds --------------------------------------------------------------------


def unbounded(schema: Any, where: str = "$") -> list[str]:
    """Where ``schema`` lets an answer grow without limit (empty: it is bounded).

    Every array needs ``maxItems``, every string ``maxLength`` or an ``enum``, every
    number an ``enum``, every object explicit ``properties`` and no extra ones.

    >>> unbounded({"type": "array", "items": {"type": "string"}})
    ['$: array without maxItems', '$[]: string without maxLength or enum']
    """
    if not isinstance(schema, Mapping):
        return [f"{where}: not a schema object"]
    s: Mapping[str, Any] = schema  # pyright: ignore[reportUnknownVariableType]
    if "enum" in s or "const" in s:
        return []
    kind = s.get("type")
    problems: list[str] = []
    if kind == "object":
        props = s.get("properties")
        if not isinstance(props, Mapping) or s.get("additionalProperties") is not False:
            problems.append(f"{where}: object without closed properties")
        for name, sub in dict(props or {}).items():
            problems += unbounded(sub, f"{where}.{name}")
    elif kind == "array":
        if not isinstance(s.get("maxItems"), int):
            problems.append(f"{where}: array without maxItems")
        problems += unbounded(s.get("items"), f"{where}[]")
    elif kind == "string":
        if not isinstance(s.get("maxLength"), int):
            problems.append(f"{where}: string without maxLength or enum")
    elif kind == "boolean" or kind == "null":
        pass
    else:
        problems.append(f"{where}: {kind or 'untyped'} value without enum")
    return problems


def token_bound(schema: Mapping[str, Any]) -> int:
    """The most tokens an answer of ``schema``'s shape can take.

    Counted in characters of the JSON as llama.cpp's grammar lets a model write it (at
    most one space around each separator), one token per character at most: true for
    ASCII text with any BPE tokenizer. ``ValueError`` if the schema is unbounded.

    >>> token_bound({"type": "object", "properties": {"n": {"enum": [1, 2]}},
    ...              "required": ["n"], "additionalProperties": False})
    12
    """
    problems = unbounded(schema)
    if problems:
        raise ValueError("schema is unbounded: " + "; ".join(problems))
    return _chars(schema)


def _chars(s: Mapping[str, Any]) -> int:
    if "enum" in s:
        return max(len(json.dumps(v)) for v in s["enum"]) + 1
    if "const" in s:
        return len(json.dumps(s["const"])) + 1
    kind = s.get("type")
    if kind == "object":
        props: Mapping[str, Any] = s["properties"]
        # '{' sp  "key" sp ':' sp value  (',' sp ...)  '}' sp
        inner = sum(len(json.dumps(k)) + 3 + _chars(v) for k, v in props.items())
        return 4 + inner + 2 * max(0, len(props) - 1)
    if kind == "array":
        n: int = s["maxItems"]
        return 4 + n * (_chars(s["items"]) + 2)
    if kind == "string":
        return int(s["maxLength"]) + 3
    return 6  # true / false / null and a space


def _obj(**props: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def _text(n: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": n}


# --- the contract ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoleCall:
    """One model call a role makes: what ``ctx.complete`` takes."""

    role: str
    messages: tuple[Message, ...]
    schema: Mapping[str, Any]
    max_tokens: int


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """A role's prompt, schema and token bound.

    ``messages(**fields)`` fills the user template (after the system prompt and the
    few-shot turns); ``schema(**fields)`` is the answer's shape (the planner's depends on
    the files it may name); ``max_tokens(**fields)`` covers that shape's largest answer;
    ``example`` is a field set every role can be called with (benchmarks, tests).

    >>> spec = ROLES["verifier"]
    >>> spec.messages(**spec.example)[0]["role"], sorted(spec.schema()["properties"])
    ('system', ['quote'])
    """

    name: str
    system: str
    user: str
    shots: tuple[tuple[str, str], ...] = ()
    example: Mapping[str, Any] = field(default_factory=lambda: {})
    #: the schema for some fields (None: a fixed schema, ``fixed``)
    schema_for: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    fixed: Mapping[str, Any] = field(default_factory=lambda: {})
    #: fields -> the values the user template sees (clipping, joining lists)
    render: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def schema(self, **fields: Any) -> dict[str, Any]:
        if self.schema_for is None:
            return dict(self.fixed)
        return self.schema_for({**self.example, **fields})

    def max_tokens(self, **fields: Any) -> int:
        return token_bound(self.schema(**fields))

    def messages(self, **fields: Any) -> list[Message]:
        data = {**self.example, **fields}
        values = self.render(data) if self.render is not None else data
        out: list[Message] = [{"role": "system", "content": self.system}]
        for user, assistant in self.shots:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        out.append({"role": "user", "content": self.user.format(**values)})
        return out

    def call(self, **fields: Any) -> RoleCall:
        """Everything ``ctx.complete`` needs, for these fields."""
        return RoleCall(
            self.name,
            tuple(self.messages(**fields)),
            self.schema(**fields),
            self.max_tokens(**fields),
        )


def retry_messages(call: RoleCall, error: str) -> tuple[Message, ...]:
    """The messages of a retry after a rejected answer: the reason, and the ask again.

    (Sending the same messages again would get the same answer from a greedy model.)
    """
    why = error if len(error) <= 200 else error[:199] + "…"
    return (
        *call.messages,
        {
            "role": "user",
            "content": (
                f"Your answer was rejected: {why}\nAnswer again, shorter, as JSON of the "
                "required shape only."
            ),
        },
    )


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """The start of ``text``, at most ``limit`` characters, cut at a line end if one is near.

    >>> clip("one\\ntwo\\nthree", 9)
    'one\\ntwo\\n…'
    """
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = head.rfind("\n")
    return (head[: cut + 1] if cut > limit // 2 else head) + "…"


def tidy(text: str, limit: int) -> str:
    """A model's answer as a reader should see it: stripped, and, if the answer ran into
    its schema's ``maxLength`` (the decoder stops there, often inside a word), cut back
    to its first line or its last whole word and marked as cut.

    >>> tidy("It lets you manage tasks with an authority that can only be *narr", 64)
    'It lets you manage tasks with an authority that can only be…'
    >>> tidy("  A whole sentence.  ", 64)
    'A whole sentence.'
    """
    text = text.strip()
    if len(text) < limit:
        return text
    head = text[:limit]
    # one paragraph was asked for: the lines after the first of an answer that ran
    # out of room are the model wandering off
    line = head.find("\n")
    if line >= limit // 4:
        head = head[:line]
    else:
        word = head.rfind(" ")
        if word > limit // 2:
            head = head[:word]
    # markup or punctuation left dangling by the cut ("*narr" leaves "*", "a, b" ",")
    return head.rstrip(" *_`([{,;:-…") + "…"


#: the longest summary of a file, and the longest overview, the roles may give
SUMMARY_CHARS = 160
OVERVIEW_CHARS = 240

# --- the roles ------------------------------------------------------------------------

_STEPS_ENUM = [1, 2, 3, 4, 5, 6, 8]


def _atomizer_schema(_: Mapping[str, Any]) -> dict[str, Any]:
    return _obj(steps={"enum": _STEPS_ENUM})


def decide(answer: Mapping[str, Any]) -> str:
    """The atomizer's decision from its answer: ``"plan"`` for an estimate of
    :data:`PLAN_FROM_STEPS` tool calls or more, else ``"execute"``."""
    steps = answer.get("steps", 1)
    return "plan" if isinstance(steps, int) and steps >= PLAN_FROM_STEPS else "execute"


def _paths(fields: Mapping[str, Any]) -> list[str]:
    paths = [str(p) for p in fields.get("files", ())]
    report = fields.get("report")
    if report and report not in paths:
        paths.append(str(report))
    return paths or ["."]


def _planner_schema(fields: Mapping[str, Any]) -> dict[str, Any]:
    n = MAX_STEPS
    tools = list(fields.get("tools") or STEP_TOOLS)
    step = _obj(
        tool={"enum": tools},
        path={"enum": _paths(fields)},
        # step numbers; a step may come only after earlier ones (check_plan enforces it)
        after={"type": "array", "maxItems": n - 1, "items": {"enum": list(range(1, n + 1))}},
        do=_text(40),
    )
    return _obj(steps={"type": "array", "minItems": 1, "maxItems": n, "items": step})


def _planner_render(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {"goal": fields["goal"], "files": ", ".join(_paths(fields))}


_PLAN_EXAMPLE = json.dumps(
    {
        "steps": [
            {"tool": "read_file", "path": "a.md", "after": [], "do": "summarize a.md"},
            {"tool": "read_file", "path": "b.txt", "after": [], "do": "summarize b.txt"},
            {"tool": "read_file", "path": "c.md", "after": [], "do": "summarize c.md"},
            {
                "tool": "write_file",
                "path": "out/summary.md",
                "after": [1, 2, 3],
                "do": "write the summary",
            },
        ]
    }
)


def _lines(fields: Mapping[str, Any]) -> dict[str, Any]:
    results: Sequence[str] = fields.get("results") or ("(nothing was read)",)
    return {"goal": fields["goal"], "results": "\n".join(f"- {r}" for r in results)}


def _file(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {**fields, "text": clip(str(fields.get("text", "")))}


_READER = "You read one file and answer one question about it."
_FILE = "File: {path}\n---\n{text}\n---\n"
_SAMPLE_TEXT = (
    "# remit\n\nremit is a Python runtime for recursive multi-agent work. You state a goal "
    "and grant an authority; the runtime breaks the goal into a tree of tasks.\n"
)

ROLES: Mapping[str, RoleSpec] = {
    "atomizer": RoleSpec(
        name="atomizer",
        system="How many tool calls does the goal need? One call reads or writes one file.",
        shots=(
            ("Goal: Read a.txt", '{"steps": 1}'),
            ("Goal: Read a.txt and b.txt, then write out/c.md", '{"steps": 3}'),
            ("Goal: Read the docs and write a summary to out/s.md", '{"steps": 4}'),
            ("Goal: Write hi to out/h.txt", '{"steps": 1}'),
        ),
        user="Goal: {goal}",
        example={"goal": "Read the notes in notes/ and write a digest to out/digest.md"},
        schema_for=_atomizer_schema,
    ),
    "planner": RoleSpec(
        name="planner",
        system=(
            "You are a planner. Split the goal into steps. Each step calls one tool on one "
            "file: read_file reads a file; write_file writes the report from the steps it "
            'comes after. "after" lists the numbers of earlier steps. Use only the files '
            "listed."
        ),
        shots=(
            # the example skips what is not a document: the model learns to choose
            (
                "Goal: Read the documents in notes/ and write a summary to out/summary.md\n"
                "Files: a.md, b.txt, c.md, run.sh, data.db, out/summary.md",
                _PLAN_EXAMPLE,
            ),
        ),
        user="Goal: {goal}\nFiles: {files}",
        example={
            "goal": "Read the notes in notes/ and write a digest to out/digest.md",
            "files": ["notes/intro.md", "notes/plan.md", "notes/secrets.env"],
            "report": "out/digest.md",
            "tools": list(STEP_TOOLS),
        },
        schema_for=_planner_schema,
        render=_planner_render,
    ),
    "executor": RoleSpec(
        name="executor",
        system=_READER,
        user=_FILE + "Summarize the file in one sentence.",
        example={"path": "README.md", "text": _SAMPLE_TEXT},
        fixed=_obj(summary=_text(SUMMARY_CHARS)),
        render=_file,
    ),
    "verifier": RoleSpec(
        name="verifier",
        system=_READER,
        # the same system prompt and file block as the executor's: a verifier call that
        # follows the executor's on the same file reuses the model's cached prompt
        user=_FILE + "Quote the sentence of the file that best matches this summary: {summary}",
        example={
            "path": "README.md",
            "text": _SAMPLE_TEXT,
            "summary": "remit is a runtime for recursive multi-agent work.",
        },
        fixed=_obj(quote=_text(60)),
        render=_file,
    ),
    "aggregator": RoleSpec(
        name="aggregator",
        system="You combine short summaries of files into an overview.",
        user="Goal: {goal}\nSummaries:\n{results}\nWrite one or two sentences that sum them up.",
        example={
            "goal": "Read the notes in notes/ and write a digest to out/digest.md",
            "results": [
                "notes/intro.md: what the project is for",
                "notes/plan.md: the milestones for the next release",
            ],
        },
        fixed=_obj(overview=_text(OVERVIEW_CHARS)),
        render=_lines,
    ),
}


# --- checking what the model said ------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", text.lower())


def grounded(quote: str, text: str, *, run: int = 4) -> bool:
    """Whether ``quote`` holds ``run`` consecutive words of ``text`` (the whole quote if it
    is shorter, and at least two words), ignoring case, spacing and punctuation.

    A small model asked to quote the file often quotes its own summary instead; that
    passes only where the summary itself repeats the file.

    >>> grounded("It is a Python runtime for agents.", "`remit` is a *Python runtime* for ...")
    True
    >>> grounded("remit", "remit is a python runtime"), grounded("a new tool", "an old tool")
    (False, False)
    """
    q, t = _words(quote), _words(text)
    if len(q) < 2:
        return False
    n = min(run, len(q))
    body = " " + " ".join(t) + " "
    return any(" " + " ".join(q[i : i + n]) + " " in body for i in range(len(q) - n + 1))


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a checked plan: a tool call on one path, after other steps."""

    id: str
    tool: str
    path: str
    after: tuple[str, ...] = ()
    do: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tool": self.tool,
            "path": self.path,
            "after": list(self.after),
            "do": self.do,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        return cls(
            str(data["id"]),
            str(data["tool"]),
            str(data["path"]),
            tuple(str(a) for a in data.get("after", ())),
            str(data.get("do", "")),
        )


@dataclass(frozen=True, slots=True)
class PlanCheck:
    """A plan after :func:`check_plan`: the steps to run, what was repaired, and which
    steps the remit will deny (they are kept: the Gate denies and journals them)."""

    steps: tuple[Step, ...]
    repairs: tuple[str, ...] = ()
    #: step id -> why the remit does not allow its call
    outside: Mapping[str, str] = field(default_factory=lambda: {})

    @property
    def usable(self) -> bool:
        """At least one read the remit allows: otherwise the plan would find nothing."""
        return any(s.tool != "write_file" and s.id not in self.outside for s in self.steps)

    def notes_for(self, step_id: str) -> list[str]:
        """The repairs that name this step."""
        return [r for r in self.repairs if re.search(rf"\b{re.escape(step_id)}\b", r)]


def _would_cycle(deps: Mapping[str, list[str]], frm: str, to: str) -> bool:
    """Whether adding ``frm`` after ``to`` closes a cycle (``to`` already reaches ``frm``)."""
    stack, seen = [to], set[str]()
    while stack:
        k = stack.pop()
        if k == frm:
            return True
        if k not in seen:
            seen.add(k)
            stack.extend(deps.get(k, ()))
    return False


def check_plan(
    raw: Any,
    *,
    tools: Collection[str] = tuple(STEP_TOOLS),
    remit: Remit | None = None,
    report: str | None = None,
    max_steps: int = MAX_STEPS,
) -> PlanCheck:
    """Validate a planner's answer and repair it into a DAG of known-tool steps.

    ``raw`` is ``{"steps": [{"tool", "path", "after": [step numbers], "do"}]}``. In
    order, and each repair is reported in words:

    1. a step that is not an object, names a tool not in ``tools`` or has no path is
       dropped; so is a repeat of an earlier step (same tool and path), whose
       dependents then come after the first one; steps past ``max_steps`` are dropped;
    2. ``after`` entries that name the step itself, no step, or a dropped step are
       removed; a ``write_file`` step that comes after no read comes after every read
       (it writes the results of the steps it comes after);
    3. an ``after`` entry that would close a cycle is removed (so the plan is a DAG);
    4. with ``report``, a plan without a ``write_file`` step to it gets one, after
       every read.

    With ``remit``, each step's call is checked against it: a step outside it is kept
    (the Gate is the authority: it denies the call and journals why) and listed in
    ``outside``.

    >>> c = check_plan({"steps": [
    ...     {"tool": "read_file", "path": "a.md", "after": [1], "do": "read a"},
    ...     {"tool": "shell", "path": "a.md", "after": [], "do": "rm"}]})
    >>> [(s.id, s.tool, s.after) for s in c.steps]
    [('s1', 'read_file', ())]
    >>> c.repairs
    ("s2 dropped: unknown tool 'shell'", 's1: dropped "after s1" (a step cannot come after itself)')
    """
    repairs: list[str] = []
    items: list[Any] = []
    if isinstance(raw, Mapping) and isinstance(raw.get("steps"), list):  # pyright: ignore[reportUnknownMemberType]
        items = list(raw["steps"])  # pyright: ignore[reportUnknownArgumentType]
    else:
        repairs.append("the answer has no list of steps")
    # 1. well-formed, known, distinct steps; number n (1-based) -> kept id
    kept: list[dict[str, Any]] = []
    alias: dict[int, str] = {}
    first: dict[tuple[str, str], str] = {}
    for n, item in enumerate(items, 1):
        sid = f"s{n}"
        if n > max_steps:
            repairs.append(f"{sid} dropped: more than {max_steps} steps")
            continue
        if not isinstance(item, Mapping):
            repairs.append(f"{sid} dropped: not an object")
            continue
        it: Mapping[str, Any] = item  # pyright: ignore[reportUnknownVariableType]
        tool, path = it.get("tool"), it.get("path")
        if not isinstance(tool, str) or tool not in tools:
            repairs.append(f"{sid} dropped: unknown tool {tool!r}")
            continue
        if not isinstance(path, str) or not path.strip():
            repairs.append(f"{sid} dropped: no path")
            continue
        same = first.get((tool, path))
        if same is not None:
            alias[n] = same
            repairs.append(f"{sid} dropped: repeats {same} ({tool} {path})")
            continue
        first[(tool, path)] = alias[n] = sid
        after = it.get("after")
        kept.append(
            {
                "id": sid,
                "n": n,
                "tool": tool,
                "path": path.strip(),
                "after": list(after) if isinstance(after, list) else [],  # pyright: ignore[reportUnknownArgumentType]
                "do": str(it.get("do", ""))[:80],
            }
        )
    ids = {k["id"] for k in kept}
    reads = [k["id"] for k in kept if k["tool"] != "write_file"]
    # 2. dependencies that name real, other steps
    for k in kept:
        deps: list[str] = []
        for a in k["after"]:
            target = alias.get(a) if isinstance(a, int) and not isinstance(a, bool) else None
            if target == k["id"]:
                repairs.append(f'{k["id"]}: dropped "after s{a}" (a step cannot come after itself)')
            elif target is None or target not in ids:
                repairs.append(f'{k["id"]}: dropped "after {a}" (no such step)')
            elif target not in deps:
                deps.append(target)
        if k["tool"] == "write_file" and reads and not any(d in reads for d in deps):
            deps = [*deps, *(r for r in reads if r not in deps)]
            repairs.append(
                f"{k['id']}: now comes after {', '.join(reads)} (a write writes "
                "the results of the steps it comes after)"
            )
        k["after"] = deps
    # 3. a DAG: add edges one by one, skipping any that would close a cycle; a write
    # after a read first (the one order that carries results), then in plan order
    graph: dict[str, list[str]] = {k["id"]: [] for k in kept}
    kind = {k["id"]: k["tool"] for k in kept}
    edges = [(k["id"], d) for k in kept for d in k["after"]]
    edges.sort(key=lambda e: not (kind[e[0]] == "write_file" and kind[e[1]] != "write_file"))
    for frm, to in edges:
        if _would_cycle(graph, frm, to):
            repairs.append(f'{frm}: dropped "after {to}" (it would close a cycle)')
        else:
            graph[frm].append(to)
    steps = [Step(k["id"], k["tool"], k["path"], tuple(graph[k["id"]]), k["do"]) for k in kept]
    # 4. the report is written
    if report and not any(s.tool == "write_file" and s.path == report for s in steps):
        sid = f"s{max([k['n'] for k in kept] + [len(items), 0]) + 1}"
        steps.append(Step(sid, "write_file", report, tuple(reads), "write the report"))
        repairs.append(f"{sid} added: write_file {report} (the plan never wrote the report)")
    outside: dict[str, str] = {}
    if remit is not None:
        for s in steps:
            # now=0: deadlines are the Gate's at call time; a check that read the clock
            # could plan differently when a run is resumed
            decision = remit.check(s.tool, {"path": s.path}, now=0.0)
            if not decision.allowed:
                outside[s.id] = decision.reason
    return PlanCheck(tuple(steps), tuple(repairs), outside)
