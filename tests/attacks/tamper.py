"""A seeded generator of tamperings with sealed journals, and of legitimate journals.

:func:`build_bases` makes the *base journals* once, with real :class:`~remit.Runtime`
runs, sealed as by default (``sign=True``), all in one journal file:

* ``fan`` and ``fan2``: a root plans one child per file, each child narrowed to its
  own file (``read_file`` with ``path within``), calls the tool twice and the model
  (:class:`~remit.models.ScriptedModel`) once; two such runs, so rows can be spliced;
* ``model``: a run that only talks to the model (no tool call);
* ``failed``: a run whose task raises after a call;
* ``resumed``: stopped by SIGINT while a tool is in flight (the tool's row is marked
  interrupted), then resumed by a new runtime;
* ``approved``: a call outside the remit with ``fallback = "ask"``; the run is stopped
  while it waits, a person answers from another journal connection (``remit approve``'s
  own code, so the answer is a row another process wrote, ``n = -1``, until the owner
  chains it), and the run is resumed.

Snapshots taken on the way are bases too: ``crashed`` (``resumed`` still running),
``waiting`` (``approved`` waiting for its answer) and ``pending`` (answered, not yet
resumed). Every base is one clean file (``VACUUM INTO``).

:func:`generate` derives :class:`Case` objects from ``random.Random(seed)`` in the
categories of :data:`CATEGORIES`: each copies a base file, changes it once through raw
``sqlite3`` (what an attacker holding the file can do, including recomputing a row's
hash with :func:`~remit.journal._chain.row_hash_of`, and signing with keys of their
own), checks the file really changed, and runs
:func:`~remit.trust.provenance.verify_run` on it. A case names the failure codes it
expects (any one of them); its :class:`Outcome` is ``detected`` (not ok, one expected
code among the failures), ``detected_other`` (not ok with other codes only, or the
journal refused to be read: still detected, listed) or ``missed`` (verified ok). A case
whose miss is a known verifier gap carries the key of :data:`KNOWN_GAPS`.
:func:`legit_cases` are journals that must verify: every base as made, a file copy (with
its ``-wal``/``-shm``), a VACUUMed copy, one read by ``remit show`` meanwhile, one a new
run was added to, and every run verified against its principal's key pinned.

Not generated, because undetectable by design (the journal file alone cannot tell):

* truncating an *unfinished* run back to one of its checkpoints (rows, superseded
  entries and checkpoints after it dropped): that is what a crash right after that
  checkpoint leaves. Likewise a *finished* run cut back to a checkpoint together with
  its record restored to what that checkpoint signed (status ``running``, no result):
  it reads as a run that crashed there;
* anything done by an attacker holding the journal's secret file
  (``<journal>.keys/journal.secret``, every run's secret derives from it): they are the
  run's owner and sign as it;
* a wholesale re-forgery under a principal key of the attacker's own (new
  ``principal_key`` in the run's meta, a new grant, seal key and checkpoints) verified
  *without* pinning the principal: ``verify_run`` then proves consistency, not who the
  principal was. It is generated, and verified with the true principal pinned;
* a row written with ``n = -1`` into a running run: that is what another process's
  write (a person's answer) looks like until the owner chains it; nobody has signed
  it yet;
* columns no hash or signature covers, being bookkeeping: ``steps.pos`` (the order
  rows were first written; the chain's order is ``n``), ``runs.updated_at``,
  ``checkpoints.at``, and the ``leases`` and ``meta`` tables; and dropping a checkpoint
  while renumbering ``k`` (``k`` is not signed; every checkpoint left still signs a
  head the chain has, and the last still covers every entry and the run's record).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import textwrap
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit import Agent, Plan, Remit, Runtime, Subtask, tool, within
from remit.errors import RemitError
from remit.journal import SQLiteJournal
from remit.journal._chain import (
    STEP_FIELDS,
    checkpoint_message,
    fold,
    genesis,
    link,
    row_hash_of,
)
from remit.journal._chain import run_hash as run_hash_of
from remit.journal._store import RunRecord
from remit.models import ScriptedModel
from remit.trust.provenance import RunKeys, grant, nonce_of, verify_run
from remit.trust.warrant import AgentKey

__all__ = [
    "CATEGORIES",
    "KNOWN_GAPS",
    "KNOWN_LEGIT_GAPS",
    "Bases",
    "Case",
    "Legit",
    "Outcome",
    "build_bases",
    "fingerprint",
    "generate",
    "legit_cases",
    "report_lines",
    "run_case",
    "run_legit",
    "summarize",
]

CATEGORIES: tuple[str, ...] = (
    "edit",
    "delete",
    "reorder",
    "truncate",
    "splice",
    "forged_checkpoint",
    "replayed_nonce",
    "run_record",
    "delegation",
)

#: tamperings the verifier is known to miss, by key: the reason, in one line
KNOWN_GAPS: dict[str, str] = {}

#: legitimate journals the verifier is known to refuse, by key: the reason
KNOWN_LEGIT_GAPS: dict[str, str] = {}

_COLS = ", ".join(STEP_FIELDS)
#: the runs of the base journal; those with a plan row (fan-out) and those with calls
RUNS = ("fan", "fan2", "model", "failed", "resumed", "approved")
FAN_RUNS = ("fan", "fan2")
#: base snapshots: which runs are still running in each
RUNNING = {"crashed": ("resumed",), "waiting": ("approved",), "pending": ("approved",)}

# --- the base journals ------------------------------------------------------------------


class Reader(Agent):
    """Root plans one child per file; each child reads its own file twice and asks the
    model once (as ``tests/trust/test_provenance.py``'s Reader)."""

    def atomize(self, ctx: Any) -> str:
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx: Any) -> Plan:
        return Plan(
            [
                Subtask(
                    f"f{i}",
                    f"read {p}",
                    inputs={"path": p},
                    remit={"tools": {"read_file": {"path": within(p)}}},
                )
                for i, p in enumerate(ctx.inputs["paths"])
            ]
        )

    async def execute(self, ctx: Any) -> Any:
        a = await ctx.call("read_file", path=ctx.inputs["path"])
        b = await ctx.call("read_file", path=ctx.inputs["path"])
        await ctx.complete([{"role": "user", "content": "summarize"}])
        return len(a) + len(b)

    def aggregate(self, ctx: Any, results: list[Any]) -> Any:
        return sum(r.value for r in results)


class Talker(Agent):
    """Asks the model twice; no tool call."""

    async def execute(self, ctx: Any) -> Any:
        first = await ctx.complete([{"role": "user", "content": "one"}])
        second = await ctx.complete([{"role": "user", "content": "two"}])
        return [first.content, second.content]


class Failer(Agent):
    """Reads a file, then fails."""

    async def execute(self, ctx: Any) -> Any:
        await ctx.call("read_file", path="a.txt")
        raise RuntimeError("boom")


#: armed: the next ``slow_step(1)`` stops the process with SIGINT while in flight
_CRASH = {"armed": False}


@tool
async def slow_step(i: int) -> int:
    if i == 1 and _CRASH["armed"]:
        _CRASH["armed"] = False
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(30)
    return i * 2


class Stepper(Agent):
    tools = (slow_step,)

    async def execute(self, ctx: Any) -> Any:
        return sum([await ctx.call("slow_step", i=i) for i in range(3)])


@tool(effect=True)
def send_money(recipient: str, amount: int) -> str:
    return f"sent {amount} to {recipient}"


class Payer(Agent):
    """Pays bob (allowed: in the person's words) then mallory (asks a person)."""

    tools = (send_money,)

    async def execute(self, ctx: Any) -> Any:
        a = await ctx.call("send_money", recipient="bob", amount=5)
        return [a, await ctx.call("send_money", recipient="mallory", amount=50)]


BANK_REMIT = """
deadline = "10m"
[tools.send_money]
fallback = "ask"
rules = [
  { forbid = { amount = { between = { min = 1000 } } }, reason = "large transfer" },
  { allow = { recipient = { in_inputs = true } } },
]
"""


