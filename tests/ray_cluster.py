"""The local Ray cluster the ``ray`` tests run on (a pytest plugin, loaded by
``tests/conftest.py``).

One cluster per test session, started by the first test that needs it, with two
workers (the machine's two cores) that every such test shares: a worker serves each run
it is handed with a Gate of its own, so tests do not see each other's state. Without Ray
the ``ray`` tests are skipped with what to install, except when ``CI=true``: there they
fail, so a CI run can never pass by skipping them. The ``ray`` tests also need the
throwaway PostgreSQL server (``tests/postgres_server.py``): workers share the journal.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from remit.executors import RayExecutor


def _missing(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the ray tests cannot run: {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def ray_executor() -> Iterator[RayExecutor]:
    """A Ray executor on a local cluster of this session (two workers, small batches)."""
    try:
        import ray  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except ImportError:
        _missing("Ray is not installed: pip install 'ray>=2.40' (or `make test`)")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway cluster on 127.0.0.1
    # (Ray's processes listen on this machine's own address, never on loopback: Ray
    # refuses loopback as a node's address. Nothing they send leaves the host.)
    executor = RayExecutor(workers=2, batch=16, init_options={"num_cpus": 2})
    executor.connect()
    try:
        yield executor
    finally:
        executor.shutdown()
