"""Towers of Hanoi, one voted micro-agent step per move, through the full Gate.

Each move is a task of its own whose remit grants one tool, ``move``. Its agent shows
the puzzle to a *simulated noisy solver* (:class:`NoisySolver`: not a language model; it
reads the pegs from the prompt, works out the next move of the classic strategy, and
errs on purpose: a wrong move with probability ``--p-error``, a malformed answer with
probability ``--p-error / 10``, drawn from a seed per step and sample). The step votes
(:class:`remit.Vote`: first-to-ahead-by-``--k``, red flags for malformed and overlong
answers) and calls ``move`` with the winner; ``move`` applies it to the pegs, refusing an
illegal one. Nothing checks an answer against the true solution while the run works:
only voting and red flags stand between the solver's errors and the result.

Moves are grouped in chunks of ``--chunk`` (a chunk is a task that plans its moves as a
chain); chunks form a chain under the root. Every step is journaled with durability
``full`` and signed provenance on (the default). ``errors`` counts moves that differ
from the optimal solution, checked after the run.

``--k`` defaults to the smallest ``k`` that keeps the run's expected number of wrong
moves that win their vote under 0.01 (:func:`k_for`; the principle of the million-step
Hanoi work: the margin grows with the length of the task, slowly). It uses the solver's
stated error rate and the number of wrong moves it spreads them over, as one would use an
error rate measured on a sample of steps; it never looks at a step's answer.

``--kill-at F``: the run works in a subprocess that is killed with SIGKILL once a
fraction ``F`` of the moves are journaled; this process then resumes it and reports
``redrawn``: samples the resumed run drew again although the journal held them (0).

    python benchmarks/hanoi.py --disks 16 --p-error 0.01 [--json]

The last line with ``--json``: ``steps``, ``errors``, ``steps_per_s``,
``samples_per_step``, ``journal_bytes`` (and ``journal_bytes_per_step``, ``seconds``,
``flagged``, ``disks``, ``p_error``, ``k``; with ``--kill-at``: ``killed_after``,
``redrawn``, ``resumed_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from remit import Agent, Budget, Completion, Plan, Remit, Runtime, Subtask, Vote, tool
from remit.errors import StepFailed

HERE = Path(__file__).resolve().parent
Pegs = list[list[int]]


# --- the puzzle -------------------------------------------------------------------------


def start(disks: int) -> Pegs:
    return [list(range(disks, 0, -1)), [], []]


def optimal(disks: int) -> list[tuple[int, int, int]]:
    """The optimal solution, as (disk, from, to): only ever used to count errors after."""
    out: list[tuple[int, int, int]] = []

    def solve(n: int, a: int, b: int, c: int) -> None:
        if n:
            solve(n - 1, a, c, b)
            out.append((n, a, c))
            solve(n - 1, b, a, c)

    solve(disks, 0, 1, 2)
    return out


@tool
def move(pegs: list[list[int]], disk: int, src: int, dst: int) -> list[list[int]]:
    """Move ``disk`` from peg ``src`` to peg ``dst``; the pegs after it. Refuses an
    illegal move (the disk not on top of ``src``, or onto a smaller one)."""
    if not (0 <= src <= 2 and 0 <= dst <= 2) or src == dst:
        raise StepFailed(f"move: pegs {src} -> {dst} do not make a move")
    if not pegs[src] or pegs[src][-1] != disk:
        raise StepFailed(f"move: disk {disk} is not on top of peg {src}")
    if pegs[dst] and pegs[dst][-1] < disk:
        raise StepFailed(f"move: disk {disk} cannot go onto disk {pegs[dst][-1]}")
    after = [list(p) for p in pegs]
    after[dst].append(after[src].pop())
    return after


def next_move(pegs: Pegs, step: int, disks: int) -> tuple[int, int, int]:
    """The classic strategy's move number ``step`` (from 1): odd steps move the smallest
    disk one peg on (0 -> 1 -> 2 for an even count of disks, 0 -> 2 -> 1 for odd), even
    steps make the one legal move that leaves the smallest disk alone."""
    if step % 2:
        at = next(i for i, p in enumerate(pegs) if p and p[-1] == 1)
        return 1, at, (at + (1 if disks % 2 == 0 else 2)) % 3
    a, b = (i for i, p in enumerate(pegs) if not p or p[-1] != 1)
    if not pegs[a] or (pegs[b] and pegs[b][-1] < pegs[a][-1]):
        a, b = b, a
    return pegs[a][-1], a, b


# --- the simulated noisy solver ---------------------------------------------------------


class NoisySolver:
    """A simulated solver model, named for what it is: it reads the puzzle from the
    prompt, computes the strategy's next move, and errs with the given probabilities
    (seeded per step and sample, so a run and its resume draw alike)."""

    usd_per_input_token = 0.0
    usd_per_output_token = 0.0

    def __init__(self, p_error: float, p_malformed: float, seed: int = 0) -> None:
        self.name = "noisy-solver"
        self.p_error, self.p_malformed, self.seed = p_error, p_malformed, seed
        self.drawn = 0

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 512,
        sample: int | None = None,
    ) -> Completion:
        self.drawn += 1
        prompt = str(messages[-1]["content"])
        ask = json.loads(prompt)
        step, pegs, disks = int(ask["step"]), ask["pegs"], int(ask["disks"])
        draw = _Draws((self.seed * 1_000_003 + step) * 1_009 + (sample or 0))
        r = draw.uniform()
        disk, src, dst = next_move(pegs, step, disks)
        if r < self.p_malformed:
            text = f"I would move disk {disk} from {src} to {dst}, I think."
        elif r < self.p_malformed + self.p_error:
            # a wrong move: any other disk and pair of pegs, drawn from the same seed
            while (w := (draw.below(disks) + 1, *draw.pegs())) == (disk, src, dst):
                pass
            text = _MOVE % w
        else:
            text = _MOVE % (disk, src, dst)
        return Completion(text, input_tokens=len(prompt) // 4, output_tokens=len(text) // 4,
                          model=self.name)  # fmt: skip


#: a move as ``json.dumps`` writes it
_MOVE = '{"disk": %d, "from": %d, "to": %d}'
_MASK = (1 << 64) - 1


def _mix(z: int) -> int:
    """SplitMix64's finalizer: every bit of ``z`` moves about half of the result's."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


