"""A run's keys: the secret every key derives from, its file beside the journal, and the
principal's key file.

Separate because it is the only part that reads and writes key files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Generator
from pathlib import Path

from remit.errors import JournalError, RemitError
from remit.trust.warrant import AgentKey


class RunKeys:
    """The keys of one run, derived from its secret (the only thing stored).

    ``principal`` overrides the derived principal key with the user's own.
    """

    __slots__ = ("_run", "_secret", "principal")

    def __init__(self, secret: bytes, principal: AgentKey | None = None) -> None:
        if len(secret) != 32:
            raise ValueError(f"a run secret is 32 bytes, got {len(secret)}")
        self._secret = bytes(secret)
        self.principal = principal or AgentKey.from_seed(self._derive(b"principal", b""))
        self._run: AgentKey | None = None

    def _derive(self, person: bytes, data: bytes) -> bytes:
        return hashlib.blake2b(data, key=self._secret, person=person, digest_size=32).digest()

    @property
    def run(self) -> AgentKey:
        """The run's own key: the principal grants it the run's remit, and it signs the
        journal's checkpoints (the same on every resume)."""
        if self._run is None:  # made once: a key pair costs a scalar multiplication
            self._run = AgentKey.from_seed(self._derive(b"run", b""))
        return self._run

    def agent(self, task_id: str) -> AgentKey:
        """The agent key of task ``task_id`` (the same on every resume)."""
        return AgentKey.from_seed(self._derive(b"agent", task_id.encode("utf-8")))

    @property
    def receipt_key(self) -> bytes:
        """The key of the run's tool receipts (:mod:`remit.trust.receipts`): held by the
        Gate and by ``remit verify``, never by an agent (the same on every resume)."""
        return self._derive(b"receipt", b"")

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
            journal
            if isinstance(journal, str | os.PathLike)
            # a store in a database (PostgresJournal) is named by its URL
            else getattr(journal, "path", None) or getattr(journal, "url", None)
        )
        if isinstance(where, str) and where.startswith(("postgres://", "postgresql://")):
            return cls(_url_keys(where))
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
            # the file's name is on disk too, before the journal records the run: a
            # power cut must not leave a sealed run whose key is gone
            _sync_dir(self.dir)
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


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def _url_keys(url: str) -> Path:
    """Where the run secrets of a journal in a database live: not beside it (it is not a
    file) and never in it (whoever reads the database could sign as its runs), so in
    ``$REMIT_KEYS_DIR``, else a directory of this user's named after the database
    (``~/.local/share/remit/keys/<host>_<port>_<db>``). A resume on another machine
    needs the same files there."""
    configured = os.environ.get("REMIT_KEYS_DIR")
    if configured:
        return Path(configured)
    rest = url.split("://", 1)[1].split("?", 1)[0]
    host_db = rest.rpartition("@")[2]
    name = "".join(c if c.isalnum() or c in "-." else "_" for c in host_db) or "postgres"
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "remit" / "keys" / name