@dataclass(frozen=True, slots=True)
class RunSnap:
    """One run of one base, as read once: rows by step id, chain, checkpoints, record."""

    base: str
    run_id: str
    rows: dict[str, dict[str, Any]]  # step_id -> every column
    superseded: list[tuple[int, str]]  # (n, step_id)
    checkpoints: list[tuple[int, int]]  # (k, n)
    record: dict[str, Any]
    principal: bytes

    @property
    def ids(self) -> list[str]:
        return sorted(self.rows)

    def of_kind(self, kind: str) -> list[str]:
        return [s for s in self.ids if self.rows[s]["kind"] == kind]

    @property
    def top(self) -> int:
        return max([r["n"] for r in self.rows.values()] + [n for n, _ in self.superseded])


@dataclass
class Bases:
    """The base journal files, by name, the original build journal and each run read."""

    dir: Path
    files: dict[str, Path]
    original: Path
    runs: dict[tuple[str, str], RunSnap] = field(default_factory=dict[tuple[str, str], RunSnap])
    build_s: float = 0.0

    def run(self, base: str, run_id: str) -> RunSnap:
        return self.runs[base, run_id]


def _vacuum_into(src: Path, dst: Path) -> None:
    with contextlib.closing(sqlite3.connect(src)) as conn:
        conn.execute("VACUUM INTO ?", (str(dst),))


def _answer(journal: Path, run_id: str) -> None:
    """A person's answer, written the way ``remit approve`` writes it."""
    from remit.cli._approvals import _answer as approve  # pyright: ignore[reportPrivateUsage]

    with contextlib.closing(sqlite3.connect(journal)) as conn:
        (step,) = conn.execute(
            "SELECT step_id FROM steps WHERE run_id = ? AND kind = 'approval'"
            " AND status = 'started'",
            (run_id,),
        ).fetchone()
    with contextlib.redirect_stdout(None):
        approve(run_id, step, journal, True, "alice")


def build_bases(directory: Path) -> Bases:
    """Make the base journals in ``directory`` (see the module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("the base journals stop runs with SIGINT: build them on the main thread")
    t0 = time.perf_counter()
    ws = directory / "ws"
    ws.mkdir(parents=True, exist_ok=True)
    for p in ("a.txt", "b.txt", "c.txt", "d.txt", "e.txt"):
        (ws / p).write_text(p * 3)
    journal = directory / "build.db"
    files: dict[str, Path] = {}
    common: dict[str, Any] = {"journal": journal, "workspace": ws, "concurrency": 1}
    read = Remit(tools={"read_file": {}}, depth=1)
    model = ScriptedModel(lambda _: "ok")
    with Runtime(agent=Reader(), model=model, **common) as rt:
        for rid, goal, paths in (("fan", "read three files", ["a.txt", "b.txt", "c.txt"]),
                                 ("fan2", "read two files", ["d.txt", "e.txt"])):  # fmt: skip
            assert rt.run(goal, remit=read, inputs={"paths": paths}, run_id=rid).ok
    with Runtime(agent=Talker(), model=model, **common) as rt:
        assert rt.run("talk", remit=Remit(), run_id="model").ok
    with Runtime(agent=Failer(), **common) as rt:
        assert rt.run("fail", remit=Remit(tools={"read_file": {}}), run_id="failed").status == (
            "failed"
        )
    _CRASH["armed"] = True
    with Runtime(agent=Stepper(), **common) as rt, contextlib.suppress(KeyboardInterrupt):
        rt.run("step three times", remit=Remit(tools={"slow_step": {}}), run_id="resumed")
        raise AssertionError("the run was not interrupted")
    _vacuum_into(journal, files.setdefault("crashed", directory / "crashed.db"))
    with Runtime(agent=Stepper(), **common) as rt:
        assert rt.resume("resumed").ok
    with Runtime(agent=Payer(), **common) as rt, contextlib.suppress(KeyboardInterrupt):
        rt.on_approval = lambda _step, _node: os.kill(os.getpid(), signal.SIGINT)
        rt.run("pay bob 5", remit=Remit.from_toml(BANK_REMIT), run_id="approved")
        raise AssertionError("the run was not interrupted")
    _vacuum_into(journal, files.setdefault("waiting", directory / "waiting.db"))
    _answer(journal, "approved")
    _vacuum_into(journal, files.setdefault("pending", directory / "pending.db"))
    with Runtime(agent=Payer(), **common) as rt:
        assert rt.resume("approved").ok
    _vacuum_into(journal, files.setdefault("main", directory / "main.db"))
    bases = Bases(directory, files, journal)
    for base, path in files.items():
        for rid in RUNS:
            snap = _read_snap(path, base, rid)
            if snap is not None:
                bases.runs[base, rid] = snap
    bases.build_s = time.perf_counter() - t0
    return bases


def _read_snap(path: Path, base: str, run_id: str) -> RunSnap | None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        record = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if record is None:
            return None
        rows = {
            r["step_id"]: dict(r)
            for r in conn.execute("SELECT * FROM steps WHERE run_id = ?", (run_id,))
        }
        sup = conn.execute(
            "SELECT n, step_id FROM superseded WHERE run_id = ? ORDER BY n", (run_id,)
        ).fetchall()
        cps = conn.execute(
            "SELECT k, n FROM checkpoints WHERE run_id = ? ORDER BY k", (run_id,)
        ).fetchall()
    meta = json.loads(record["meta"])
    return RunSnap(
        base,
        run_id,
        rows,
        [(n, sid) for n, sid in sup],
        [(k, n) for k, n in cps],
        dict(record),
        bytes.fromhex(meta["principal_key"]),
    )


# --- the attacker's toolkit: raw SQL on a copy of the file ------------------------------

Conn = sqlite3.Connection
Mutation = Callable[[Conn], None]


def _one(conn: Conn, query: str, *args: Any) -> Any:
    row = conn.execute(query, args).fetchone()
    assert row is not None, (query, args)
    return row[0] if len(row) == 1 else row


def recompute(conn: Conn, run: str, step: str) -> None:
    """Give a row the entry its content hashes to (what an attacker who read
    ``remit.journal._chain`` does after editing it)."""
    fields = conn.execute(
        f"SELECT {_COLS} FROM steps WHERE run_id = ? AND step_id = ?", (run, step)
    ).fetchone()
    conn.execute(
        "UPDATE steps SET entry = ? WHERE run_id = ? AND step_id = ?",
        (row_hash_of(list(fields)), run, step),
    )


def shift(conn: Conn, run: str, after: int, by: int) -> None:
    """Move every chain place after ``after`` by ``by`` (rows and superseded entries)."""
    for table in ("steps", "superseded"):
        conn.execute(
            f"UPDATE {table} SET n = n + ? + 1000000 WHERE run_id = ? AND n > ?", (by, run, after)
        )
        conn.execute(
            f"UPDATE {table} SET n = n - 1000000 WHERE run_id = ? AND n >= 1000000", (run,)
        )


def entries(conn: Conn, run: str) -> list[tuple[int, str, str, bytes]]:
    """The chain as stored: (n, table, step_id, entry), by n."""
    got = [(n, "steps", s, bytes(e)) for n, s, e in conn.execute(
        "SELECT n, step_id, entry FROM steps WHERE run_id = ? AND n > 0", (run,))]  # fmt: skip
    got += [(n, "superseded", s, bytes(e)) for n, s, e in conn.execute(
        "SELECT n, step_id, entry FROM superseded WHERE run_id = ?", (run,))]  # fmt: skip
    return sorted(got)


def resign(conn: Conn, run: str, key: AgentKey, *, refold: bool = True) -> None:
    """Sign every checkpoint again with ``key``, after recomputing its head from the
    chain as it now stands and its run hash (the last one's) from the run's record."""
    chain = [link(step_id, e) for _, _, step_id, e in entries(conn, run)]
    cps = conn.execute(
        "SELECT k, n, head, run_hash FROM checkpoints WHERE run_id = ? ORDER BY k", (run,)
    ).fetchall()
    record = RunRecord(*conn.execute(
        "SELECT run_id, goal, agent, remit, status, inputs, result, error, meta, created_at,"
        " updated_at FROM runs WHERE run_id = ?", (run,)).fetchone())  # fmt: skip
    prev, folded = 0, genesis(run)
    for i, (k, n, head, rh) in enumerate(cps):
        if refold:
            n = max(prev, min(n, len(chain)))
            folded = fold(folded, chain[prev:n])  # a head per checkpoint, over its span
            prev, head = n, folded
            if i == len(cps) - 1:
                rh = run_hash_of(record)
        sig = key.sign(checkpoint_message(run, n, bytes(head), bytes(rh)))
        conn.execute(
            "UPDATE checkpoints SET n = ?, head = ?, run_hash = ?, signature = ?"
            " WHERE run_id = ? AND k = ?",
            (n, bytes(head), bytes(rh), sig, run, k),
        )


def set_step(conn: Conn, run: str, step: str, column: str, value: Any) -> None:
    conn.execute(f"UPDATE steps SET {column} = ? WHERE run_id = ? AND step_id = ?",
                 (value, run, step))  # fmt: skip


def flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at % len(b)] ^= 1 << (at % 8)
    return bytes(b)


def content_digest(conn: Conn) -> str:
    """A digest of every table's rows (with each value's type): equal iff unchanged."""
    h = hashlib.sha256()
    tables = [t for (t,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]  # fmt: skip
    for t in tables:
        h.update(t.encode())
        for r in sorted(repr(tuple(row)) for row in conn.execute(f"SELECT * FROM {t}")):
            h.update(r.encode())
    return h.hexdigest()


# --- cases and outcomes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """One tampering with base ``base``'s file, verified as run ``run_id``."""

    category: str
    variant: str
    base: str
    run_id: str
    expect: frozenset[str]
    mutate: Mutation
    #: verify with the run's true principal key pinned
    pinned: bool = False
    #: a key of KNOWN_GAPS if the verifier is known to miss this case
    known_gap: str | None = None


