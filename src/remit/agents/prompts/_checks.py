"""Checks on what a model says: the atomizer's answer turned into a decision
(:func:`decide`), the sentences a verifier may cite (:func:`supporting`) and its quote
checked against the file (:func:`grounded`), and a
planner's answer validated and repaired into a DAG of steps (:func:`check_plan`).

Separate from the prompts because code, not the model, has the last word: a small
model says yes to everything, quotes its own summary, and makes steps depend on
themselves, on later steps and in cycles; these functions are where that is caught.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from remit.agents.prompts._clip import clip
from remit.agents.prompts._roles import MAX_STEPS, STEP_TOOLS
from remit.core.remit import Remit

#: an atomizer estimate of at least this many tool calls means: plan
PLAN_FROM_STEPS = 2


def decide(answer: Mapping[str, Any]) -> str:
    """The atomizer's decision from its answer: ``"plan"`` for an estimate of
    :data:`PLAN_FROM_STEPS` tool calls or more, else ``"execute"``."""
    steps = answer.get("steps", 1)
    return "plan" if isinstance(steps, int) and steps >= PLAN_FROM_STEPS else "execute"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", text.lower())


#: words too common to say that a sentence supports a summary
_COMMON = frozenset(
    {
        "this",
        "that",
        "with",
        "from",
        "have",
        "will",
        "your",
        "they",
        "their",
        "what",
        "which",
        "when",
        "where",
        "there",
        "about",
        "into",
        "also",
        "been",
        "were",
        "just",
        "only",
        "more",
        "most",
        "some",
        "such",
        "than",
        "then",
        "them",
        "these",
        "those",
        "very",
        "file",
        "files",
        "does",
        "make",
        "makes",
        "using",
        "used",
        "each",
        "other",
        "here",
    }
)


def _content(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 4 and w not in _COMMON}


def sentences(text: str, *, limit: int = 24, width: int = 60) -> list[str]:
    """The sentences of what a model sees of ``text`` (its :func:`clip`), markdown marks
    stripped, at most ``width`` characters each (cut at a word), four words or more.

    >>> sentences("# Title\\n\\nremit is a runtime. It runs task trees for you.\\n- a b")
    ['remit is a runtime.', 'It runs task trees for you.']
    """
    out: list[str] = []
    for line in clip(text).splitlines():
        line = re.sub(r"^[#>*\-\s\d.]+", "", line).strip().strip("*_`")
        for part in re.split(r"(?<=[.!?;:])\s+", line):
            part = part.strip()
            if len(re.findall(r"\w+", part)) < 3:
                continue
            if len(part) > width:
                part = part[:width].rsplit(" ", 1)[0]
            if part not in out:
                out.append(part)
    return out[:limit]


def supporting(summary: str, text: str, *, at_most: int = 5) -> list[str]:
    """The sentences of ``text`` that share content words with ``summary``, most shared
    first (ties in file order): what a verifier may cite. Empty when no sentence shares
    a word, which is itself the finding (the summary says what the file does not).

    >>> supporting("runtime for task trees", "# remit\\n\\nremit is a runtime. It runs task trees.")
    ['It runs task trees.', 'remit is a runtime.']
    >>> supporting("a recipe for soup", "remit is a runtime. It runs task trees.")
    []
    """
    want = _content(summary)
    scored = [(len(want & _content(s)), i, s) for i, s in enumerate(sentences(text))]
    return [s for n, _, s in sorted(scored, key=lambda x: (-x[0], x[1])) if n][:at_most]


def supports(quote: str, summary: str) -> bool:
    """Whether ``quote`` shares a content word with ``summary`` (what :func:`supporting`
    ranks by): a quote about something else verifies nothing.

    >>> supports("remit is a runtime.", "A runtime for agents"), supports("a b c", "x y z")
    (True, False)
    """
    return bool(_content(quote) & _content(summary))


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


def within_remit(
    checked: PlanCheck, files: Collection[str] = (), *, every: bool = False
) -> PlanCheck:
    """The plan the remit allows: steps it denies are dropped (their dependents no longer
    wait for them) and, with ``every``, each of ``files`` no step reads gets a read step,
    before the report. Each change is a repair, in words.

    >>> c = check_plan({"steps": [{"tool": "read_file", "path": "out/r.md", "after": []},
    ...                           {"tool": "write_file", "path": "out/r.md", "after": [1]}]})
    >>> c = PlanCheck(c.steps, c.repairs, {"s1": "read_file: path outside the remit"})
    >>> fixed = within_remit(c, ["a.md"], every=True)
    >>> [(s.id, s.tool, s.path, s.after) for s in fixed.steps]
    [('s3', 'read_file', 'a.md', ()), ('s2', 'write_file', 'out/r.md', ('s3',))]
    >>> for r in fixed.repairs[-2:]: print(r)
    s1 dropped: the remit denies read_file out/r.md (read_file: path outside the remit)
    s3 added: read_file a.md (the goal asks for every document)
    """
    repairs = list(checked.repairs)
    dropped = set(checked.outside)
    kept: list[Step] = []
    for s in checked.steps:
        if s.id in dropped:
            repairs.append(
                f"{s.id} dropped: the remit denies {s.tool} {s.path} ({checked.outside[s.id]})"
            )
            continue
        kept.append(Step(s.id, s.tool, s.path, tuple(a for a in s.after if a not in dropped), s.do))
    if every:
        read = {s.path for s in kept if s.tool == "read_file"}
        n = max([int(s.id[1:]) for s in checked.steps if s.id[1:].isdigit()] + [0])
        added: list[Step] = []
        for path in files:
            if path not in read:
                n += 1
                added.append(Step(f"s{n}", "read_file", path, (), f"read {path}"))
                repairs.append(f"s{n} added: read_file {path} (the goal asks for every document)")
        writes = [s for s in kept if s.tool == "write_file"]
        reads = [s for s in kept if s.tool != "write_file"] + added
        ids = tuple(s.id for s in added)
        kept = reads + [Step(w.id, w.tool, w.path, (*w.after, *ids), w.do) for w in writes]
    return PlanCheck(tuple(kept), tuple(repairs), {})
