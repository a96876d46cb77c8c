"""PostgresJournal, the class users open: it connects, brings the schema up to date,
then answers the JournalStore protocol with the run, lease and step queries of the
layers it is built from.
"""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType
from typing import Literal, Self

from remit.journal._store import Durability
from remit.journal.postgres._connection import RECONNECT_TIMEOUT_S, redact, require_psycopg
from remit.journal.postgres._runs import RunQueries
from remit.journal.postgres._steps import StepQueries


class PostgresJournal(RunQueries, StepQueries):
    """A journal in a PostgreSQL database (``postgresql://user@host:port/dbname``).

    Many processes may write one journal at once: each transaction that writes a run
    takes that run's advisory lock first, so writers of one run queue (as on SQLite's
    single file), writers of different runs do not, and a sealed run's chain keeps one
    order. ``durability`` says when a write may return:

    - ``"full"`` (default): ``synchronous_commit = on``, a commit returns once the
      server has flushed its WAL; it survives a crash of this process, of the server
      and of its machine (given ``fsync = on`` on the server, its default).
    - ``"normal"``: ``synchronous_commit = off``, a commit returns before the flush; it
      survives a crash of this process, not of the server's machine, which may lose its
      last commits (never corrupt them).

    ``schema`` names the PostgreSQL schema that holds the tables (made if missing), so
    one database can hold several journals. When the server goes away (a restart),
    every operation waits for it, retrying, for up to ``reconnect_timeout`` seconds,
    then raises :class:`~remit.errors.JournalError` saying so. One instance may be
    shared by threads: every call holds an internal lock.
    """

    durability: Durability

    def __init__(
        self,
        url: str,
        *,
        durability: Literal["full", "normal"] = "full",
        schema: str = "public",
        reconnect_timeout: float = RECONNECT_TIMEOUT_S,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        if not schema or '"' in schema or "\x00" in schema:
            raise ValueError(f"schema must be a non-empty name without quotes, not {schema!r}")
        require_psycopg()
        self.url = url
        self.schema = schema
        self.durability = durability
        self.reconnect_timeout = reconnect_timeout
        self._lock = threading.RLock()
        self._conn = None
        self._closed = False
        self._held = {}  # the sealed runs this process signs for (see _seals)
        # a server that is not up yet is waited for like one that restarts
        self._schema_version = self._migrate()

    @property
    def schema_version(self) -> int:
        """The schema version of the database (always :data:`SCHEMA_VERSION`)."""
        return self._schema_version

    def close(self) -> None:
        """Close the connection (idempotent); later calls raise ``JournalError``."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

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
        state = "closed" if self._closed else f"schema v{self._schema_version}"
        return (
            f"PostgresJournal({redact(self.url)!r}, schema={self.schema!r},"
            f" durability={self.durability!r}, {state})"
        )