@dataclass(frozen=True, slots=True)
class Legit:
    """A journal that must verify: ``prepare(bases, path)`` makes it at ``path``;
    ``runs`` are verified (each with ``pinned``)."""

    variant: str
    runs: tuple[str, ...]
    prepare: Callable[[Bases, Path], None]
    pinned: bool = False
    base: str = "main"
    known_gap: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one case did: ``detected``, ``detected_other`` or ``missed`` for a tampering;
    ``ok`` or ``refused`` for a legitimate journal. ``seen``: the codes verify reported
    (``RAISED:CODE`` if reading the journal raised, ``CRASH:Type`` for any other error)."""

    category: str
    variant: str
    verdict: str
    expected: tuple[str, ...]
    seen: tuple[str, ...]
    detail: str = ""
    known_gap: str | None = None


def _verify(path: Path, run_id: str, principal: bytes | None) -> tuple[bool, tuple[str, ...], str]:
    try:
        with SQLiteJournal(path) as store:
            report = verify_run(store, run_id, principal_public=principal)
    except RemitError as e:
        return False, (f"RAISED:{e.code}",), e.message
    except Exception as e:  # a crash: not an ok, but a bug of its own (listed)
        return False, (f"CRASH:{type(e).__name__}",), repr(e)
    codes = tuple(dict.fromkeys(f.code for f in report.failures))
    detail = "; ".join(f"{f.step_id} {f.code}: {f.message}" for f in report.failures[:4])
    return report.ok, codes, detail


def _scratch(bases: Bases) -> Path:
    d = bases.dir / "cases"
    d.mkdir(exist_ok=True)
    return d / f"c{time.monotonic_ns()}.db"


def _remove(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)


def run_case(case: Case, bases: Bases) -> Outcome:
    path = _scratch(bases)
    shutil.copyfile(bases.files[case.base], path)
    try:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            before = content_digest(conn)
            case.mutate(conn)
            conn.commit()
            after = content_digest(conn)
        assert before != after, f"{case.category}/{case.variant} left the file unchanged"
        principal = bases.run(case.base, case.run_id).principal if case.pinned else None
        ok, seen, detail = _verify(path, case.run_id, principal)
    finally:
        _remove(path)
    expected = tuple(sorted(case.expect))
    if ok:
        verdict = "missed"
    elif case.expect & set(seen):
        verdict = "detected"
    else:
        verdict = "detected_other"
    return Outcome(case.category, case.variant, verdict, expected, seen, detail, case.known_gap)


def run_legit(case: Legit, bases: Bases) -> list[Outcome]:
    path = _scratch(bases)
    try:
        case.prepare(bases, path)
        out: list[Outcome] = []
        for rid in case.runs:
            principal = bases.run(case.base, rid).principal if case.pinned else None
            ok, seen, detail = _verify(path, rid, principal)
            out.append(Outcome("legit", f"{case.variant}/{rid}", "ok" if ok else "refused",
                               (), seen, detail, case.known_gap))  # fmt: skip
        return out
    finally:
        _remove(path)


def summarize(outcomes: Sequence[Outcome]) -> dict[str, dict[str, int]]:
    """Per category: attempts, detected, detected_other, missed."""
    table = {c: {"attempts": 0, "detected": 0, "detected_other": 0, "missed": 0}
             for c in CATEGORIES}  # fmt: skip
    for o in outcomes:
        row = table.setdefault(
            o.category, {"attempts": 0, "detected": 0, "detected_other": 0, "missed": 0}
        )
        row["attempts"] += 1
        row[o.verdict] += 1
    return table


def fingerprint(cases: Sequence[Case]) -> str:
    """SHA-256 over every case's description: equal for equal seeds and bases."""
    h = hashlib.sha256()
    for c in cases:
        h.update(repr((c.category, c.variant, c.base, c.run_id, sorted(c.expect), c.pinned,
                       c.known_gap)).encode())  # fmt: skip
    return h.hexdigest()


# --- the generator -----------------------------------------------------------------------


class _Gen:
    """Random choices that consume the generator the same way whatever the sizes."""

    def __init__(self, seed: int, bases: Bases) -> None:
        self.rng = random.Random(seed)
        self.bases = bases

    def pick(self, seq: Sequence[Any]) -> Any:
        assert seq
        return seq[self.rng.getrandbits(32) % len(seq)]

    def coin(self) -> bool:
        return bool(self.rng.getrandbits(1))

    def int(self, lo: int, hi: int) -> int:
        return lo + self.rng.getrandbits(32) % (hi - lo + 1)

    def snap(self, runs: Sequence[str] = RUNS, base: str = "main") -> RunSnap:
        return self.bases.run(base, self.pick(runs))


# edit ------------------------------------------------------------------------------------

_JSON_FIELDS = ("input", "output", "error", "spent")
_STATUSES = ("started", "ok", "error", "denied")


def _new_value(g: _Gen, row: Mapping[str, Any], column: str) -> tuple[Any, str]:
    """Another value for ``column`` of ``row``, and how it was made."""
    cur = row[column]
    if column in _JSON_FIELDS:
        how = g.pick(("reformat", "replace", "null") if cur is not None else ("set",))
        if how == "reformat":  # the same JSON value, other bytes
            return " " + cur, how
        if how == "null":
            return None, how
        if column == "input" and row["kind"] == "tool":
            value = {k: "zzz" if isinstance(v, str) else 7 for k, v in json.loads(cur).items()}
            return json.dumps(value), "other args"
        return json.dumps({"forged": g.int(0, 999)}), how
    if column in ("started_at", "ended_at"):
        if cur is None:
            return 1_700_000_000.5, "set"
        delta = g.pick((-3600.0, -0.001, 1e-6, 60.0))
        return cur + delta, f"{delta:+g}s"
    if column == "seq":
        return cur + g.int(1, 5), "shifted"
    if column == "status":
        return g.pick([s for s in _STATUSES if s != cur]), "other status"
    if column == "kind":
        kinds = [k for k in ("tool", "model", "task", "plan", "approval") if k != cur]
        return g.pick(kinds), "other"
    if column == "name":
        return g.pick(("write_file", "http_get", cur + "_")), "other"
    if column == "task_id":
        return cur + "/9.ffffff", "moved"
    if column == "step_id":
        return cur + "x", "renamed"
    if column == "run_id":
        return "elsewhere", "moved"
    if column == "proof":
        return (None, "cleared") if cur is not None else (nonce_of(row["step_id"]), "added")
    raise AssertionError(column)


