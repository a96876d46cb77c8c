"""A task handed to a worker in another process: the worker acts only on a dispatch the
run's key signed for it, under a remit no wider than the principal's grant."""

from __future__ import annotations

import dataclasses

import pytest

from remit import Budget, Remit
from remit.errors import (
    WarrantError,
    WarrantExpired,
    WarrantForged,
    WarrantNotHolder,
    WarrantWidening,
    WarrantWrongRun,
)
from remit.trust.dispatch import Dispatch, GrantCheck, check_dispatch
from remit.trust.warrant import AgentKey, issue

NOW = 1e9
ROOT = Remit(tools={"read": {}, "write": {}}, budget=Budget(calls=10), depth=2)


@pytest.fixture
def keys() -> tuple[AgentKey, AgentKey, AgentKey]:
    return AgentKey.generate(), AgentKey.generate(), AgentKey.generate()


def grant_of(principal: AgentKey, run_key: AgentKey, run_id: str = "run-1") -> str:
    return issue(principal, run_id=run_id, remit=ROOT, purpose="p", expires=2e9,
                 holder_public=run_key.public, hop_id="run").encode()  # fmt: skip


def dispatch(worker: AgentKey, remit: Remit = ROOT, **kw: object) -> Dispatch:
    fields: dict[str, object] = {"run_id": "run-1", "task_id": "t.0", "phase": "ready",
                                 "number": 0, "remit": remit, "worker": worker.public,
                                 "expires": 2e9}  # fmt: skip
    fields.update(kw)
    return Dispatch(**fields)  # type: ignore[arg-type]


def test_a_dispatch_signed_for_this_worker_hands_over_its_remit(keys) -> None:
    principal, run_key, worker = keys
    child = ROOT.narrow(tools={"read": {}}, depth=1)
    d = dispatch(worker, child)
    remit = check_dispatch(d, d.sign(run_key), grant_of(principal, run_key), principal.public,
                           worker.public, now=NOW)  # fmt: skip
    assert remit == child
    # the root task keeps the grant's own remit, depth included
    d = dispatch(worker)
    assert check_dispatch(d, d.sign(run_key), grant_of(principal, run_key), principal.public,
                          worker.public, now=NOW) == ROOT  # fmt: skip


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"task_id": "t.1"}, WarrantForged),
        ({"phase": "aggregate"}, WarrantForged),
        ({"number": 1}, WarrantForged),
        ({"expires": 3e9}, WarrantForged),
        ({"remit": ROOT.narrow(tools={"read": {}})}, WarrantForged),
    ],
    ids=["task", "phase", "number", "expiry", "remit"],
)
def test_a_dispatch_changed_after_signing_is_refused(keys, change, error) -> None:
    principal, run_key, worker = keys
    d = dispatch(worker)
    sig = d.sign(run_key)
    with pytest.raises(error):
        check_dispatch(dataclasses.replace(d, **change), sig, grant_of(principal, run_key),
                       principal.public, worker.public, now=NOW)  # fmt: skip


def test_a_dispatch_for_another_worker_is_refused(keys) -> None:
    principal, run_key, worker = keys
    other = AgentKey.generate()
    d = dispatch(other)
    with pytest.raises(WarrantNotHolder):
        check_dispatch(d, d.sign(run_key), grant_of(principal, run_key), principal.public,
                       worker.public, now=NOW)  # fmt: skip


def test_a_dispatch_not_signed_by_the_run_key_is_refused(keys) -> None:
    principal, run_key, worker = keys
    d = dispatch(worker)
    for signer in (worker, principal, AgentKey.generate()):
        with pytest.raises(WarrantForged):
            check_dispatch(d, d.sign(signer), grant_of(principal, run_key), principal.public,
                           worker.public, now=NOW)  # fmt: skip


def test_a_grant_from_another_principal_or_run_is_refused(keys) -> None:
    principal, run_key, worker = keys
    d = dispatch(worker)
    with pytest.raises(WarrantError):
        check_dispatch(d, d.sign(run_key), grant_of(AgentKey.generate(), run_key),
                       principal.public, worker.public, now=NOW)  # fmt: skip
    elsewhere = GrantCheck(grant_of(principal, run_key, "run-2"), principal.public, "run-1")
    with pytest.raises(WarrantWrongRun):
        check_dispatch(d, d.sign(run_key), elsewhere, principal.public, worker.public, now=NOW)


def test_an_expired_dispatch_is_refused(keys) -> None:
    principal, run_key, worker = keys
    d = dispatch(worker, expires=NOW - 1)
    with pytest.raises(WarrantExpired):
        check_dispatch(d, d.sign(run_key), grant_of(principal, run_key), principal.public,
                       worker.public, now=NOW)  # fmt: skip


@pytest.mark.parametrize(
    "wider",
    [
        Remit(tools={"read": {}, "write": {}, "delete": {}}, budget=Budget(calls=10), depth=1),
        Remit(tools={"read": {}}, budget=Budget(calls=11), depth=1),
        Remit(tools={"read": {}}, budget=Budget(calls=10), depth=3),
    ],
    ids=["tool", "budget", "depth"],
)
def test_a_remit_wider_than_the_grant_is_refused_even_if_signed(keys, wider) -> None:
    principal, run_key, worker = keys
    d = dispatch(worker, wider)
    with pytest.raises(WarrantWidening):
        check_dispatch(d, d.sign(run_key), grant_of(principal, run_key), principal.public,
                       worker.public, now=NOW)  # fmt: skip
