"""A throwaway PostgreSQL server in a temporary directory, for tests and benchmarks.

It runs Debian's (or any) PostgreSQL binaries found on this machine: ``initdb`` makes a
cluster in a directory of its own, ``pg_ctl`` starts it on 127.0.0.1 at a free port
(and a socket in the same directory), and :meth:`ThrowawayServer.create_database` makes
databases in it. Nothing listens beyond 127.0.0.1 and every role trusts local
connections only, so the cluster is for this machine's tests alone.

``initdb`` refuses to run as root (a cluster owned by root would be a security hole),
so as root the cluster is made and run by the ``postgres`` system user (which Debian's
``postgresql-common`` creates) via ``runuser``, and the directory is given to it.

>>> with ThrowawayServer.start() as server:            # doctest: +SKIP
...     url = server.create_database("journal")
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Final, LiteralString, Self, cast

__all__ = ["INSTALL_HINT", "ServerMissing", "ThrowawayServer", "find_binaries"]

#: what to install when no PostgreSQL binaries are found
INSTALL_HINT: Final = (
    "PostgreSQL's server binaries (initdb, pg_ctl) were not found: install them with"
    " `apt-get install -y postgresql` (Debian/Ubuntu, as root), or put a directory holding"
    " initdb and pg_ctl on PATH, or set REMIT_PG_BIN to one"
)
#: how long a start or a stop may take before it counts as failed
_WAIT_S: Final = 60.0


class ServerMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine (see :data:`INSTALL_HINT`)."""


def find_binaries() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: ``$REMIT_PG_BIN``, else the newest
    ``/usr/lib/postgresql/*/bin`` (Debian's layout), else wherever PATH finds them."""
    wanted = os.environ.get("REMIT_PG_BIN")
    candidates = [Path(wanted)] if wanted else []
    found = glob.glob("/usr/lib/postgresql/*/bin")

    def version(p: str) -> float:
        try:
            return float(Path(p).parent.name)
        except ValueError:
            return 0.0

    candidates += [Path(p) for p in sorted(found, key=version, reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    raise ServerMissing(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayServer:
    """A PostgreSQL cluster in a temporary directory, running until :meth:`stop`."""

    def __init__(self, bindir: Path, root: Path, port: int, user: str | None) -> None:
        self.bindir = bindir
        #: the directory that holds the cluster (``data/``), its socket and its log
        self.root = root
        self.port = port
        #: the system user the server runs as (``postgres`` when we are root), or None
        self.user = user
        self.data = root / "data"
        self.log = root / "server.log"
        self.role = user or pwd.getpwuid(os.getuid()).pw_name

    # --- lifecycle ---------------------------------------------------------------------

    @classmethod
    def start(cls, *, fsync: bool = True, bindir: Path | None = None) -> ThrowawayServer:
        """Make a cluster in a new temporary directory and start it (``ServerMissing``
        if there are no binaries). ``fsync=False`` trades crash safety for speed."""
        bindir = bindir or find_binaries()
        user = None
        root = Path(tempfile.mkdtemp(prefix="remit-pg-"))
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(root, ignore_errors=True)
                raise ServerMissing(
                    "running as root, and there is no `postgres` user to run PostgreSQL as"
                    " (initdb refuses root): install the `postgresql` package, which makes"
                    " one, or run as an ordinary user"
                ) from None
            user = "postgres"
            os.chown(root, pw.pw_uid, pw.pw_gid)
            os.chmod(root, 0o700)
        server = cls(bindir, root, _free_port(), user)
        try:
            server._run(
                "initdb", "-D", str(server.data), "-U", server.role, "--auth=trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
            conf = [
                "listen_addresses = '127.0.0.1'",
                f"port = {server.port}",
                f"unix_socket_directories = '{root}'",
                f"fsync = {'on' if fsync else 'off'}",
                "max_connections = 100",
                "shared_buffers = 32MB",
            ]
            with (server.data / "postgresql.conf").open("a") as f:
                f.write("\n".join(conf) + "\n")
            server.restart(start_only=True)
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_WAIT_S, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
                + (f"\nserver log:\n{log}" if log else "")
            )

    def restart(self, *, start_only: bool = False, mode: str = "fast") -> None:
        """Start the server (``start_only``) or stop it (``mode``: ``fast`` ends every
        session, ``immediate`` is a crash) and start it again; waits until it accepts
        connections."""
        if not start_only:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
            "-t", str(int(_WAIT_S)), "start",
        )  # fmt: skip

    def pause(self, mode: str = "fast") -> None:
        """Stop the server, leaving its cluster in place (:meth:`resume` starts it)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def resume(self) -> None:
        """Start a server :meth:`pause` stopped."""
        self.restart(start_only=True)

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away) and remove its directory."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    # --- databases ---------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` on this server (TCP on 127.0.0.1)."""
        return f"postgresql://{self.role}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (an identifier: letters, digits, underscores) and
        return its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r} is not a plain identifier")
        import psycopg

        deadline = time.monotonic() + _WAIT_S
        while True:
            try:
                with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
                    conn.execute(cast(LiteralString, f'CREATE DATABASE "{name}"'))
                return self.url(name)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
