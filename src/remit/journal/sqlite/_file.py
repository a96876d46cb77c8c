"""The journal file and its connection: what is checked before SQLite sees a file, the
pragmas that set WAL mode and the durability, and how a sqlite3 error becomes a
JournalError naming the file and the operation.

Separate because every query layer stands on it and none of it knows the tables.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sqlite3
import threading
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from remit.errors import JournalCorrupt, JournalError
from remit.journal._store import Durability

_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_HEADER_SIZE: Final = 100
#: SQLite result codes (low byte of the extended code) that mean a damaged file
_CORRUPT_CODES: Final = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
_BUSY_CODES: Final = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED
#: the most rows one INSERT of :func:`insert_rows` carries: 32 rows of a step (16
#: values) stay under the 999 variables of older SQLite builds
_ROWS_PER_STATEMENT: Final = 32


class SQLiteFile:
    """The open file under :class:`~remit.journal.sqlite.SQLiteJournal`: its path, its
    connection and the lock that guards it; the layer every query layer stands on."""

    path: Path
    durability: Durability
    _lock: threading.Lock
    _memory: bool
    _conn: sqlite3.Connection | None

    # --- opening -----------------------------------------------------------------

    def _check_file(self) -> None:
        """Refuse, with a clear message, what SQLite would report as a bare error."""
        path = self.path
        if not path.parent.is_dir():
            raise JournalError(
                f"cannot open journal {path}: directory {path.parent} does not exist;"
                " create it first"
            )
        if path.is_dir():
            raise JournalError(f"cannot open journal {path}: it is a directory")
        try:
            size = path.stat().st_size
            if size == 0:
                return  # SQLite treats an empty file as a new database
            with path.open("rb") as f:
                header = f.read(_HEADER_SIZE)
            wal = Path(f"{path}-wal")
            wal_size = wal.stat().st_size if wal.exists() else 0
        except FileNotFoundError:
            return
        except OSError as e:
            raise JournalError(f"cannot open journal {path}: {e}") from e
        if not _SQLITE_MAGIC.startswith(header[: len(_SQLITE_MAGIC)]):
            raise JournalCorrupt(
                f"{path} is not a remit journal: it is not a SQLite database"
                f" (it starts with {header[:16]!r})"
            )
        if len(header) < _HEADER_SIZE:
            raise JournalCorrupt(
                f"journal {path} is truncated: {size} bytes, less than a SQLite header;"
                " restore it from a backup"
            )
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        # The header's page count is trusted by SQLite only when the change counter
        # matches "version valid for"; a non-empty WAL may legitimately hold pages the
        # main file does not have yet.
        if pages and header[24:28] == header[92:96] and wal_size == 0:
            expected = pages * page_size
            if size < expected:
                raise JournalCorrupt(
                    f"journal {path} is truncated: its header counts {pages} pages of"
                    f" {page_size} bytes ({expected} bytes) but the file holds {size};"
                    " restore it from a backup"
                )

    def _configure(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal" and not (self._memory and mode == "memory"):
            raise JournalError(
                f"journal {self.path} cannot use WAL mode (SQLite chose {mode!r});"
                " keep journals on a local file system"
            )
        if self.durability == "full":
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA fullfsync = ON")
            conn.execute("PRAGMA checkpoint_fullfsync = ON")
        else:
            conn.execute("PRAGMA synchronous = NORMAL")
        # The unique index is probed once per written step; keep more of it cached
        # than SQLite's 2 MB default (negative = KiB).
        conn.execute("PRAGMA cache_size = -16384")

    # --- errors ------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, operation: str) -> Generator[None]:
        """Turn any sqlite3 error into a JournalError naming the file and operation."""
        try:
            yield
        except sqlite3.Error as e:
            self._raise(e, operation)

    def _raise(self, e: sqlite3.Error, operation: str) -> NoReturn:
        code = getattr(e, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary in _CORRUPT_CODES:
            raise JournalCorrupt(
                f"journal {self.path} is corrupt ({operation}: {e}); restore it from a"
                " backup, or start a new journal"
            ) from e
        if primary in _BUSY_CODES:
            raise JournalError(
                f"journal {self.path} is locked by another connection ({operation}: {e});"
                " is another run writing this journal?"
            ) from e
        raise JournalError(f"{operation} failed on journal {self.path}: {e}") from e

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {self.path} is closed")
        return self._conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Generator[None]:
    """One write transaction (``BEGIN IMMEDIATE``): committed whole, or rolled back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def rollback(conn: sqlite3.Connection) -> None:
    """End any open transaction without masking the error that got us here."""
    with contextlib.suppress(sqlite3.Error):
        conn.rollback()


def insert_rows(
    conn: sqlite3.Connection, head: str, tail: str, width: int, rows: Iterable[Sequence[Any]]
) -> int:
    """``executemany(head VALUES (?, ...) tail, rows)``, many rows a statement: how many
    rows it changed (inserted, or updated by ``tail``'s ON CONFLICT clause).

    A row in ``executemany`` is a statement step of its own, and the sqlite3 module
    pays its per-statement work for each (reset, step, changes); a journal batch is
    hundreds of rows. Here they go in statements of 32, then of 16, 8, 4, 2 and 1 for
    the rest, so only six statement texts per ``head`` are ever prepared (sqlite3
    caches each); the rows are written in order, so a later row of a batch meets an
    earlier one's conflict as it would in ``executemany``.
    """
    flat = list(itertools.chain.from_iterable(rows))
    if len(flat) % width:
        raise ValueError(f"a row to insert holds other than {width} values")
    left, at, changed = len(flat) // width, 0, 0
    while left:
        n = _ROWS_PER_STATEMENT if left >= _ROWS_PER_STATEMENT else 1 << (left.bit_length() - 1)
        end = at + n * width
        changed += conn.execute(_values(head, tail, width, n), flat[at:end]).rowcount
        at, left = end, left - n
    return changed


@functools.lru_cache(maxsize=64)
def _values(head: str, tail: str, width: int, n: int) -> str:
    row = f"({', '.join('?' * width)})"
    return f"{head} VALUES {', '.join([row] * n)}{tail}"


def _bind_as_is(value: bytes | None) -> bytes | None:
    return value


def _adapt_none_and_bytes() -> None:
    """Let the sqlite3 module bind ``None`` and ``bytes`` without searching for an
    adapter: for any type but int, float, str and bytearray it looks one up, and a
    miss fails an attribute look-up on a type, which builds an error message each time
    (about 0.4 µs a value; a step row holds three or four such values). An adapter that
    hands the value back binds it exactly as before. Registered once, only where the
    program has registered none of its own."""
    kinds: tuple[type[bytes | None], ...] = (type(None), bytes)
    for kind in kinds:
        if (kind, sqlite3.PrepareProtocol) not in sqlite3.adapters:
            sqlite3.register_adapter(kind, _bind_as_is)


_adapt_none_and_bytes()