class _Draws:
    """The solver's random numbers for one step and sample: a SplitMix64 stream from a
    scrambled seed (neighbouring seeds, as a step's samples have, must not give
    neighbouring streams). ``random.Random(seed)`` costs more to seed than the solver's
    whole answer."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = _mix(seed & _MASK)

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        return _mix(self.state)

    def uniform(self) -> float:
        return (self.next() >> 11) / (1 << 53)

    def below(self, n: int) -> int:
        return self.next() % n

    def pegs(self) -> tuple[int, int]:
        """Two different pegs, in order."""
        a = self.below(3)
        return a, (a + 1 + self.below(2)) % 3


# --- the agent --------------------------------------------------------------------------

MOVE_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "disk": {"type": "integer", "minimum": 1},
        "from": {"type": "integer", "minimum": 0, "maximum": 2},
        "to": {"type": "integer", "minimum": 0, "maximum": 2},
    },
    "required": ["disk", "from", "to"],
    "additionalProperties": False,
}


class Hanoi(Agent):
    """Root: chunks of moves in a chain; a chunk: its moves in a chain; a move: a voted
    step of the solver, then the ``move`` tool."""

    tools = (move,)

    def __init__(self, disks: int, chunk: int = 256, k: int = 2, max_samples: int = 12) -> None:
        self.disks, self.chunk = disks, chunk
        self.vote = Vote(k=k, max_samples=max_samples, schema=MOVE_SCHEMA, max_chars=60,
                         parallel=1)  # fmt: skip

    def atomize(self, ctx: Any) -> str:
        return "execute" if ctx.depth == 2 else "plan"

    def plan(self, ctx: Any) -> Plan:
        total = 2**self.disks - 1
        if ctx.depth == 0:
            chunks = range(0, total, self.chunk)
            return Plan([
                Subtask(f"c{i}", f"moves {first + 1}-{min(first + self.chunk, total)}",
                        deps=(f"c{i - 1}",) if i else (),
                        inputs={"first": first + 1, "last": min(first + self.chunk, total)})
                for i, first in enumerate(chunks)
            ])  # fmt: skip
        first, last = int(ctx.inputs["first"]), int(ctx.inputs["last"])
        pegs = next(iter(ctx.deps.values()))["pegs"] if ctx.deps else start(self.disks)
        return Plan([
            Subtask(f"m{s}", f"move {s}", deps=(f"m{s - 1}",) if s > first else (),
                    inputs={"step": s, "pegs": pegs} if s == first else {"step": s},
                    remit={"tools": {"move": {}}})
            for s in range(first, last + 1)
        ])  # fmt: skip

    async def execute(self, ctx: Any) -> Any:
        step = int(ctx.inputs["step"])
        pegs = ctx.inputs["pegs"] if "pegs" in ctx.inputs else ctx.deps[f"m{step - 1}"]["pegs"]
        ask = json.dumps({"step": step, "disks": self.disks, "pegs": pegs})
        voted = await ctx.vote([{"role": "user", "content": ask}], self.vote, max_tokens=32)
        m = voted.value
        after = await ctx.call("move", pegs=pegs, disk=m["disk"], src=m["from"], dst=m["to"])
        return {"pegs": after, "move": [m["disk"], m["from"], m["to"]]}

    def aggregate(self, ctx: Any, results: list[Any]) -> Any:
        if ctx.depth == 0:
            return {"pegs": results[-1].value["pegs"], "chunks": len(results)}
        return {"pegs": results[-1].value["pegs"], "moves": [r.value["move"] for r in results]}


# --- how far ahead a vote must be -------------------------------------------------------


def k_for(steps: int, p_error: float, p_malformed: float, wrong_moves: int,
          expected_errors: float = 0.01) -> int:  # fmt: skip
    """The smallest ``k`` for which first-to-ahead-by-``k`` lets fewer than
    ``expected_errors`` wrong moves through in ``steps`` votes.

    A vote is a race between the right answer (a sample is right with probability
    ``q``) and each wrong one (``w``: the error rate spread over ``wrong_moves``); a
    given wrong answer wins about as often as a gambler ``k`` steps from ruin with odds
    ``q : w`` (flagged samples do not vote), so ``wrong_moves / (1 + (q / w) ** k)`` per
    step.

    >>> k_for(2**16 - 1, 0.01, 0.001, 6 * 16 - 1), k_for(2**10 - 1, 0.01, 0.001, 59)
    (3, 2)
    """
    q = 1.0 - p_error - p_malformed
    if p_error <= 0:
        return 1
    w = p_error / wrong_moves
    k = 1
    while steps * wrong_moves / (1.0 + (q / w) ** k) > expected_errors:
        k += 1
    return k


# --- running it -------------------------------------------------------------------------


def _remit(disks: int) -> Remit:
    return Remit(tools={"move": {}}, budget=Budget(calls=20 * 2**disks), depth=2)


def _runtime(journal: Path, args: argparse.Namespace) -> tuple[Runtime, NoisySolver]:
    model = NoisySolver(args.p_error, args.p_error / 10, args.seed)
    agent = Hanoi(args.disks, args.chunk, args.k, args.max_samples)
    return Runtime(journal=journal, agent=agent, model=model, durability="full"), model


def _count(journal: Path) -> dict[str, int]:
    with sqlite3.connect(journal) as conn:
        rows = conn.execute(
            "SELECT kind, COUNT(*) FROM steps WHERE status <> 'started' GROUP BY kind"
        ).fetchall()
    return {kind: n for kind, n in rows}


def _score(journal: Path, disks: int) -> dict[str, Any]:
    """Errors against the optimal solution, samples and red flags: read from the journal."""
    with sqlite3.connect(journal) as conn:
        outs = conn.execute(
            "SELECT output FROM steps WHERE kind = 'aggregate' AND status = 'ok' ORDER BY pos"
        ).fetchall()
        votes = conn.execute(
            "SELECT output FROM steps WHERE kind = 'vote' AND status = 'ok'"
        ).fetchall()
    moves = [tuple(m) for (o,) in outs for m in json.loads(o).get("moves", [])]
    truth = optimal(disks)
    errors = sum(a != b for a, b in zip(moves, truth, strict=False)) + abs(len(moves) - len(truth))
    samples = flagged = 0
    for (o,) in votes:
        v = json.loads(o)
        samples += int(v["samples"])
        flagged += int(v["flagged"])
    return {"steps": len(moves), "errors": errors, "votes": len(votes),
            "samples": samples, "flagged": flagged}  # fmt: skip


def _child(args: argparse.Namespace) -> None:
    rt, _ = _runtime(Path(args.journal), args)
    rt.run("towers of hanoi", remit=_remit(args.disks), run_id="hanoi")


def run_once(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One run (or a run killed part-way and resumed): the figures of the issue."""
    journal = workdir / "hanoi.db"
    total = 2**args.disks - 1
    out: dict[str, Any] = {}
    if args.kill_at is not None:
        cmd = [sys.executable, __file__, "--child", "--journal", str(journal), "--disks",
               str(args.disks), "--p-error", str(args.p_error), "--k", str(args.k),
               "--chunk", str(args.chunk), "--seed", str(args.seed), "--max-samples",
               str(args.max_samples)]  # fmt: skip
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 600
        try:
            while True:
                time.sleep(0.05)
                if proc.poll() is not None:
                    raise SystemExit(f"hanoi child ended before the kill: {proc.stderr.read()!r}")  # type: ignore[union-attr]
                if time.monotonic() > deadline:
                    raise SystemExit("hanoi child never got far enough to be killed")
                try:
                    done = _count(journal).get("vote", 0)
                except sqlite3.Error:
                    continue
                if done >= args.kill_at * total:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
        finally:
            proc.kill()
            proc.wait()
        before = _count(journal)
        out["killed_after"] = before.get("vote", 0)
        rt, model = _runtime(journal, args)
        t = time.perf_counter()
        run = rt.resume("hanoi")
        out["resumed_s"] = round(time.perf_counter() - t, 3)
        rt.close()
        after = _count(journal)
        # every sample the resumed process drew must be a new row: none served before
        out["redrawn"] = model.drawn - (after.get("model", 0) - before.get("model", 0))
        seconds = None
    else:
        rt, model = _runtime(journal, args)
        rt.store  # noqa: B018  (the journal file is created before the clock starts)
        t = time.perf_counter()
        run = rt.run("towers of hanoi", remit=_remit(args.disks), run_id="hanoi")
        seconds = time.perf_counter() - t
        rt.close()
    if not run.ok:
        raise SystemExit(f"hanoi run failed: {run.error}")
    score = _score(journal, args.disks)
    size = sum(p.stat().st_size for p in workdir.glob("hanoi.db*"))
    out.update(
        steps=score["steps"],
        errors=score["errors"],
        samples_per_step=round(score["samples"] / max(1, score["votes"]), 4),
        flagged=score["flagged"],
        journal_bytes=size,
        journal_bytes_per_step=round(size / max(1, score["steps"]), 1),
    )
    if seconds is not None:
        out["seconds"] = round(seconds, 3)
        out["steps_per_s"] = round(score["steps"] / seconds, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--disks", type=int, default=10)
    ap.add_argument("--p-error", type=float, default=0.01)
    ap.add_argument("--k", type=int, default=None, help="first-to-ahead-by-k (default: see k_for)")
    ap.add_argument("--max-samples", type=int, default=12)
    ap.add_argument("--chunk", type=int, default=256, help="moves per chunk task")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kill-at", type=float, default=None, help="SIGKILL at this fraction")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--journal", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.k is None:
        args.k = k_for(2**args.disks - 1, args.p_error, args.p_error / 10, 6 * args.disks - 1)
    if args.child:
        _child(args)
        return
    with tempfile.TemporaryDirectory() as d:
        out = run_once(args, Path(d))
    out.update(disks=args.disks, p_error=args.p_error, k=args.k)
    for key, value in out.items():
        print(f"  {key:24s} {value}")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