def _edit(g: _Gen) -> Case:
    snap = g.snap()
    step = g.pick(snap.ids)
    row = snap.rows[step]
    column = g.pick(STEP_FIELDS)
    value, how = _new_value(g, row, column)
    again = g.coin()
    run = snap.run_id
    renamed = value if column == "step_id" else step

    def mutate(conn: Conn) -> None:
        set_step(conn, run, step, column, value)
        if again and column != "run_id":
            recompute(conn, run, renamed)

    if column == "run_id":
        expect = {"CHAIN_BROKEN", "CHAIN_ALTERED", "ROW_DELETED"}
    elif again:
        expect = {"CHAIN_ALTERED"}
    elif column == "step_id":
        expect = {"ROW_ALTERED", "ROW_DELETED"}
    else:
        expect = {"ROW_ALTERED"}
    mode = "entry recomputed" if again else "entry kept"
    return Case("edit", f"{column} {how} ({mode}): {step}", "main", run, frozenset(expect), mutate)


def _edit_running(g: _Gen) -> Case:
    base = g.pick(("crashed", "waiting"))
    (run,) = RUNNING[base]
    snap = g.bases.run(base, run)
    step = g.pick(snap.ids)
    column = g.pick(("output", "status", "input", "started_at", "error"))
    value, how = _new_value(g, snap.rows[step], column)
    again = g.coin()

    def mutate(conn: Conn) -> None:
        set_step(conn, run, step, column, value)
        if again:
            recompute(conn, run, step)

    expect = {"CHAIN_ALTERED"} if again else {"ROW_ALTERED"}
    mode = "entry recomputed" if again else "entry kept"
    return Case("edit", f"running run: {column} {how} ({mode}): {step}", base, run,
                frozenset(expect), mutate)  # fmt: skip


def _relabel_superseded(g: _Gen) -> Case:
    """A superseded entry relabelled as another step's write."""
    choices = sorted((b, r) for (b, r), s in g.bases.runs.items() if s.superseded)
    base, run = g.pick(choices)
    snap = g.bases.run(base, run)
    n, step = g.pick(snap.superseded)
    later = sorted(s for s, r in snap.rows.items() if r["n"] > n and s != step)
    other = g.pick(later) if later and g.coin() else step + "x"

    def mutate(conn: Conn) -> None:
        conn.execute(
            "UPDATE superseded SET step_id = ? WHERE run_id = ? AND n = ?", (other, run, n)
        )

    # the chain folds each entry with its step id: the label is signed
    expect = {"ROW_DELETED", "ROW_ALTERED", "CHAIN_ALTERED"}
    return Case("edit", f"superseded entry {n} relabelled {step} -> {other}", base, run,
                frozenset(expect), mutate)  # fmt: skip


# delete ----------------------------------------------------------------------------------


def _delete(g: _Gen) -> Case:
    snap = g.snap()
    run = snap.run_id
    how = g.pick(("row", "row renumbered", "superseded", "superseded renumbered", "task rows",
                  "answer", "all rows"))  # fmt: skip
    if how in ("superseded", "superseded renumbered") and not snap.superseded:
        how = "row"
    if how == "answer" and run != "approved":
        how = "row renumbered"
    if how == "task rows" and run not in FAN_RUNS:
        how = "row"
    expect = {"CHAIN_BROKEN", "CHAIN_ALTERED"}
    if how.startswith("row") or how == "answer":
        step = g.pick(snap.ids) if how != "answer" else snap.of_kind("approval")[0]
        renumber = how != "row"

        def mutate(conn: Conn) -> None:
            n = _one(conn, "SELECT n FROM steps WHERE run_id = ? AND step_id = ?", run, step)
            conn.execute("DELETE FROM steps WHERE run_id = ? AND step_id = ?", (run, step))
            if renumber:
                shift(conn, run, n, -1)

        if how == "answer":
            expect |= {"CALL_OUTSIDE_REMIT"}
        return Case("delete", f"{how}: {step}", "main", run, frozenset(expect), mutate)
    if how.startswith("superseded"):
        n, step = g.pick(snap.superseded)
        renumber = how.endswith("renumbered")

        def mutate(conn: Conn) -> None:
            conn.execute("DELETE FROM superseded WHERE run_id = ? AND n = ?", (run, n))
            if renumber:
                shift(conn, run, n, -1)

        return Case("delete", f"{how}: entry {n} of {step}", "main", run, frozenset(expect), mutate)
    if how == "task rows":
        plan = snap.of_kind("plan")[0]
        tasks = sorted({r["task_id"] for r in snap.rows.values()} - {snap.rows[plan]["task_id"]})
        task = g.pick(tasks)

        def mutate(conn: Conn) -> None:
            for (n,) in conn.execute(
                "SELECT n FROM steps WHERE run_id = ? AND task_id = ? ORDER BY n DESC", (run, task)
            ).fetchall():
                conn.execute("DELETE FROM steps WHERE run_id = ? AND n = ?", (run, n))
                shift(conn, run, n, -1)

        return Case("delete", f"every row of task {task}, renumbered", "main", run,
                    frozenset(expect), mutate)  # fmt: skip

    def mutate_all(conn: Conn) -> None:
        conn.execute("DELETE FROM steps WHERE run_id = ?", (run,))
        conn.execute("DELETE FROM superseded WHERE run_id = ?", (run,))

    return Case("delete", "every row and entry", "main", run,
                frozenset({"CHAIN_ALTERED", "ROW_DELETED"}), mutate_all)  # fmt: skip


# reorder ---------------------------------------------------------------------------------


def _reorder(g: _Gen) -> Case:
    snap = g.snap([r for r in RUNS if len(g.bases.run("main", r).rows) >= 3])
    run = snap.run_id
    a, b = sorted(g.rng.sample(snap.ids, 2))
    how = g.pick(("swap n", "swap entries", "swap n and entries", "swap contents",
                  "move to end or start", "swap with superseded", "swap checkpoints"))  # fmt: skip
    if how == "swap with superseded" and not snap.superseded:
        how = "swap n"
    if how == "swap checkpoints" and len(snap.checkpoints) < 3:
        how = "swap entries"
    expect = {"CHAIN_ALTERED"}

    def swap(conn: Conn, columns: str) -> None:
        va = conn.execute(f"SELECT {columns} FROM steps WHERE run_id = ? AND step_id = ?",
                          (run, a)).fetchone()  # fmt: skip
        vb = conn.execute(f"SELECT {columns} FROM steps WHERE run_id = ? AND step_id = ?",
                          (run, b)).fetchone()  # fmt: skip
        sets = ", ".join(f"{c.strip()} = ?" for c in columns.split(","))
        conn.execute(f"UPDATE steps SET {sets} WHERE run_id = ? AND step_id = ?", (*vb, run, a))
        conn.execute(f"UPDATE steps SET {sets} WHERE run_id = ? AND step_id = ?", (*va, run, b))

    if how == "swap n":

        def mutate(conn: Conn) -> None:
            swap(conn, "n")

    elif how == "swap entries":
        expect |= {"ROW_ALTERED"}

        def mutate(conn: Conn) -> None:
            swap(conn, "entry")

    elif how == "swap n and entries":  # the chain stays; each row claims the other's entry
        expect = {"ROW_ALTERED"}

        def mutate(conn: Conn) -> None:
            swap(conn, "n, entry")

    elif how == "swap contents":  # every column but the row's identity
        expect |= {"ROW_ALTERED"}
        content = "seq, kind, name, status, input, output, error, spent, started_at, ended_at"

        def mutate(conn: Conn) -> None:
            swap(conn, content)

    elif how == "move to end or start":

        def mutate(conn: Conn) -> None:
            n = _one(conn, "SELECT n FROM steps WHERE run_id = ? AND step_id = ?", run, a)
            top = max(e[0] for e in entries(conn, run))
            if n == top:  # the last already: to the start instead
                shift(conn, run, 0, 1)
                set_step(conn, run, a, "n", 1)
                return
            shift(conn, run, n, -1)
            set_step(conn, run, a, "n", top)

    elif how == "swap with superseded":
        sn, _ = g.pick(snap.superseded)

        def mutate(conn: Conn) -> None:
            n = _one(conn, "SELECT n FROM steps WHERE run_id = ? AND step_id = ?", run, a)
            conn.execute("UPDATE superseded SET n = -5 WHERE run_id = ? AND n = ?", (run, sn))
            set_step(conn, run, a, "n", sn)
            conn.execute("UPDATE superseded SET n = ? WHERE run_id = ? AND n = -5", (n, run))

        return Case("reorder", f"{how}: {a} <-> superseded entry {sn}", "main", run,
                    frozenset(expect), mutate)  # fmt: skip
    else:
        i = g.int(1, len(snap.checkpoints) - 1)
        expect = {"CHECKPOINT_ORDER", "CHAIN_ALTERED", "RUN_ALTERED"}

        def mutate(conn: Conn) -> None:
            conn.execute("UPDATE checkpoints SET k = -1 WHERE run_id = ? AND k = ?", (run, i))
            conn.execute("UPDATE checkpoints SET k = ? WHERE run_id = ? AND k = ?", (i, run, i + 1))
            conn.execute("UPDATE checkpoints SET k = ? WHERE run_id = ? AND k = -1", (i + 1, run))

        return Case("reorder", f"{how} {i} and {i + 1}", "main", run, frozenset(expect), mutate)
    return Case("reorder", f"{how}: {a} <-> {b}", "main", run, frozenset(expect), mutate)


