"""The throwaway PostgreSQL server the ``postgres`` tests run against (a pytest plugin,
loaded by ``tests/conftest.py``).

One server per test session, started from the PostgreSQL binaries on this machine
(Debian's ``postgresql`` package: ``/usr/lib/postgresql/*/bin``) in a temporary
directory, on a free port of 127.0.0.1, and stopped at the end. As root it runs as the
``postgres`` user (``initdb`` refuses root; see ``remit.journal.postgres.throwaway``).
Each test gets its own schema (:func:`pg_schema`) or database, so tests never see each
other's rows.

Without the binaries (or psycopg) the ``postgres`` tests are skipped with a message
saying what to install, except when ``CI=true``: there they fail, so a CI run can never
pass by skipping them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from remit.journal.postgres.throwaway import ServerMissing, ThrowawayServer

_schemas = itertools.count()


def _missing(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the postgres tests cannot run: {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayServer]:
    """A PostgreSQL server of this session (skips, or fails under CI, without one)."""
    try:
        import psycopg  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except ImportError:
        _missing("psycopg is not installed: pip install 'psycopg[binary]>=3.1' (or `make test`)")
    try:
        server = ThrowawayServer.start()
    except ServerMissing as e:
        _missing(str(e))
        raise  # unreachable: _missing skips or fails
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server: ThrowawayServer) -> str:
    """The URL of a database of this session on :func:`pg_server`."""
    return pg_server.create_database("remit_tests")


@pytest.fixture
def pg_schema() -> str:
    """A schema name no other test of this session uses."""
    return f"t{os.getpid()}_{next(_schemas)}"
