"""Provenance: the runtime's side of warrants (keys, minting, call proofs, offline audit).

:mod:`remit.trust.warrant` is the pure format. This module is how a run uses it:

- **Keys.** Each run has a 32-byte secret, kept *beside* the journal (never in it, never
  shown to a model): ``<journal>.keys/<run id>.key``, readable by its owner only. Every
  task's agent key is derived from it and the task id, so a resumed run signs with the
  same keys. The principal's key is the user's own (``Runtime(principal_key=...)``,
  ``remit run --principal-key FILE``) or, by default, one derived from the run secret;
  its public key is recorded in the run's metadata.
- **Minting.** When a task starts, the engine mints its hop: the root grant for the root
  task (signed by the principal), a delegation signed by the parent's agent key for
  every other task. The hop is journaled as the task's ``warrant`` step (its ``proof``
  column holds the hop) before any of the task's calls, so the journal on disk always
  holds the chain of every call it holds.
- **Calls.** Every tool call the Gate lets through carries its holder's
  :class:`~remit.trust.warrant.CallProof` over the validated arguments, in the call's own
  step row, written with its intent. The nonce is derived from the step id: unique in
  the run, and the same when a resumed run repeats a step that never finished.
- **Audit.** :func:`verify_run` re-verifies every call of a run from the journal alone
  and the principal's public key: each chain (signatures, links, narrowing, expiry at
  the time of the call), each proof (holder, digest, nonce used once) and each call
  against its task's remit. A call a person approved outside the remit is reported as
  such, with its approval step.

The runtime enforces the remit itself at the Gate; the signatures make that enforcement
checkable afterwards by anyone holding one public key (a journal edited after the fact,
or a call its chain does not authorize, fails verification).

>>> keys = RunKeys(b"s" * 32)
>>> keys.agent("t.0.abc").public == keys.agent("t.0.abc").public
True
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from remit.core.remit import Remit
from remit.errors import JournalError, RemitError, WarrantError, WarrantMalformed
from remit.journal import JournalStore, StepRecord
from remit.trust.warrant import (
    AgentKey,
    CallProof,
    Verifier,
    Warrant,
    chain_token,
    issue,
    sign_call,
)

__all__ = [
    "DEFAULT_TTL_S",
    "KeyFiles",
    "RunKeys",
    "RunVerification",
    "Signer",
    "hop_id_for",
    "load_principal_key",
    "narrowing",
    "verify_run",
]

#: how long a root grant lasts when the remit sets no deadline
DEFAULT_TTL_S: Final = 7 * 24 * 3600.0
#: the argument the Gate adds for effectful tools; not part of what the caller asked
IDEMPOTENCY_ARG: Final = "idempotency_key"


# --- keys -------------------------------------------------------------------------------


class RunKeys:
    """The keys of one run, derived from its secret (the only thing stored).

    ``principal`` overrides the derived principal key with the user's own.
    """

    __slots__ = ("_secret", "principal")

    def __init__(self, secret: bytes, principal: AgentKey | None = None) -> None:
        if len(secret) != 32:
            raise ValueError(f"a run secret is 32 bytes, got {len(secret)}")
        self._secret = bytes(secret)
        self.principal = principal or AgentKey.from_seed(self._derive(b"principal", b""))

    def _derive(self, person: bytes, data: bytes) -> bytes:
        return hashlib.blake2b(data, key=self._secret, person=person, digest_size=32).digest()

    def agent(self, task_id: str) -> AgentKey:
        """The agent key of task ``task_id`` (the same on every resume)."""
        return AgentKey.from_seed(self._derive(b"agent", task_id.encode("utf-8")))

    def seal(self, remit_json: str, principal_hex: str) -> str:
        """A MAC, under the run secret, of the root remit and principal as recorded when
        the run began: a resume checks the journal still says the same."""
        data = principal_hex.encode() + b"\x00" + remit_json.encode("utf-8")
        return self._derive(b"root-seal", data).hex()

    def __repr__(self) -> str:
        return f"RunKeys(principal={self.principal.public.hex()[:16]}...)"


class KeyFiles:
    """Run secrets as files beside a journal: ``<dir>/<run id>.key`` (hex, mode 0600).

    A journal that is not a file keeps its secrets in memory (for this process only).
    """

    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.dir = Path(directory) if directory is not None else None
        self._memory: dict[str, bytes] = {}

    @classmethod
    def beside(cls, journal: object) -> KeyFiles:
        """The key directory for a journal given as a path (``remit.db`` → ``remit.db.keys``)."""
        # a store that lives in a file (SQLiteJournal) keeps its keys beside that file
        where = (
            journal if isinstance(journal, str | os.PathLike) else getattr(journal, "path", None)
        )
        if isinstance(where, str | os.PathLike) and str(where) != ":memory:":  # pyright: ignore[reportUnknownArgumentType]
            path = Path(where)  # pyright: ignore[reportUnknownArgumentType]
            return cls(path.with_name(path.name + ".keys"))
        return cls(None)

    def _path(self, run_id: str) -> Path:
        assert self.dir is not None
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise ValueError(f"run id {run_id!r} cannot name a key file")
        return self.dir / f"{run_id}.key"

    def create(self, run_id: str, *, replace_leftover: bool = False) -> bytes:
        """A new secret for ``run_id``, stored before the run's first step.

        An existing key file is never overwritten, unless ``replace_leftover``: the
        caller has checked that the journal holds no run ``run_id``, so the file is a
        leftover of a run that was never recorded, and no signature depends on it.
        """
        secret = secrets.token_bytes(32)
        if self.dir is None:
            self._memory[run_id] = secret
            return secret
        path = self._path(run_id)
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if replace_leftover:
                # a fresh file beside it, then one rename: never a half-written key
                tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
                _write_secret(tmp, secret)
                os.replace(tmp, path)
            else:
                # O_EXCL: never overwrite the secret a journal's signatures depend on
                _write_secret(path, secret)
        except FileExistsError:
            raise JournalError(
                f"run {run_id}: a key file already exists at {path}; a run of this id may "
                "be recorded in another journal. Pick another run id"
            ) from None
        except OSError as e:
            raise JournalError(
                f"run {run_id}: cannot write its key file {path}: {e.strerror or e}; the "
                f"directory {self.dir} must be writable by you"
            ) from None
        return secret

    @contextlib.contextmanager
    def creating(self) -> Generator[None]:
        """Hold the key directory's lock while a run is created: two processes starting
        the same run id at once take turns, so the second finds the run recorded and
        neither replaces or removes the other's key."""
        if self.dir is None:
            yield
            return
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise JournalError(
                f"cannot use the key directory {self.dir}: {e.strerror or e}; it must be a "
                "directory you can write"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def discard(self, run_id: str) -> None:
        """Forget the secret of a run that never started (its record could not be made)."""
        if self.dir is None:
            self._memory.pop(run_id, None)
        else:
            self._path(run_id).unlink(missing_ok=True)

    def load(self, run_id: str) -> bytes:
        """The secret of ``run_id``; a clear error if it is gone."""
        if self.dir is None:
            secret = self._memory.get(run_id)
            if secret is None:
                raise JournalError(
                    f"run {run_id}: its signing secret was kept in memory by the process "
                    "that started it; resume it in that process, or give the Runtime a "
                    "journal path so secrets are kept in a key file"
                )
            return secret
        path = self._path(run_id)
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            raise JournalError(
                f"run {run_id}: its key file {path} is missing, so the run cannot sign "
                "its remaining steps; restore the file (it sits beside the journal)"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise JournalError(
                f"run {run_id}: cannot read its key file {path}: {why}; it must be a file "
                "you can read, holding 64 hex digits"
            ) from None
        secret = hex32(text)
        if secret is None:
            raise JournalError(f"run {run_id}: key file {path} is damaged (expected 64 hex digits)")
        return secret


def _write_secret(path: Path, secret: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_principal_key(path: str | os.PathLike[str]) -> AgentKey:
    """A principal key from a file holding its 32-byte seed as 64 hex digits.

    Create one with ``remit key new FILE``.
    """
    p = Path(path)
    try:
        text = p.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise RemitError(
            f"principal key {p}: cannot read it ({why}); make one with `remit key new {p}`"
        ) from None
    seed = hex32(text)
    if seed is None:
        raise RemitError(f"principal key {p}: expected 64 hex digits (a 32-byte seed)")
    return AgentKey.from_seed(seed)


def hex32(text: str) -> bytes | None:
    """The 32 bytes that 64 hex digits spell (a key or a secret), or None.

    >>> hex32("ab" * 32) == bytes([0xAB]) * 32, hex32("abc")
    (True, None)
    """
    try:
        data = bytes.fromhex(text.strip())
    except ValueError:
        return None
    return data if len(data) == 32 else None


# --- hops in the journal ------------------------------------------------------------------


def hop_id_for(task_id: str) -> str:
    """The hop id of a task: its id, or a digest of it if too long for a hop (255 bytes)."""
    if len(task_id.encode("utf-8")) <= 255:
        return task_id
    return "~" + hashlib.blake2b(task_id.encode("utf-8"), digest_size=16).hexdigest()


# --- minting and signing --------------------------------------------------------------------


class Signer:
    """Mints each task's hop and signs its calls, for one run (held by the runtime)."""

    def __init__(self, run_id: str, keys: RunKeys, principal_public: bytes | None = None) -> None:
        self.run_id = run_id
        self.keys = keys
        #: the principal the run recorded (a resumed run may lack the user's own key)
        self.principal_public = principal_public or keys.principal.public

    def root(
        self, task_id: str, remit: Remit, purpose: str, expires: float
    ) -> tuple[Warrant, AgentKey]:
        """The root grant: the principal gives the run's remit to the root task's agent
        (returned with that agent's key)."""
        if self.keys.principal.public != self.principal_public:
            raise RemitError(
                f"run {self.run_id}: its root grant must be issued by principal key "
                f"{self.principal_public.hex()[:16]}...; pass that key (--principal-key)"
            )
        key = self.keys.agent(task_id)
        warrant = issue(
            self.keys.principal,
            run_id=self.run_id,
            remit=remit,
            purpose=purpose[:2000],
            expires=expires,
            holder_public=key.public,
            hop_id=hop_id_for(task_id),
        )
        return warrant, key

    def delegate(
        self, parent: Warrant, parent_key: AgentKey, task_id: str, remit: Remit, expires: float
    ) -> tuple[Warrant, AgentKey]:
        """The parent's agent delegates ``remit`` to task ``task_id``'s agent."""
        key = self.keys.agent(task_id)
        warrant = parent.delegate(
            parent_key,
            remit,
            key.public,
            expires=min(expires, parent.expires),
            hop_id=hop_id_for(task_id),
        )
        return warrant, key

    def restore(
        self, parent: Warrant | None, task_id: str, frame: str, where: str
    ) -> tuple[Warrant, AgentKey]:
        """A task's warrant rebuilt from its journaled hop (a resumed run keeps its chain)."""
        frames = [frame] if parent is None else [*(h.frame() for h in parent.hops), frame]
        try:
            warrant = Warrant.decode(chain_token(self.principal_public, frames))
        except WarrantMalformed as e:
            raise WarrantMalformed(f"{where}: {e.message}") from None
        key = self.keys.agent(task_id)
        if warrant.holder != key.public:
            raise WarrantMalformed(f"{where}: the journaled hop names another holder key")
        return warrant, key

    @staticmethod
    def sign_call(
        warrant: Warrant, key: AgentKey, step_id: str, tool: str, args: Mapping[str, Any]
    ) -> str:
        """The holder's proof for one call (nonce derived from the step id)."""
        nonce = hashlib.blake2b(step_id.encode("utf-8"), digest_size=16).digest()
        return sign_call(key, warrant, tool, args, nonce).encode()


def signed_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a call proof covers: what the caller asked, as validated (the
    idempotency key the Gate adds is derived from the step, not asked for)."""
    return {k: v for k, v in args.items() if k != IDEMPOTENCY_ARG}


# --- narrowing, for people ---------------------------------------------------------------------


def narrowing(parent: Remit, child: Remit) -> list[str]:
    """How ``child`` narrows ``parent``, one short phrase per change.

    >>> from remit.policy import within
    >>> p = Remit(tools={"read": {}, "write": {}}, depth=2)
    >>> narrowing(p, p.narrow(tools={"read": {"path": within("src/")}}))
    ['tools: dropped write', 'read: path within src/', 'depth 2 -> 1']
    """
    out: list[str] = []
    a, b = parent.to_dict(), child.to_dict()
    dropped = sorted(set(a["tools"]) - set(b["tools"]))
    if dropped:
        out.append("tools: dropped " + ", ".join(dropped))
    for name, spec in sorted(b["tools"].items()):
        before = a["tools"].get(name, {})
        if spec == before:
            continue
        for arg, c in sorted(spec.items()):
            old = _as_list(before.get(arg))
            new = _as_list(c)
            if old == new:
                continue
            if new[: len(old)] == old:  # constraints stack: name only the added ones
                out.extend(f"{name}: {arg} {_spec_text(x)}" for x in new[len(old) :])
            else:
                out.append(f"{name}: {arg} {_spec_text(c)}")
    for dim, value in sorted(b["budget"].items()):
        old = a["budget"].get(dim)
        if old != value:
            out.append(
                f"budget.{dim} {_num(old) if old is not None else 'unlimited'} -> {_num(value)}"
            )
    if b.get("deadline") != a.get("deadline") and b.get("deadline") is not None:
        out.append(f"deadline -> {_when(b['deadline'])}")
    if b["depth"] != a["depth"]:
        out.append(f"depth {a['depth']} -> {b['depth']}")
    return out


def _as_list(spec: Any) -> list[Any]:
    if spec is None:
        return []
    return list(spec) if isinstance(spec, list) else [spec]  # pyright: ignore[reportUnknownArgumentType]


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


def _spec_text(spec: Any) -> str:
    if isinstance(spec, Mapping) and len(spec) == 1:  # pyright: ignore[reportUnknownArgumentType]
        ((op, value),) = spec.items()  # pyright: ignore[reportUnknownVariableType]
        return f"{op} {value if isinstance(value, str) else json.dumps(value)}"
    return json.dumps(spec, sort_keys=True)


# --- verifying a run from its journal ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """One step that did not verify."""

    step_id: str
    code: str
    message: str


@dataclass(slots=True)
class RunVerification:
    """What :func:`verify_run` found. ``ok`` when every call verified."""

    run_id: str
    principal: str
    #: where the principal key came from: "given" (pinned by the caller) or "journal"
    principal_source: str
    calls: int = 0
    approved: int = 0
    hops: int = 0
    longest_chain: int = 0
    failures: list[Failure] = field(default_factory=list[Failure])

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "principal": self.principal,
            "principal_source": self.principal_source,
            "calls": self.calls,
            "approved": self.approved,
            "hops": self.hops,
            "longest_chain": self.longest_chain,
            "failures": [
                {"step_id": f.step_id, "code": f.code, "message": f.message} for f in self.failures
            ],
        }


def _parent_task(task_id: str) -> str | None:
    cut = task_id.rfind("/")
    return task_id[:cut] if cut > 0 else None


class _Chains:
    """Chain tokens per task, assembled from the journal's warrant rows."""

    def __init__(self, principal: bytes, frames: Mapping[str, str]) -> None:
        self.principal = principal
        self.frames = frames
        self._tokens: dict[str, list[str]] = {}

    def frames_of(self, task_id: str) -> list[str]:
        got = self._tokens.get(task_id)
        if got is not None:
            return got
        frame = self.frames.get(task_id)
        if frame is None:
            raise WarrantMalformed(f"task {task_id} has no warrant hop in the journal")
        parent = _parent_task(task_id)
        chain = [*self.frames_of(parent), frame] if parent is not None else [frame]
        self._tokens[task_id] = chain
        return chain

    def token(self, task_id: str) -> str:
        try:
            return chain_token(self.principal, self.frames_of(task_id))
        except WarrantMalformed as e:
            raise WarrantMalformed(f"task {task_id} warrant: {e.message}") from None


def run_principal(store: JournalStore, run_id: str) -> bytes | None:
    """The principal public key a run recorded in its metadata (None if unsigned)."""
    meta = json.loads(store.get_run(run_id).meta or "{}")
    text = meta.get("principal_key")
    return bytes.fromhex(text) if isinstance(text, str) else None


def warrant_frames(steps: Iterable[StepRecord]) -> dict[str, str]:
    """Each task's journaled hop frame, by task id."""
    return {s.task_id: s.proof for s in steps if s.kind == "warrant" and s.proof is not None}


def task_chain(store: JournalStore, run_id: str, task_id: str) -> tuple[Warrant, list[str]]:
    """The warrant of ``task_id`` as journaled, and the task ids along it (root first)."""
    principal = run_principal(store, run_id)
    if principal is None:
        raise JournalError(f"run {run_id} was not signed (it has no principal key)")
    chains = _Chains(principal, warrant_frames(store.steps(run_id)))
    ids: list[str] = []
    t: str | None = task_id
    while t is not None:
        ids.append(t)
        t = _parent_task(t)
    return Warrant.decode(chains.token(task_id)), ids[::-1]


def verify_run(
    store: JournalStore, run_id: str, *, principal_public: bytes | None = None
) -> RunVerification:
    """Re-verify every tool call of a run from its journal alone.

    ``principal_public`` pins the key the chains must lead to; without it the key the
    run recorded is used (which proves the journal is consistent, not who the
    principal was: pin the key to prove that).
    """
    run = store.get_run(run_id)
    recorded = run_principal(store, run_id)
    if principal_public is None and recorded is None:
        raise JournalError(
            f"run {run_id} was not signed (no principal key in its metadata); nothing to verify"
        )
    principal = principal_public if principal_public is not None else recorded
    assert principal is not None
    report = RunVerification(
        run_id, principal.hex(), "given" if principal_public is not None else "journal"
    )
    steps = list(store.steps(run_id))
    frames = warrant_frames(steps)
    report.hops = len(frames)
    chains = _Chains(principal, frames)
    verifier = Verifier(principal, run_id)
    inputs_text = run.goal + "\n" + json.dumps(json.loads(run.inputs or "{}"), ensure_ascii=False)
    by_id = {s.step_id: s for s in steps}
    root_remit = Remit.from_json(run.remit)
    for s in steps:
        if s.kind == "warrant" and _parent_task(s.task_id) is None:
            try:
                w = Warrant.decode(chains.token(s.task_id))
                if w.remit != root_remit:
                    report.failures.append(
                        Failure(
                            s.step_id,
                            "WARRANT_ROOT_MISMATCH",
                            "the root grant's remit differs from the run's recorded remit",
                        )
                    )
            except WarrantError as e:
                report.failures.append(Failure(s.step_id, e.code, e.message))
        if s.kind != "tool" or s.status == "denied":
            continue
        report.calls += 1
        try:
            _verify_call(s, chains, verifier, inputs_text, by_id, report)
        except RemitError as e:
            report.failures.append(Failure(s.step_id, e.code, e.message))
    report.longest_chain = max((len(chains.frames_of(t)) for t in frames), default=0)
    return report


def _verify_call(
    s: StepRecord,
    chains: _Chains,
    verifier: Verifier,
    inputs_text: str,
    by_id: Mapping[str, StepRecord],
    report: RunVerification,
) -> None:
    if s.proof is None:
        raise WarrantMalformed(f"tool call {s.name!r} carries no call proof")
    proof = CallProof.decode(s.proof)
    args = signed_args(json.loads(s.input or "{}"))
    token = chains.token(s.task_id)
    try:
        verifier.check(token, proof, s.name, args, now=s.started_at)
        return
    except WarrantError:
        raise
    except RemitError as denied:
        # chain and proof verified (the remit check comes last); the remit said no
        remit = verifier.verify(token, now=s.started_at)
        if remit.check(s.name, args, now=s.started_at, inputs_text=inputs_text).allowed:
            return  # an in_inputs rule: allowed by the user's own words, as at the Gate
        approval = by_id.get(f"{s.step_id}~approval")
        answer = json.loads(approval.output or "null") if approval is not None else None
        if isinstance(answer, Mapping) and answer.get("approved"):  # pyright: ignore[reportUnknownMemberType]
            report.approved += 1
            return
        raise denied