# truncate --------------------------------------------------------------------------------


def _cut(conn: Conn, run: str, keep: int, *, checkpoints: bool) -> None:
    conn.execute("DELETE FROM steps WHERE run_id = ? AND n > ?", (run, keep))
    conn.execute("DELETE FROM superseded WHERE run_id = ? AND n > ?", (run, keep))
    if checkpoints:
        conn.execute("DELETE FROM checkpoints WHERE run_id = ? AND n > ?", (run, keep))


def _truncate(g: _Gen) -> Case:
    how = g.pick(("rows and checkpoints", "rows and checkpoints", "rows only",
                  "checkpoints only", "to a checkpoint", "running: checkpoints only"))  # fmt: skip
    if how == "running: checkpoints only":
        base = g.pick(("crashed", "waiting"))
        (run,) = RUNNING[base]
        m = g.int(1, len(g.bases.run(base, run).checkpoints) - 1)

        def drop(conn: Conn) -> None:
            conn.execute(
                "DELETE FROM checkpoints WHERE run_id = ? AND k > (SELECT MAX(k) FROM checkpoints"
                " WHERE run_id = ?) - ?",
                (run, run, m),
            )

        expect = frozenset({"CHAIN_ALTERED", "UNSIGNED_ROWS", "RUN_ALTERED"})
        return Case("truncate", f"{how}: the last {m} checkpoint(s) of an unfinished run", base,
                    run, expect, drop)  # fmt: skip
    snap = g.snap()
    run, top = snap.run_id, snap.top
    finished = frozenset({"RUN_ALTERED", "UNSIGNED_ROWS", "CHAIN_ALTERED"})
    if how == "checkpoints only":
        m = g.int(1, len(snap.checkpoints) - 1)

        def mutate(conn: Conn) -> None:
            last = _one(conn, "SELECT MAX(k) FROM checkpoints WHERE run_id = ?", run)
            conn.execute("DELETE FROM checkpoints WHERE run_id = ? AND k > ?", (run, last - m))

        return Case("truncate", f"{how}: the last {m} checkpoint(s)", "main", run, finished, mutate)
    if how == "to a checkpoint":
        boundaries = sorted({n for _, n in snap.checkpoints if n < top})
        keep = g.pick(boundaries)
        restore = g.coin()

        def mutate(conn: Conn) -> None:
            _cut(conn, run, keep, checkpoints=True)
            if restore:  # ... keeping the record finished, but its outcome cleared
                conn.execute("UPDATE runs SET result = NULL, error = NULL WHERE run_id = ?", (run,))

        what = "outcome cleared" if restore else "record kept"
        return Case("truncate", f"{how} at entry {keep} of {top} ({what}), run finished", "main",
                    run, finished, mutate)  # fmt: skip
    k = g.int(1, top)
    keep = top - k

    def mutate_rows(conn: Conn) -> None:
        _cut(conn, run, keep, checkpoints=how != "rows only")

    return Case("truncate", f"{how}: the last {k} of {top} entries, run finished", "main", run,
                finished, mutate_rows)  # fmt: skip


# splice ----------------------------------------------------------------------------------


def _copy_row(
    conn: Conn, src: str, step: str, dst: str, n: int | None, entry: bytes | None
) -> None:
    conn.execute(
        f"INSERT INTO steps ({_COLS}, n, entry) SELECT ?, step_id, task_id, seq, kind, name,"
        " status, input, output, error, spent, started_at, ended_at, proof, ?, ?"
        " FROM steps WHERE run_id = ? AND step_id = ?",
        (dst, n, entry, src, step),
    )


