"""The connection under a PostgreSQL journal: opening it with the durability asked for,
running each operation as one transaction, waiting out a server that restarts (until a
deadline), and turning psycopg's errors into JournalErrors naming the database.

Separate because every query layer stands on it and none of it knows the tables.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, LiteralString, NoReturn, TypeVar, cast

from remit.errors import JournalError, MissingExtra
from remit.journal._store import Durability

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

MISSING: Final = (
    "PostgreSQL journals need psycopg 3: pip install 'remit[postgres]' (or 'psycopg[binary]>=3.1')"
)
#: the first key of every advisory lock remit takes ('remi'), so that ours never collide
#: with another application's locks in the same database
LOCK_SPACE: Final = 0x72656D69
#: how long an operation waits for a server that went away (a restart, a failover)
#: before it fails with a JournalError; the run then stops and can be resumed
RECONNECT_TIMEOUT_S: Final = 30.0
_BACKOFF_S: Final = (0.05, 0.1, 0.2, 0.5, 1.0)


def sql(text: str) -> LiteralString:
    """A statement built here from remit's own constants (column names, placeholders),
    never from input, marked as such for psycopg's typing."""
    return cast(LiteralString, text)


def require_psycopg() -> Any:
    """The psycopg module, or :class:`~remit.errors.MissingExtra` saying how to install it."""
    try:
        import psycopg
    except ImportError:
        raise MissingExtra(MISSING) from None
    return psycopg


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    auth, _, host = rest.rpartition("@")
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}@{host}" if ":" in auth else url


class Connection:
    """The database under :class:`~remit.journal.postgres.PostgresJournal`: its URL, its
    connection, the lock that guards it, and the transaction runner every layer uses."""

    url: str
    schema: str
    durability: Durability
    reconnect_timeout: float
    _lock: threading.RLock
    _conn: psycopg.Connection[Any] | None
    _closed: bool
    #: the journal has been open once: a connection lost from now on is waited for
    _opened: bool = False

    @property
    def where(self) -> str:
        """The database and schema, as messages name them (no password)."""
        return redact(self.url) + ("" if self.schema == "public" else f" (schema {self.schema})")

    def _connect(self) -> psycopg.Connection[Any]:
        psycopg = require_psycopg()
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        try:
            # "full": a commit returns once its WAL is flushed to disk (the server's
            # fsync setting decides whether that is a real fsync). "normal": it returns
            # before, so a server crash may lose the last commits (never corrupt them);
            # a crash of this process loses nothing the server acknowledged.
            sync = "on" if self.durability == "full" else "off"
            conn.execute(sql(f"SET synchronous_commit = {sync}"))
            conn.execute("SELECT set_config('search_path', %s, false)", (f'"{self.schema}"',))
        except BaseException:
            conn.close()
            raise
        return conn

    def _live(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise JournalError(f"journal {self.where} is closed")
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            self._drop()
            conn = self._conn = self._connect()
            self._opened = True
        return conn

    def _tx(
        self, operation: str, body: Callable[[psycopg.Connection[Any]], T], *, retry: bool = True
    ) -> T:
        """Run ``body`` in one transaction under the lock, committed whole or not at all.

        When the server goes away (a restart, a network cut: psycopg's
        ``OperationalError``, which also covers serialization failures and deadlocks)
        the transaction is rolled back by the server, and it is run again on a new
        connection until :attr:`reconnect_timeout` has passed; then it fails with a
        JournalError saying so. Running again is safe for every write the journal makes:
        the step protocol ignores a write it already holds (an intent on an existing
        row, a second result), so a commit whose answer was lost is not applied twice.
        """
        import psycopg

        deadline: float | None = None
        attempt = 0
        with self._lock:
            while True:
                try:
                    conn = self._live()
                    with conn.transaction():
                        return body(conn)
                except psycopg.OperationalError as e:
                    self._on_retry(e)
                    if not (getattr(e, "sqlstate", None) or "").startswith("40"):
                        # the connection is in doubt, not only the transaction: one the
                        # server ended mid-pipeline is not marked broken, yet refuses
                        # every query after ("cannot exit pipeline mode while busy")
                        self._drop()
                    if not retry or not self._retryable(e):
                        self._raise(e, operation)
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self.reconnect_timeout
                    if now >= deadline:
                        raise JournalError(
                            f"{operation} failed on journal {self.where}: the server was"
                            f" unreachable for {self.reconnect_timeout:g} s ({_first_line(e)});"
                            " nothing of this operation was recorded; when the server is back,"
                            " `remit resume RUN_ID` carries the run on"
                        ) from e
                    time.sleep(min(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)], deadline - now))
                    attempt += 1
                except psycopg.Error as e:
                    self._on_retry(e)
                    self._raise(e, operation)
                except BaseException as e:  # a refusal (LeaseLost...): rolled back too
                    self._on_retry(e)
                    raise

    def _drop(self) -> None:
        """Forget the connection: the next transaction opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _retryable(self, e: BaseException) -> bool:
        """Whether waiting may cure ``e``: a serialization failure or a deadlock (the
        server rolled the transaction back), or a lost connection once the journal has
        been open (a server that restarts). A server that cannot be reached at all on
        open, a refused login or a missing database is a wrong URL: said at once."""
        state = getattr(e, "sqlstate", None) or ""
        if state.startswith("40"):  # transaction rollback: serialization, deadlock
            return True
        if state.startswith(("28", "3D")):  # authorization, unknown database
            return False
        return self._opened

    def _on_retry(self, error: BaseException) -> None:
        """A transaction was rolled back: forget state that may be ahead of the database."""

    def _raise(self, e: BaseException, operation: str) -> NoReturn:
        if not self._opened:
            raise JournalError(
                f"cannot open journal {self.where}: {_first_line(e)}; is the server running,"
                " and are the URL, its user and its database right?"
            ) from e
        raise JournalError(f"{operation} failed on journal {self.where}: {_first_line(e)}") from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
