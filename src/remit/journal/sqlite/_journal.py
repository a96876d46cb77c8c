"""SQLiteJournal, the class users open: it checks and configures the file, brings its
schema up to date, then answers the JournalStore protocol with the run, lease and step
queries of the layers it is built from; closing and the full check of a file are here.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from remit.errors import JournalCorrupt, JournalError
from remit.journal._store import Durability
from remit.journal.sqlite._runs import RunQueries
from remit.journal.sqlite._schema import Migrations
from remit.journal.sqlite._steps import STEP_COLUMNS, StepQueries


class SQLiteJournal(Migrations, RunQueries, StepQueries):
    """A journal in one SQLite file, in WAL mode.

    ``durability`` says when :meth:`write`, :meth:`create_run` and :meth:`finish_run`
    may return:

    - ``"full"`` (default): ``PRAGMA synchronous=FULL``. Each transaction's WAL frames
      are fsynced before the call returns, so a recorded step survives a process
      crash, a kernel panic and a power loss (given a disk that honours fsync; on
      macOS ``fullfsync`` is also on).
    - ``"normal"``: ``PRAGMA synchronous=NORMAL``. The transaction is in the WAL (in
      the OS page cache) when the call returns, and is fsynced at the next checkpoint.
      It survives a crash of the process (kill -9 included), not a power loss or an OS
      crash, which may lose the last transactions but never corrupts the file.

    WAL lets other connections and processes (``remit show``) read committed steps
    while a run writes; a second writer waits up to ``busy_timeout`` seconds for the
    write lock, then fails with :class:`~remit.errors.JournalError`.

    One instance may be shared by threads: every call holds an internal lock. Every
    SQLite error surfaces as a :class:`~remit.errors.JournalError` naming the file
    and the operation; a damaged file as :class:`~remit.errors.JournalCorrupt`.
    ``":memory:"`` opens a private, non-durable journal (for tests).
    """

    durability: Durability

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Literal["full", "normal"] = "full",
        busy_timeout: float = 5.0,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.path: Path = Path(path)
        self.durability = durability
        self._lock = threading.Lock()
        self._held = {}  # the sealed runs this process signs for (see _seals)
        self._memory = os.fspath(path) == ":memory:"
        if not self._memory:
            self._check_file()
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # the lock makes sharing safe
            )
        except sqlite3.Error as e:
            raise JournalError(f"cannot open journal {self.path}: {e}") from e
        self._conn: sqlite3.Connection | None = conn
        try:
            with self._errors("open"):
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                # Identify the file before changing anything in it: a foreign SQLite
                # database opened by mistake must not be switched to WAL mode.
                found = self._read_version_once(conn)
                self._configure(conn)
                self._schema_version = self._migrate(conn, found)
                self._check_structure(conn)
        except BaseException:
            conn.close()
            self._conn = None
            raise

    # --- JournalStore ----------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The schema version of the open file (always :data:`SCHEMA_VERSION`)."""
        return self._schema_version

    def close(self) -> None:
        """Close the file (idempotent); later calls raise ``JournalError``."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with self._errors("close"):
                    conn.close()

    # --- beyond the protocol ---------------------------------------------------------

    def check(self) -> None:
        """Read the whole file and raise ``JournalCorrupt`` listing what is damaged.

        Runs SQLite's ``quick_check`` and validates every step row. It reads every
        page, so it is for ``remit verify`` and after a crash, not for each open.
        """
        problems: list[str] = []
        with self._lock, self._errors("check"):
            conn = self._live()
            problems += [msg for (msg,) in conn.execute("PRAGMA quick_check(20)") if msg != "ok"]
            if not problems:
                for row in conn.execute(f"SELECT {STEP_COLUMNS} FROM steps ORDER BY pos"):
                    try:
                        self._step(row)
                    except JournalCorrupt as e:
                        problems.append(e.message)
                        if len(problems) >= 20:
                            break
        if problems:
            raise JournalCorrupt(f"journal {self.path} is damaged: " + "; ".join(problems))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"schema v{self._schema_version}"
        return f"SQLiteJournal({str(self.path)!r}, durability={self.durability!r}, {state})"