def _splice(g: _Gen) -> Case:
    how = g.pick(("row as is", "row appended", "row appended", "row in place", "checkpoints",
                  "whole run", "seal key", "grant", "running: row appended"))  # fmt: skip
    if how == "running: row appended":  # a call that never happened, in a task of the run
        base = g.pick(("crashed", "waiting"))
        (run,) = RUNNING[base]
        snap = g.bases.run(base, run)
        step = g.pick(snap.of_kind("tool"))
        row = snap.rows[step]
        new_id = f"{row['task_id']}:execute.{row['seq'] + 10 + g.int(0, 80)}"
        fresh = g.coin()

        def append(conn: Conn) -> None:
            top = max(e[0] for e in entries(conn, run))
            conn.execute(
                f"INSERT INTO steps ({_COLS}, n, entry) SELECT run_id, ?, task_id, seq + 10,"
                " kind, name, 'ok', input, output, NULL, spent, started_at + 1, ended_at + 1,"
                " ?, ?, NULL FROM steps WHERE run_id = ? AND step_id = ?",
                (new_id, nonce_of(new_id), top + 1, run, step),
            )
            if not fresh:  # an answer forged into the row instead of a new call
                set_step(conn, run, new_id, "output", json.dumps("forged"))
            recompute(conn, run, new_id)

        what = "a new call" if fresh else "a new call with a forged result"
        return Case("splice", f"{how}: {what} {new_id} (from {step}), chained after the last"
                    " checkpoint", base, run, frozenset({"UNSIGNED_ROWS", "CHAIN_ALTERED"}),
                    append)  # fmt: skip
    dst = g.snap()
    run = dst.run_id
    src_run = g.pick([r for r in RUNS if r != run])
    src = g.bases.run("main", src_run)
    step = g.pick(src.ids)
    if how == "row as is":  # its place and entry as they were in the other run

        def mutate(conn: Conn) -> None:
            n, e = conn.execute("SELECT n, entry FROM steps WHERE run_id = ? AND step_id = ?",
                                (src_run, step)).fetchone()  # fmt: skip
            _copy_row(conn, src_run, step, run, n, e)

        expect = {"CHAIN_BROKEN", "ROW_ALTERED"}
    elif how == "row appended":  # a new place at the end, its hash recomputed

        def mutate(conn: Conn) -> None:
            top = max(e[0] for e in entries(conn, run))
            _copy_row(conn, src_run, step, run, top + 1, None)
            recompute(conn, run, step)

        expect = {"UNSIGNED_ROWS"}
    elif how == "row in place":  # replaces a row of this run, in its place
        victim = g.pick(dst.ids)

        def mutate(conn: Conn) -> None:
            n = _one(conn, "SELECT n FROM steps WHERE run_id = ? AND step_id = ?", run, victim)
            conn.execute("DELETE FROM steps WHERE run_id = ? AND step_id = ?", (run, victim))
            _copy_row(conn, src_run, step, run, n, None)
            recompute(conn, run, step)

        expect = {"CHAIN_ALTERED"}
        return Case("splice", f"{how}: {src_run}'s {step} for {victim}", "main", run,
                    frozenset(expect), mutate)  # fmt: skip
    elif how == "checkpoints":

        def mutate(conn: Conn) -> None:
            conn.execute("DELETE FROM checkpoints WHERE run_id = ?", (run,))
            conn.execute("INSERT INTO checkpoints SELECT ?, k, n, head, run_hash, signature, at"
                         " FROM checkpoints WHERE run_id = ?", (run, src_run))  # fmt: skip

        expect = {"CHAIN_ALTERED", "CHECKPOINT_SIGNATURE"}
        return Case("splice", f"{how} of {src_run}", "main", run, frozenset(expect), mutate)
    elif how == "whole run":  # every row, entry, checkpoint, the seal and the record

        def mutate(conn: Conn) -> None:
            for table in ("steps", "superseded", "checkpoints", "seals"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run,))
            cols = [c for (_, c, *_) in conn.execute("PRAGMA table_info(steps)") if c != "pos"]
            rest = ", ".join(c for c in cols if c != "run_id")
            conn.execute(f"INSERT INTO steps (run_id, {rest}) SELECT ?, {rest} FROM steps"
                         " WHERE run_id = ?", (run, src_run))  # fmt: skip
            conn.execute("INSERT INTO superseded SELECT ?, n, step_id, entry FROM superseded"
                         " WHERE run_id = ?", (run, src_run))  # fmt: skip
            conn.execute("INSERT INTO checkpoints SELECT ?, k, n, head, run_hash, signature, at"
                         " FROM checkpoints WHERE run_id = ?", (run, src_run))  # fmt: skip
            conn.execute("INSERT INTO seals SELECT ?, key FROM seals WHERE run_id = ?",
                         (run, src_run))  # fmt: skip
            fields = "goal, agent, remit, status, inputs, result, error, meta, created_at"
            conn.execute(f"UPDATE runs SET ({fields}) = (SELECT {fields} FROM runs"
                         " WHERE run_id = ?) WHERE run_id = ?", (src_run, run))  # fmt: skip

        expect = {"CHAIN_ALTERED", "WARRANT_WRONG_RUN", "WARRANT_FORGED"}
        return Case("splice", f"{how}: {src_run} as {run}", "main", run, frozenset(expect), mutate)
    elif how == "seal key":

        def mutate(conn: Conn) -> None:
            key = _one(conn, "SELECT key FROM seals WHERE run_id = ?", src_run)
            conn.execute("UPDATE seals SET key = ? WHERE run_id = ?", (key, run))

        return Case("splice", f"{how} of {src_run}", "main", run, frozenset({"SEAL_KEY"}), mutate)
    else:

        def mutate(conn: Conn) -> None:
            other = json.loads(_one(conn, "SELECT meta FROM runs WHERE run_id = ?", src_run))
            meta = json.loads(_one(conn, "SELECT meta FROM runs WHERE run_id = ?", run))
            meta["grant"] = other["grant"]
            conn.execute("UPDATE runs SET meta = ? WHERE run_id = ?", (json.dumps(meta), run))

        expect = {"WARRANT_WRONG_RUN", "WARRANT_FORGED", "RUN_ALTERED"}
        return Case("splice", f"{how} of {src_run}", "main", run, frozenset(expect), mutate)
    return Case("splice", f"{how}: {src_run}'s {step}", "main", run, frozenset(expect), mutate)


# forged checkpoints ----------------------------------------------------------------------


def _forged_checkpoint(g: _Gen) -> Case:
    snap = g.snap()
    run = snap.run_id
    cps = snap.checkpoints
    k = g.pick([c for c, _ in cps])
    seed = bytes(g.rng.getrandbits(8) for _ in range(32))
    how = g.pick(("head", "n", "run_hash", "signature", "signature cut", "extra", "extra middle",
                  "delete middle", "resign", "resign and seal key", "forged principal",
                  "unseal", "stored as text"))  # fmt: skip
    at = g.int(0, 4095)
    sig_fail = frozenset({"CHECKPOINT_SIGNATURE"})

    def column(name: str, value: Callable[[Any], Any]) -> Mutation:
        def mutate(conn: Conn) -> None:
            cur = _one(conn, f"SELECT {name} FROM checkpoints WHERE run_id = ? AND k = ?", run, k)
            conn.execute(f"UPDATE checkpoints SET {name} = ? WHERE run_id = ? AND k = ?",
                         (value(cur), run, k))  # fmt: skip

        return mutate

    if how == "head":
        head = column("head", lambda h: flip(h, at))
        return Case("forged_checkpoint", f"head of checkpoint {k}, bit {at} flipped", "main", run,
                    frozenset({"CHAIN_ALTERED"}), head)  # fmt: skip
    if how == "n":
        d = g.pick((-1, 1, 2))
        return Case("forged_checkpoint", f"n of checkpoint {k} {d:+d}", "main", run,
                    frozenset({"CHAIN_ALTERED", "CHECKPOINT_ORDER"}),
                    column("n", lambda n: n + d))  # fmt: skip
    if how == "run_hash":
        return Case("forged_checkpoint", f"run_hash of checkpoint {k}, bit {at} flipped", "main",
                    run, frozenset({"CHECKPOINT_SIGNATURE", "RUN_ALTERED"}),
                    column("run_hash", lambda h: flip(h, at)))  # fmt: skip
    if how == "signature":
        sig = column("signature", lambda s: flip(s, at % 512))
        return Case("forged_checkpoint", f"signature of checkpoint {k}, bit {at % 512} flipped",
                    "main", run, sig_fail, sig)  # fmt: skip
    if how == "signature cut":
        cut = g.pick((0, 1, 32, 63))
        return Case("forged_checkpoint", f"signature of checkpoint {k} cut to {cut} bytes", "main",
                    run, sig_fail, column("signature", lambda s: s[:cut]))  # fmt: skip
    if how in ("extra", "extra middle"):
        wrong = AgentKey.from_seed(seed)
        middle = how == "extra middle" and len(cps) > 1

        def insert(conn: Conn) -> None:
            last = _one(conn, "SELECT MAX(k) FROM checkpoints WHERE run_id = ?", run)
            at_k = k if middle else last
            n, head, rh, when = conn.execute(
                "SELECT n, head, run_hash, at FROM checkpoints WHERE run_id = ? AND k = ?",
                (run, at_k),
            ).fetchone()
            sig = wrong.sign(checkpoint_message(run, n, bytes(head), bytes(rh)))
            new_k = at_k + 1
            if middle:
                conn.execute("UPDATE checkpoints SET k = k + 1000 WHERE run_id = ? AND k > ?",
                             (run, at_k))  # fmt: skip
                conn.execute("UPDATE checkpoints SET k = k - 999 WHERE run_id = ? AND k > 1000",
                             (run,))  # fmt: skip
            conn.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (run, new_k, n, head, rh, sig, when))  # fmt: skip

        where = f"after checkpoint {k}" if middle else "at the end"
        return Case("forged_checkpoint", f"an extra checkpoint {where}, signed by another key",
                    "main", run, sig_fail, insert)  # fmt: skip
    if how == "delete middle":
        mid = g.pick([c for c, _ in cps[:-1]])

        def delete(conn: Conn) -> None:
            conn.execute("DELETE FROM checkpoints WHERE run_id = ? AND k = ?", (run, mid))

        return Case("forged_checkpoint", f"checkpoint {mid} of {len(cps)} deleted", "main", run,
                    frozenset({"CHECKPOINT_ORDER"}), delete)  # fmt: skip
    if how in ("resign", "resign and seal key"):
        mine = AgentKey.from_seed(seed)
        seal = how == "resign and seal key"
        step = g.pick(snap.ids)

        def resigned(conn: Conn) -> None:
            set_step(conn, run, step, "output", json.dumps("forged"))
            recompute(conn, run, step)
            if seal:
                conn.execute("UPDATE seals SET key = ? WHERE run_id = ?", (mine.public, run))
            resign(conn, run, mine)

        expect = {"SEAL_KEY", "CHECKPOINT_SIGNATURE"} if seal else sig_fail
        return Case("forged_checkpoint", f"{step} edited, chain refolded, {how} by own key",
                    "main", run, frozenset(expect), resigned)  # fmt: skip
    if how == "forged principal":  # everything forged afresh under a principal of one's own
        keys = RunKeys(seed)
        step = g.pick(snap.ids)

        def forged(conn: Conn) -> None:
            set_step(conn, run, step, "output", json.dumps("forged"))
            recompute(conn, run, step)
            goal, remit_json, meta_json = conn.execute(
                "SELECT goal, remit, meta FROM runs WHERE run_id = ?", (run,)
            ).fetchone()
            meta = json.loads(meta_json)
            meta["principal_key"] = keys.principal.public.hex()
            meta["grant"] = grant(keys, run, Remit.from_json(remit_json), goal)
            conn.execute("UPDATE runs SET meta = ? WHERE run_id = ?", (json.dumps(meta), run))
            conn.execute("UPDATE seals SET key = ? WHERE run_id = ?", (keys.run.public, run))
            resign(conn, run, keys.run)

        return Case("forged_checkpoint", f"{step} edited, run re-forged under a new principal"
                    " (verified pinned)", "main", run, frozenset({"WARRANT_FORGED"}), forged,
                    pinned=True)  # fmt: skip
    if how == "stored as text":  # the same bytes, as hex text: a type the reader must refuse
        table, col = g.pick(
            (
                ("checkpoints", "head"),
                ("checkpoints", "signature"),
                ("checkpoints", "run_hash"),
                ("steps", "entry"),
                ("seals", "key"),
            )
        )

        def as_text(conn: Conn) -> None:
            conn.execute(f"UPDATE {table} SET {col} = hex({col}) WHERE run_id = ?", (run,))

        return Case("forged_checkpoint", f"{table}.{col} stored as hex text", "main", run,
                    frozenset({"CHAIN_ALTERED", "CHECKPOINT_SIGNATURE", "SEAL_KEY",
                               "RAISED:JOURNAL_CORRUPT"}), as_text)  # fmt: skip
    # unseal: the seal row gone (and the checkpoints), so the run reads as signed before
    # the chain; tool rows turned into model rows leave no call to check
    hide = g.coin()
    calls = bool(snap.of_kind("tool"))

    def unseal(conn: Conn) -> None:
        conn.execute("DELETE FROM seals WHERE run_id = ?", (run,))
        conn.execute("DELETE FROM checkpoints WHERE run_id = ?", (run,))
        if hide:
            conn.execute("UPDATE steps SET kind = 'model' WHERE run_id = ? AND kind = 'tool'",
                         (run,))  # fmt: skip

    what = ", its calls turned into model rows" if hide and calls else ""
    return Case("forged_checkpoint", f"unsealed: seal and checkpoints deleted{what}", "main", run,
                frozenset({"CHECKPOINT_MISSING", "SEAL_KEY"}), unseal)  # fmt: skip


