"""A run's keys: the secret every key derives from, the journal's secret file beside it
that run secrets derive from, and the principal's key file.

Separate because it is the only part that reads and writes key files.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


#: the journal's own secret, beside it: every run's secret derives from it and the run's salt
JOURNAL_SECRET = "journal.secret"


class KeyFiles:
    """The secrets beside a journal: ``<dir>/journal.secret`` (hex, mode 0600), made once
    with the journal's first signed run, from which each run's secret derives, with the
    random salt the run's record keeps (``key_salt`` in its metadata).

    One file however many runs, and no file written (nor fsync waited for) per run.
    The salt makes two runs of one id (a journal rebuilt beside the same secret) two
    keys. A run recorded before journal secrets existed keeps its own
    ``<dir>/<run id>.key``, and is read from there. A journal that is not a file keeps
    its secret in memory (for this process only).

    >>> keys = KeyFiles(None)
    >>> secret, salt = keys.new_run("r1")
    >>> keys.load("r1", {"key_salt": salt}) == secret != keys.new_run("r1")[0]
    True
    """

    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.dir = Path(directory) if directory is not None else None
        self._secret: bytes | None = None

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

    def new_run(self, run_id: str) -> tuple[bytes, str]:
        """A new run's secret, and the salt (hex) its record must keep to derive it again.

        Makes the journal's secret the first time, on disk before it returns: a run is
        recorded only after its secret can be derived again after a power cut.
        """
        salt = secrets.token_bytes(_SALT_LEN)
        return _derive_run(self._journal_secret(run_id, create=True), run_id, salt), salt.hex()

    def load(self, run_id: str, meta: Mapping[str, Any]) -> bytes:
        """The secret of the run ``run_id`` whose record holds metadata ``meta``; a clear
        error naming the file if it cannot be had."""
        salt = meta.get("key_salt")
        if salt is None:  # recorded before journal secrets: the run's own key file
            return self._own_file(run_id)
        raw = _hex(salt, _SALT_LEN)
        if raw is None:
            raise JournalError(
                f"run {run_id}: its record's key_salt is damaged (expected {2 * _SALT_LEN} "
                "hex digits); the run's key cannot be derived"
            )
        return _derive_run(self._journal_secret(run_id, create=False), run_id, raw)

    def _journal_secret(self, run_id: str, *, create: bool) -> bytes:
        if self._secret is not None:
            return self._secret
        if self.dir is None:
            if not create:
                raise JournalError(
                    f"run {run_id}: its signing secret was kept in memory by the process "
                    "that started it; resume it in that process, or give the Runtime a "
                    "journal path so secrets are kept in a file beside it"
                )
            self._secret = secrets.token_bytes(32)
            return self._secret
        path = self.dir / JOURNAL_SECRET
        secret = _read_secret(path, run_id, missing_ok=create)
        if secret is None:
            secret = self._make_secret(path, run_id)
        elif create:
            # found, perhaps just linked into place by another process that has yet to
            # sync the directory: sync it before a run of ours depends on the name (once
            # per process, as the secret is kept from here on)
            self._sync(path, run_id)
        self._secret = secret
        return secret

    def _sync(self, path: Path, run_id: str) -> None:
        assert self.dir is not None
        try:
            _sync_dir(self.dir)
        except OSError as e:
            raise JournalError(
                f"run {run_id}: cannot sync the directory of the journal's secret {path}: "
                f"{e.strerror or e}"
            ) from None

    def _make_secret(self, path: Path, run_id: str) -> bytes:
        """The journal's secret, made: written whole to a file of its own, then linked to
        its name, so a reader never sees half of it and a secret made by another process
        at the same time is never replaced (its runs may already be signed with it)."""
        assert self.dir is not None
        secret = secrets.token_bytes(32)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_secret(tmp, secret)
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process made it first: theirs stands
                found = _read_secret(path, run_id, missing_ok=False)
                assert found is not None
                return found
            finally:
                tmp.unlink(missing_ok=True)
            # the file's name is on disk too, before the journal records a run signed
            # under it: a power cut must not leave a sealed run whose key is gone
            _sync_dir(self.dir)
        except OSError as e:
            raise JournalError(
                f"run {run_id}: cannot write the journal's secret {path}: {e.strerror or e}; "
                f"the directory {self.dir} must be writable by you"
            ) from None
        return secret

    def _own_file(self, run_id: str) -> bytes:
        """A run recorded before journal secrets: ``<dir>/<run id>.key``."""
        if self.dir is None:
            raise JournalError(
                f"run {run_id}: its record holds no key salt, and this journal keeps no "
                "key files; the run cannot sign its remaining steps"
            )
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise ValueError(f"run id {run_id!r} cannot name a key file")
        secret = _read_secret(self.dir / f"{run_id}.key", run_id, missing_ok=False)
        assert secret is not None
        return secret


_SALT_LEN = 16


def _derive_run(journal_secret: bytes, run_id: str, salt: bytes) -> bytes:
    data = run_id.encode("utf-8") + b"\x00" + salt
    return hashlib.blake2b(data, key=journal_secret, person=b"remit.run", digest_size=32).digest()


def _read_secret(path: Path, run_id: str, *, missing_ok: bool) -> bytes | None:
    """The 32-byte secret a key file holds as hex; None if it is missing and
    ``missing_ok``; else a clear error naming the file."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        if missing_ok:
            return None
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
    return _hex(text, 32)


def _hex(text: object, size: int) -> bytes | None:
    """The ``size`` bytes that ``text`` spells in hex, or None (also for a non-string)."""
    if not isinstance(text, str):
        return None
    try:
        data = bytes.fromhex(text.strip())
    except ValueError:
        return None
    return data if len(data) == size else None


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
