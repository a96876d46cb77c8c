"""The journal spec: what every backend does, through the ``JournalStore`` protocol only.

Nothing here may touch a backend's internals; a backend that needs special handling
belongs in its own test file.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remit.errors import JournalError, LeaseLost, RunLeased, RunNotFound
from remit.journal import FINAL_STATUSES, JournalStore, Lease, RunRecord, StepRecord

T0 = 1_700_000_000.25


def run(run_id: str = "run-1", **fields: object) -> RunRecord:
    base: dict[str, object] = {
        "goal": "audit src/",
        "agent": "pkg.agents:Auditor",
        "remit": json.dumps({"tools": {"read_file": {}}}),
        "created_at": T0,
        "updated_at": T0,
    }
    base.update(fields)
    return RunRecord(run_id, **base)  # type: ignore[arg-type]


def intent(step_id: str, run_id: str = "run-1", **fields: object) -> StepRecord:
    base: dict[str, object] = {
        "task_id": "t0",
        "seq": 0,
        "kind": "tool",
        "name": "read_file",
        "status": "started",
        "input": json.dumps({"path": "src/a.py"}),
        "started_at": T0,
    }
    base.update(fields)
    return StepRecord(run_id, step_id, **base)  # type: ignore[arg-type]


def result(step_id: str, run_id: str = "run-1", **fields: object) -> StepRecord:
    base: dict[str, object] = {
        "status": "ok",
        "output": json.dumps({"text": "hello"}),
        "spent": json.dumps({"calls": 1}),
        "ended_at": T0 + 1.5,
    }
    base.update(fields)
    return intent(step_id, run_id, **base)


def all_steps(journal: JournalStore, run_id: str = "run-1") -> list[StepRecord]:
    return list(journal.steps(run_id))


# --- the store itself -----------------------------------------------------------------


def test_is_a_journal_store(journal: JournalStore) -> None:
    assert isinstance(journal, JournalStore)
    assert journal.durability in ("full", "normal")


def test_schema_version_is_a_positive_int(journal: JournalStore) -> None:
    assert isinstance(journal.schema_version, int)
    assert journal.schema_version >= 1


def test_close_is_idempotent(journal: JournalStore) -> None:
    journal.close()
    journal.close()


# --- runs -------------------------------------------------------------------------------


def test_run_round_trips_every_field(journal: JournalStore) -> None:
    record = run(
        "run-ü-🚀",
        goal="Prüfe src/ — 检查代码 🚀",
        inputs=json.dumps({"dir": "src/"}),
        meta=json.dumps({"host": "laptop", "tags": ["a", "ß"]}),
        created_at=T0,
        updated_at=T0 + 0.5,
    )
    journal.create_run(record)
    assert journal.get_run("run-ü-🚀") == record


def test_new_run_defaults(journal: JournalStore) -> None:
    journal.create_run(run())
    got = journal.get_run("run-1")
    assert got.status == "running"
    assert (got.inputs, got.result, got.error, got.meta) == (None, None, None, None)


def test_created_at_of_zero_means_now(journal: JournalStore) -> None:
    before = time.time()
    journal.create_run(run(created_at=0.0, updated_at=0.0))
    got = journal.get_run("run-1")
    assert before <= got.created_at <= time.time()
    assert got.updated_at == got.created_at


def test_duplicate_run_id_raises_and_keeps_the_first(journal: JournalStore) -> None:
    journal.create_run(run(goal="first"))
    with pytest.raises(JournalError, match="run-1"):
        journal.create_run(run(goal="second"))
    assert journal.get_run("run-1").goal == "first"


def test_unknown_run_raises_run_not_found(journal: JournalStore) -> None:
    with pytest.raises(RunNotFound, match="no-such-run"):
        journal.get_run("no-such-run")


def test_list_runs_most_recent_first(journal: JournalStore) -> None:
    for i, created in enumerate([T0 + 2, T0, T0 + 3, T0 + 1]):
        journal.create_run(run(f"run-{i}", created_at=created, updated_at=created))
    assert [r.run_id for r in journal.list_runs()] == ["run-2", "run-0", "run-3", "run-1"]
    assert [r.run_id for r in journal.list_runs(limit=2)] == ["run-2", "run-0"]


def test_list_runs_of_an_empty_journal(journal: JournalStore) -> None:
    assert journal.list_runs() == []


def test_finish_run_records_the_outcome(journal: JournalStore) -> None:
    journal.create_run(run())
    journal.finish_run("run-1", "done", json.dumps({"answer": 42}), None)
    got = journal.get_run("run-1")
    assert (got.status, got.result, got.error) == ("done", '{"answer": 42}', None)
    assert got.updated_at >= got.created_at
    assert got.goal == "audit src/"


def test_finish_run_can_record_a_failure(journal: JournalStore) -> None:
    journal.create_run(run())
    error = json.dumps({"code": "BUDGET", "message": "out of calls"})
    journal.finish_run("run-1", "failed", None, error)
    got = journal.get_run("run-1")
    assert (got.status, got.result, got.error) == ("failed", None, error)


def test_finish_unknown_run_raises_run_not_found(journal: JournalStore) -> None:
    with pytest.raises(RunNotFound, match="ghost"):
        journal.finish_run("ghost", "done", None, None)


def test_finish_run_refuses_an_unknown_status(journal: JournalStore) -> None:
    journal.create_run(run())
    with pytest.raises(JournalError):
        journal.finish_run("run-1", "exploded", None, None)  # type: ignore[arg-type]
    assert journal.get_run("run-1").status == "running"


# --- steps: intents and results ----------------------------------------------------------


def test_intent_then_result(journal: JournalStore) -> None:
    journal.write([intent("s1")])
    assert journal.get_step("run-1", "s1") == intent("s1")
    journal.write([result("s1")])
    assert journal.get_step("run-1", "s1") == result("s1")


def test_result_keeps_the_intents_identity_and_input(journal: JournalStore) -> None:
    journal.write([intent("s1", seq=3, input='{"path": "a"}', started_at=T0)])
    journal.write([result("s1", seq=9, input='{"path": "b"}', started_at=T0 + 9)])
    got = journal.get_step("run-1", "s1")
    assert got is not None
    assert (got.seq, got.input, got.started_at) == (3, '{"path": "a"}', T0)
    assert (got.status, got.output, got.spent, got.ended_at) == (
        "ok",
        '{"text": "hello"}',
        '{"calls": 1}',
        T0 + 1.5,
    )


def test_proof_is_kept_as_written_with_the_intent(journal: JournalStore) -> None:
    journal.write([intent("s1", proof="sig-of-intent")])
    journal.write([result("s1", proof="another")])
    got = journal.get_step("run-1", "s1")
    assert got is not None
    assert (got.status, got.proof) == ("ok", "sig-of-intent")


def test_a_result_may_bring_the_proof_its_intent_lacked(journal: JournalStore) -> None:
    journal.write([intent("s1")])
    journal.write([result("s1", proof="late")])
    got = journal.get_step("run-1", "s1")
    assert got is not None and got.proof == "late"


def test_result_without_intent_inserts_the_whole_row(journal: JournalStore) -> None:
    journal.write([result("s1")])
    assert all_steps(journal) == [result("s1")]


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES))
def test_first_result_wins(journal: JournalStore, status: str) -> None:
    first = result("s1", status=status, output='"first"', error='{"code": "X"}')
    journal.write([intent("s1")])
    journal.write([first])
    journal.write([result("s1", output='"second"', ended_at=T0 + 99)])
    journal.write([result("s1", status="error", output=None, error='{"code": "Y"}')])
    assert all_steps(journal) == [first]


def test_first_result_wins_within_one_batch(journal: JournalStore) -> None:
    journal.write([intent("s1"), result("s1", output='"a"'), result("s1", output='"b"')])
    assert all_steps(journal) == [result("s1", output='"a"')]


def test_intent_after_result_is_ignored(journal: JournalStore) -> None:
    journal.write([result("s1")])
    journal.write([intent("s1", input='{"other": true}')])
    assert all_steps(journal) == [result("s1")]


def test_second_intent_is_ignored(journal: JournalStore) -> None:
    journal.write([intent("s1", input='"first"')])
    journal.write([intent("s1", input='"second"', seq=5)])
    assert all_steps(journal) == [intent("s1", input='"first"')]


def test_batch_with_intent_and_result_of_one_step(journal: JournalStore) -> None:
    journal.write([intent("s1"), intent("s2"), result("s1")])
    assert all_steps(journal) == [result("s1"), intent("s2")]


def test_batch_with_result_before_intent_of_one_step(journal: JournalStore) -> None:
    journal.write([result("s1"), intent("s1", input='"late"')])
    assert all_steps(journal) == [result("s1")]


def test_empty_batch_is_a_no_op(journal: JournalStore) -> None:
    journal.write([])
    assert all_steps(journal) == []


def test_failed_batch_writes_nothing(journal: JournalStore) -> None:
    journal.write([intent("s0")])
    bad = intent("s3", status="exploded")
    with pytest.raises(JournalError):
        journal.write([intent("s1"), result("s0"), bad, intent("s4")])
    assert all_steps(journal) == [intent("s0")]


# --- steps: order, lookup, isolation ----------------------------------------------------


def test_steps_come_in_first_write_order(journal: JournalStore) -> None:
    # step ids sort differently from the write order, and results arrive out of order
    ids = [f"s{n}" for n in (5, 1, 9, 3, 7, 2, 8)]
    journal.write([intent(i) for i in ids[:4]])
    journal.write([result(ids[2]), intent(ids[4]), result(ids[0])])
    journal.write([result(ids[5]), intent(ids[6]), result(ids[4])])
    journal.write([intent(i) for i in ids])  # late intents never move a row
    assert [s.step_id for s in journal.steps("run-1")] == ids


def test_steps_of_an_unknown_run_are_empty(journal: JournalStore) -> None:
    assert all_steps(journal, "nobody") == []


def test_get_step_of_an_unknown_step_is_none(journal: JournalStore) -> None:
    journal.write([intent("s1")])
    assert journal.get_step("run-1", "s2") is None
    assert journal.get_step("run-2", "s1") is None


def test_get_steps_with_many_ids(journal: JournalStore) -> None:
    journal.write([intent(f"s{i:04d}", seq=i) for i in range(2500)])
    journal.write([result(f"s{i:04d}", seq=i) for i in range(0, 2500, 7)])
    wanted = [f"s{i:04d}" for i in range(2499, -1, -1)] + ["missing", "s0001"]
    got = journal.get_steps("run-1", wanted)
    assert set(got) == {f"s{i:04d}" for i in range(2500)}
    for i in range(2500):
        step = got[f"s{i:04d}"]
        assert step.seq == i
        assert step.status == ("ok" if i % 7 == 0 else "started")


def test_get_steps_of_no_ids(journal: JournalStore) -> None:
    journal.write([intent("s1")])
    assert journal.get_steps("run-1", []) == {}
    assert journal.get_steps("run-1", iter(["nope"])) == {}


def test_runs_are_isolated(journal: JournalStore) -> None:
    journal.write([intent("s1", "run-a"), intent("s1", "run-b", input='"b"')])
    journal.write([result("s1", "run-a", output='"a"')])
    journal.write([result("s1", "run-b", output='"b"'), intent("s2", "run-b")])
    assert all_steps(journal, "run-a") == [result("s1", "run-a", output='"a"')]
    assert all_steps(journal, "run-b") == [
        result("s1", "run-b", input='"b"', output='"b"'),
        intent("s2", "run-b"),
    ]
    assert set(journal.get_steps("run-a", ["s1", "s2"])) == {"s1"}


# --- round trips and durability --------------------------------------------------------


def test_records_round_trip_field_by_field(journal: JournalStore) -> None:
    records = [
        # every optional field None
        StepRecord("run-1", "bare", "t", 0, "model", "m", "started"),
        # unicode everywhere, odd JSON formatting kept byte for byte
        StepRecord(
            "run-1",
            "ü/步骤/🚀",
            "task-ß",
            -1,
            "tool",
            "naïve_tool",
            "error",
            input='{ "q" : "wer?  — 谁?" }',
            output=None,
            error=json.dumps({"code": "TOOL_TRANSIENT", "message": "Zeitüberschreitung ⏱"}),
            spent='{"cost_usd": 0.000123456789}',
            started_at=time.time(),
            ended_at=time.time() + 1e-6,
        ),
        # 1 MB output; JSON escapes and ensure_ascii=False text
        StepRecord(
            "run-1",
            "big",
            "t",
            2**62,
            "tool",
            "fetch",
            "ok",
            input="null",
            output=json.dumps({"body": 'x"\\\n\t' * 200_000 + "é" * 10}, ensure_ascii=False),
            spent="{}",
            started_at=0.1,
            ended_at=1e12,
        ),
        StepRecord("run-1", "denied", "t", 3, "tool", "rm", "denied", error='"no"'),
        StepRecord("run-1", "signed", "t", 4, "tool", "rm", "ok", proof="AAECAw-_x"),
    ]
    assert len(records[2].output or "") > 1_000_000
    journal.write(records)
    assert all_steps(journal) == records
    for r in records:
        got = journal.get_step("run-1", r.step_id)
        assert got is not None
        for field in dataclasses.fields(StepRecord):
            assert getattr(got, field.name) == getattr(r, field.name), field.name
    assert journal.get_steps("run-1", [r.step_id for r in records]) == {
        r.step_id: r for r in records
    }


def test_everything_is_there_after_close_and_reopen(
    journal_factory: Callable[[], JournalStore],
) -> None:
    journal = journal_factory()
    durability = journal.durability
    journal.create_run(run())
    journal.write([intent("s1"), intent("s2")])
    journal.write([result("s1")])
    journal.finish_run("run-1", "done", '"ok"', None)
    journal.close()

    again = journal_factory()
    assert again.durability == durability
    got = again.get_run("run-1")
    assert (got.status, got.result) == ("done", '"ok"')
    assert all_steps(again) == [result("s1"), intent("s2")]
    # and the protocol still holds on the reopened store
    again.write([result("s1", output='"late"'), result("s2")])
    assert all_steps(again) == [result("s1"), result("s2")]


# --- the protocol against a model, on random histories ---------------------------------

_run_ids = itertools.count()

_record = st.tuples(
    st.integers(0, 5),  # which step
    st.sampled_from(["started", "started", "ok", "error", "denied"]),
    st.text(max_size=5),  # payload, to tell results apart
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=st.lists(st.lists(_record, max_size=6), max_size=6))
def test_matches_a_model_of_the_protocol(
    journal: JournalStore, batches: list[list[tuple[int, str, str]]]
) -> None:
    # each example gets its own run in the shared journal
    run_id = f"model-{next(_run_ids)}"
    model: dict[str, StepRecord] = {}
    for batch in batches:
        records: list[StepRecord] = []
        for n, status, payload in batch:
            text = json.dumps(payload)
            if status == "started":
                records.append(intent(f"s{n}", run_id, seq=n, input=text))
            else:
                records.append(result(f"s{n}", run_id, seq=n, status=status, output=text))
        journal.write(records)
        for r in records:
            known = model.get(r.step_id)
            if known is None:
                model[r.step_id] = r
            elif known.status == "started" and r.status != "started":
                model[r.step_id] = dataclasses.replace(
                    known,
                    status=r.status,
                    output=r.output,
                    error=r.error,
                    spent=r.spent,
                    ended_at=r.ended_at,
                )
    assert all_steps(journal, run_id) == list(model.values())
    assert journal.get_steps(run_id, [f"s{n}" for n in range(6)]) == model


# --- interruption marks -------------------------------------------------------------------


def test_an_interruption_mark_keeps_the_step_unfinished_and_says_why(
    journal: JournalStore,
) -> None:
    journal.create_run(run())
    journal.write([intent("s1")])
    why = json.dumps({"code": "INTERRUPTED", "message": "the run stopped"})
    journal.write([intent("s1", input=None, error=why, ended_at=T0 + 2)])
    [row] = all_steps(journal)
    assert row.status == "started"
    assert row.error == why and row.ended_at == T0 + 2
    assert row.input == json.dumps({"path": "src/a.py"}), "the intent's input was lost"
    # a result still lands on it, and a mark never touches a finished step
    journal.write([result("s1")])
    journal.write([intent("s1", error=why)])
    [row] = all_steps(journal)
    assert row.status == "ok" and row.error is None


# --- leases: one owner per run ----------------------------------------------------------------


def lease(owner: str = "a", run_id: str = "run-1", at: float = T0, ttl: float = 15.0) -> Lease:
    return Lease(run_id, owner, 4242, "host-a", at, at, at + ttl)


def never(_: Lease) -> bool:
    return False


def test_create_run_takes_its_first_lease_in_the_same_transaction(journal: JournalStore) -> None:
    journal.create_run(run(), lease("a"))
    assert journal.get_lease("run-1") == lease("a")
    with pytest.raises(RunLeased, match="pid 4242 on host-a"):
        journal.acquire_lease(lease("b", at=T0 + 1), never)


def test_a_lease_is_taken_when_free_expired_or_its_holder_is_gone(journal: JournalStore) -> None:
    journal.create_run(run())
    assert journal.get_lease("run-1") is None
    journal.acquire_lease(lease("a"), never)
    # expired: taken over without asking
    journal.acquire_lease(lease("b", at=T0 + 16), never)
    assert journal.get_lease("run-1") == lease("b", at=T0 + 16)
    # live, but its holder is gone: taken over when takeover() says so
    seen: list[Lease] = []

    def gone(held: Lease) -> bool:
        seen.append(held)
        return True

    journal.acquire_lease(lease("c", at=T0 + 17), gone)
    assert seen == [lease("b", at=T0 + 16)]
    assert journal.get_lease("run-1") == lease("c", at=T0 + 17)


def test_renew_and_release_touch_only_the_owners_lease(journal: JournalStore) -> None:
    journal.create_run(run(), lease("a"))
    assert journal.renew_lease("run-1", "a", T0 + 5, T0 + 20)
    held = journal.get_lease("run-1")
    assert held is not None and (held.heartbeat, held.expires) == (T0 + 5, T0 + 20)
    assert not journal.renew_lease("run-1", "b", T0 + 6, T0 + 21)
    journal.release_lease("run-1", "b")
    assert journal.get_lease("run-1") is not None
    journal.release_lease("run-1", "a")
    assert journal.get_lease("run-1") is None
    assert not journal.renew_lease("run-1", "a", T0 + 7, T0 + 22)


def test_writes_fenced_by_a_lost_lease_write_nothing(journal: JournalStore) -> None:
    journal.create_run(run(), lease("a"))
    journal.write([intent("s1")], owner="a")
    journal.acquire_lease(lease("b", at=T0 + 16), never)  # a's lease expired
    with pytest.raises(LeaseLost):
        journal.write([result("s1"), intent("s2")], owner="a")
    assert [(s.step_id, s.status) for s in all_steps(journal)] == [("s1", "started")]
    with pytest.raises(LeaseLost):
        journal.finish_run("run-1", "done", None, None, owner="a")
    assert journal.get_run("run-1").status == "running"
    journal.finish_run("run-1", "done", '"ok"', None, owner="b")
    assert journal.get_run("run-1").status == "done"
    assert journal.get_lease("run-1") is None, "finishing a run gives up its lease"


# --- a sealed run's chain -----------------------------------------------------------------


def test_an_owner_reading_its_chain_again_places_after_it_while_others_rows_wait(
    journal_factory: Callable[[], JournalStore],
) -> None:
    """Rows another process writes wait unchained (at no place) for the owner. An owner
    that reads its chain again (a resume, or a retry after a lost connection) while only
    such rows exist chains them from place 1, and every checkpoint verifies."""
    from nacl.signing import SigningKey

    from remit.journal._chain import fold, genesis, link

    key = SigningKey(b"\x05" * 32)

    def sign(message: bytes) -> bytes:
        return key.sign(message).signature

    owner = journal_factory()
    owner.create_run(run(), None, (bytes(key.verify_key), sign))
    other = journal_factory()  # a worker, or a person answering an approval
    other.write([intent("w1"), result("w2")])
    other.write([result("w1")])
    other.close()
    owner.close()
    again = journal_factory()  # the owner's picture of its chain, read again
    again.seal("run-1", bytes(key.verify_key), sign)
    again.write([result("own")])
    again.finish_run("run-1", "done", '"ok"', None)
    entries = again.chain("run-1")
    assert [e.n for e in entries] == list(range(1, len(entries) + 1))
    assert {e.step_id for e in entries} == {"w1", "w2", "own"}
    head, prev = genesis("run-1"), 0
    for cp in again.checkpoints("run-1"):
        head = fold(head, [link(e.step_id, e.entry) for e in entries[prev : cp.n]])
        prev = cp.n
        assert head == cp.head
        key.verify_key.verify(cp.message(), cp.signature)
    assert prev == len(entries)
    again.close()