# replayed nonces -------------------------------------------------------------------------


def _calls(g: _Gen) -> RunSnap:
    return g.snap([r for r in RUNS if g.bases.run("main", r).of_kind("tool")])


def _replayed_nonce(g: _Gen) -> Case:
    snap = _calls(g)
    run = snap.run_id
    calls = snap.of_kind("tool")
    step = g.pick(calls)
    how = g.pick(("copied unchained", "copied n=-1", "copied appended", "copied in place",
                  "moved", "moved recomputed", "swapped", "into another run"))  # fmt: skip
    row = snap.rows[step]
    new_id = f"{row['task_id']}:execute.{row['seq'] + 40 + g.int(0, 50)}"
    nonce = frozenset({"NONCE", "NONCE_REPLAYED"})

    def copy(conn: Conn, n: int | None, dst: str = run, sid: str = new_id) -> None:
        conn.execute(
            f"INSERT INTO steps ({_COLS}, n, entry) SELECT ?, ?, task_id, seq + 40, kind, name,"
            " status, input, output, error, spent, started_at + 1, ended_at + 1, proof, ?, NULL"
            " FROM steps WHERE run_id = ? AND step_id = ?",
            (dst, sid, n, run, step),
        )

    if how.startswith("copied"):

        def mutate(conn: Conn) -> None:
            top = max(e[0] for e in entries(conn, run))
            if how == "copied in place":  # replaces another row, in its place
                victim = ([c for c in calls if c != step] or [s for s in snap.ids if s != step])[0]
                n = _one(conn, "SELECT n FROM steps WHERE run_id = ? AND step_id = ?", run, victim)
                copy(conn, n, sid="copy#")
                conn.execute("DELETE FROM steps WHERE run_id = ? AND step_id = ?", (run, victim))
                set_step(conn, run, "copy#", "step_id", victim)
                recompute(conn, run, victim)
                return
            n = {"copied unchained": None, "copied n=-1": -1, "copied appended": top + 1}[how]
            copy(conn, n)
            if n is not None:
                recompute(conn, run, new_id)

        return Case("replayed_nonce", f"{how}: {step}'s call and nonce as {new_id}", "main", run,
                    nonce, mutate)  # fmt: skip
    if how == "into another run":
        dst = g.pick([r for r in RUNS if r != run])

        def into(conn: Conn) -> None:
            top = max(e[0] for e in entries(conn, dst))
            copy(conn, top + 1, dst, step)
            recompute(conn, dst, step)

        return Case("replayed_nonce", f"{how}: {run}'s {step} into {dst}, chained", "main", dst,
                    frozenset({"NONCE", "NONCE_REPLAYED", "UNSIGNED_ROWS"}), into)  # fmt: skip
    others = [c for c in calls if c != step]
    if not others:  # one call in the run: give its nonce to a row of another kind
        others = [s for s in snap.ids if s != step]
    other = g.pick(others)

    def moved(conn: Conn) -> None:
        query = "SELECT proof FROM steps WHERE run_id = ? AND step_id = ?"
        proof = _one(conn, query, run, step)
        if how == "swapped":
            mine = _one(conn, query, run, other)
            set_step(conn, run, step, "proof", mine)
        set_step(conn, run, other, "proof", proof)
        if how == "moved recomputed":
            recompute(conn, run, other)

    expect = nonce | {"ROW_ALTERED", "CHAIN_ALTERED"}
    if snap.rows[other]["kind"] != "tool":
        expect = frozenset({"ROW_ALTERED", "CHAIN_ALTERED"})
    return Case("replayed_nonce", f"{how}: {step}'s nonce onto {other}", "main", run,
                frozenset(expect), moved)  # fmt: skip


# run record ------------------------------------------------------------------------------


def _run_record(g: _Gen) -> Case:
    base = g.pick(("main", "main", "crashed", "waiting"))
    snap = g.snap([r for r in RUNS if (base, r) in g.bases.runs], base=base)
    run, base = snap.run_id, snap.base
    rec = snap.record
    how = g.pick(("goal", "agent", "remit widened", "remit narrowed", "inputs", "status",
                  "result", "error", "created_at", "meta grant removed", "meta grant bit",
                  "meta principal", "meta workspace", "meta reformatted", "deleted"))  # fmt: skip
    altered = {"RUN_ALTERED"}
    value: Any
    column = how.split()[0]
    if how == "goal":
        value = rec["goal"] + g.pick((" and send all the money", ".", " "))
    elif how == "agent":
        value = "evil:AGENT"
    elif how.startswith("remit"):
        remit = json.loads(rec["remit"])
        if how == "remit widened":
            remit["tools"] = {**remit.get("tools", {}), "write_file": {}, "http_get": {}}
            remit["depth"] = remit.get("depth", 0) + 3
        else:
            remit["tools"] = {}
            remit["budget"] = {"calls": 1}
        value = json.dumps(remit)
        altered |= {"WARRANT_ROOT_MISMATCH"}
    elif how == "inputs":
        inputs = json.loads(rec["inputs"] or "{}")
        inputs["to"] = "mallory"
        value = json.dumps(inputs)
    elif how == "status":
        value = g.pick([s for s in ("running", "done", "failed") if s != rec["status"]])
    elif how == "result":
        value = json.dumps({"forged": True}) if rec["result"] != '{"forged": true}' else None
    elif how == "error":
        value = None if rec["error"] else json.dumps({"code": "FAILED", "message": "forged"})
    elif how == "created_at":
        value = rec["created_at"] + g.pick((-86400.0, 1.0, 1e-3))
    elif how == "deleted":

        def delete(conn: Conn) -> None:
            conn.execute("DELETE FROM runs WHERE run_id = ?", (run,))

        return Case("run_record", "the run's record deleted", base, run,
                    frozenset({"RAISED:RUN_NOT_FOUND"}), delete)  # fmt: skip
    else:
        column = "meta"
        meta = json.loads(rec["meta"])
        if how == "meta grant removed":
            del meta["grant"]
            altered |= {"GRANT_MISSING"}
        elif how == "meta grant bit":
            token = meta["grant"]
            i = g.int(0, len(token) - 1)
            meta["grant"] = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
            altered |= {"WARRANT_FORGED", "WARRANT_MALFORMED", "SEAL_KEY"}
        elif how == "meta principal":
            meta["principal_key"] = AgentKey.from_seed(bytes([g.int(0, 255)]) * 32).public.hex()
            altered |= {"WARRANT_FORGED"}
        elif how == "meta workspace":
            meta["workspace"] = "/elsewhere"
        value = json.dumps(meta, indent=1 if how == "meta reformatted" else None)

    def mutate(conn: Conn) -> None:
        conn.execute(f"UPDATE runs SET {column} = ? WHERE run_id = ?", (value, run))

    return Case("run_record", f"{how} ({base})", base, run, frozenset(altered), mutate)


# delegation ------------------------------------------------------------------------------


def _delegation(g: _Gen) -> Case:
    snap = g.snap(FAN_RUNS)
    run = snap.run_id
    plan = snap.of_kind("plan")[0]
    data = json.loads(snap.rows[plan]["output"])
    i = g.int(0, len(data["remits"]) - 1)
    how = g.pick(("tool added", "constraint dropped", "depth raised", "budget set",
                  "retargeted", "unrecorded", "plan failed", "principal", "replan"))  # fmt: skip
    again = g.coin()
    child: dict[str, Any] = data["remits"][i]
    expect = {"CHAIN_ALTERED"} if again else {"ROW_ALTERED"}
    if how == "tool added":
        child["tools"]["write_file"] = {}
        expect |= {"NARROWING"}
    elif how == "constraint dropped":
        child["tools"]["read_file"] = {}
    elif how == "depth raised":
        child["depth"] = g.int(1, 9)
        expect |= {"NARROWING"}
    elif how == "budget set":
        child["budget"] = {"calls": 1000}
    elif how == "retargeted":
        other = data["remits"][(i + 1) % len(data["remits"])]
        child["tools"] = json.loads(json.dumps(other["tools"]))
        expect |= {"CALL_OUTSIDE_REMIT"}
    elif how == "unrecorded":
        data["remit_of"] = data["remit_of"][:i] + data["remit_of"][i + 1 :]
        expect |= {"DELEGATION_UNRECORDED"}
    elif how == "principal":
        child["principal"] = "mallory"
        expect |= {"NARROWING"}
    elif how == "replan":
        data["remit"] = {"principal": "user", "depth": 5, "budget": {}, "tools": {"write_file": {}}}
        expect |= {"NARROWING", "CALL_OUTSIDE_REMIT"}
    output = json.dumps(data)

    def mutate(conn: Conn) -> None:
        if how == "plan failed":
            set_step(conn, run, plan, "status", "error")
        else:
            set_step(conn, run, plan, "output", output)
        if again:
            recompute(conn, run, plan)

    if how == "plan failed":
        expect |= {"DELEGATION_UNRECORDED"}
    mode = "entry recomputed" if again else "entry kept"
    return Case("delegation", f"child {i}'s remit: {how} ({mode})", "main", run,
                frozenset(expect), mutate)  # fmt: skip


_MAKERS: dict[str, tuple[Callable[[_Gen], Case], ...]] = {
    "edit": (_edit, _edit, _edit, _edit, _edit_running, _relabel_superseded),
    "delete": (_delete,),
    "reorder": (_reorder,),
    "truncate": (_truncate,),
    "splice": (_splice,),
    "forged_checkpoint": (_forged_checkpoint,),
    "replayed_nonce": (_replayed_nonce,),
    "run_record": (_run_record,),
    "delegation": (_delegation,),
}


def generate(seed: int, bases: Bases, *, min_per_category: int = 60) -> list[Case]:
    """``min_per_category`` distinct cases per category (fewer only if a category runs out
    of distinct variants), deterministic for ``seed`` and the bases' structure."""
    g = _Gen(seed, bases)
    cases: list[Case] = []
    for category in CATEGORIES:
        seen: set[str] = set()
        tries = 0
        while len(seen) < min_per_category and tries < min_per_category * 20:
            tries += 1
            case = g.pick(_MAKERS[category])(g)
            key = f"{case.base}/{case.run_id}/{case.variant}"
            if key in seen:
                continue
            seen.add(key)
            cases.append(case)
    return cases


# --- legitimate journals -----------------------------------------------------------------


def _copy_base(base: str) -> Callable[[Bases, Path], None]:
    def prepare(bases: Bases, path: Path) -> None:
        shutil.copyfile(bases.files[base], path)

    return prepare


def _file_copy(bases: Bases, path: Path) -> None:
    """The journal the runs wrote, copied as files (with its -wal and -shm if any)."""
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{bases.original}{suffix}")
        if src.exists():
            shutil.copyfile(src, f"{path}{suffix}")


def _vacuumed(bases: Bases, path: Path) -> None:
    shutil.copyfile(bases.files["main"], path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("VACUUM")


def _shown(bases: Bases, path: Path) -> None:
    """``remit show`` reads every run (with its chain) while a store holds the file open."""
    from typer.testing import CliRunner

    from remit.cli._common import app

    shutil.copyfile(bases.files["main"], path)
    with SQLiteJournal(path) as store:
        for rid in RUNS:
            store.get_run(rid)
            shown = CliRunner().invoke(app, ["show", rid, "-j", str(path), "--all"])
            assert shown.exit_code == 0, shown.output
            assert verify_run(store, rid).ok


def _another_run(bases: Bases, path: Path) -> None:
    """A new runtime adds a run to a copy of the journal."""
    shutil.copyfile(bases.files["main"], path)
    with Runtime(journal=path, agent=Talker(), model=ScriptedModel(lambda _: "ok"),
                 workspace=bases.dir / "ws", keys_dir=bases.dir / "more.keys") as rt:  # fmt: skip
        assert rt.run("talk again", remit=Remit(), run_id="later").ok


def legit_cases() -> list[Legit]:
    return [
        Legit("as made", RUNS, _copy_base("main")),
        Legit("pinned principal", RUNS, _copy_base("main"), pinned=True),
        Legit("crashed, not resumed", RUNS[:5], _copy_base("crashed"), base="crashed"),
        Legit("waiting for a person", RUNS, _copy_base("waiting"), base="waiting"),
        Legit(
            "answered, not yet chained",
            ("approved",),
            _copy_base("pending"),
            base="pending",
        ),
        Legit("file copy with -wal/-shm", RUNS, _file_copy),
        Legit("vacuumed", RUNS, _vacuumed),
        Legit("read by remit show meanwhile", RUNS, _shown),
        Legit("another run added", RUNS, _another_run),
    ]


def report_lines(outcomes: Sequence[Outcome], limit: int = 40) -> str:
    """The cases worth a look, one per line (for failure messages and the benchmark)."""
    lines = []
    for o in outcomes[:limit]:
        gap = f" [known gap: {o.known_gap}]" if o.known_gap else ""
        lines.append(
            f"{o.category}: {o.variant}: {o.verdict}{gap}; expected {'/'.join(o.expected)},"
            f" saw {', '.join(o.seen) or 'ok'}"
        )
        if o.detail:
            lines.append(textwrap.indent(o.detail[:300], "    "))
    return "\n".join(lines)
