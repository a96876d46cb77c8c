"""A sealed run's journal is a hash chain with signed checkpoints: every change to a
step row gives the row its place in the chain and its hash (a replaced entry is kept as
superseded); the owner signs the head with each batch and when the run ends; rows other
processes write wait for the owner to chain them."""

from __future__ import annotations

import dataclasses
import doctest
import hashlib
import sqlite3
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from remit.errors import JournalError
from remit.journal import RunRecord, SQLiteJournal, StepRecord
from remit.journal import _chain as chain_module
from remit.journal._chain import (
    fold,
    genesis,
    link,
    row_hash,
    row_hash_of,
    row_hashes,
    run_hash,
    step_fields,
)

RUN = "r1"
KEY = SigningKey(b"k" * 32)


def sign(message: bytes) -> bytes:
    return KEY.sign(message).signature


def verifies(store: SQLiteJournal, run_id: str = RUN) -> bool:
    """Every checkpoint's head is the fold of the chain up to it, and signed."""
    entries = [e for e in store.chain(run_id) if e.n > 0]
    assert [e.n for e in entries] == list(range(1, len(entries) + 1))
    head, prev = genesis(run_id), 0
    for cp in store.checkpoints(run_id):
        head = fold(head, [link(e.step_id, e.entry) for e in entries[prev : cp.n]])
        prev = cp.n
        assert head == cp.head
        KEY.verify_key.verify(cp.message(), cp.signature)
    return True


def step(i: int, status: str = "ok", **kw: object) -> StepRecord:
    return StepRecord(RUN, f"s{i}", "t", i, "tool", "calc", status, '{"i": 1}', **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> SQLiteJournal:
    s = SQLiteJournal(tmp_path / "j.db", durability="normal")
    s.create_run(RunRecord(RUN, "g", "a", "{}"))
    yield s  # type: ignore[misc]
    s.close()


def test_an_unsealed_run_has_no_chain(store: SQLiteJournal) -> None:
    store.write([step(1)])
    assert store.chain(RUN) == [] and store.checkpoints(RUN) == [] and store.seal_key(RUN) is None


def test_every_change_to_a_row_appends_its_hash_and_each_batch_is_signed(
    store: SQLiteJournal,
) -> None:
    store.seal(RUN, bytes(KEY.verify_key), sign)
    assert len(store.checkpoints(RUN)) == 1  # the run's record as created
    store.write([step(1, "started", started_at=1.0), step(2, started_at=1.0, ended_at=2.0)])
    store.write([step(1, "ok", output="3", started_at=1.0, ended_at=2.0)])  # the result lands
    store.write([step(2, "error", error='{"code": "X"}')])  # ignored: the first result wins
    store.write([step(1, "started")])  # ignored: an intent never touches a row
    entries = store.chain(RUN)
    assert [(e.n, e.step_id) for e in entries] == [(1, "s1"), (2, "s2"), (3, "s1")]
    rows = {s.step_id: s for s in store.steps(RUN)}
    # the last entry of each step is the hash of its row as it stands
    assert entries[2].entry == row_hash(rows["s1"]) and entries[1].entry == row_hash(rows["s2"])
    cps = store.checkpoints(RUN)
    assert [(c.k, c.n) for c in cps] == [(1, 0), (2, 2), (3, 3)]  # none for ignored writes
    assert verifies(store)


def test_staged_batches_and_the_runs_end_are_checkpointed(store: SQLiteJournal) -> None:
    store.seal(RUN, bytes(KEY.verify_key), sign)
    store.stage([step(1)])
    store.commit_staged()
    store.finish_run(RUN, "done", "3", None)
    cps = store.checkpoints(RUN)
    assert [(c.k, c.n) for c in cps] == [(1, 0), (2, 1), (3, 1)]
    assert cps[-1].run_hash == run_hash(store.get_run(RUN)) != cps[0].run_hash
    assert verifies(store)


def test_rows_other_processes_write_are_covered_by_the_owners_next_checkpoint(
    store: SQLiteJournal, tmp_path: Path
) -> None:
    store.seal(RUN, bytes(KEY.verify_key), sign)
    other = SQLiteJournal(tmp_path / "j.db", durability="normal")  # a person's answer
    other.write([step(7)])
    other.close()
    assert [(e.n, e.step_id) for e in store.chain(RUN)] == [(-1, "s7")]  # waits for the owner
    assert len(store.checkpoints(RUN)) == 1
    store.write([step(8)])
    assert [(e.n, e.step_id) for e in store.chain(RUN)] == [(1, "s7"), (2, "s8")]
    assert store.checkpoints(RUN)[-1].n == 2 and verifies(store)


def test_a_resumed_owner_continues_the_chain_and_another_key_is_refused(
    store: SQLiteJournal, tmp_path: Path
) -> None:
    store.seal(RUN, bytes(KEY.verify_key), sign)
    store.write([step(1)])
    again = SQLiteJournal(tmp_path / "j.db", durability="normal")
    again.seal(RUN, bytes(KEY.verify_key), sign)
    again.write([step(2)])
    assert [(c.k, c.n) for c in again.checkpoints(RUN)] == [(1, 0), (2, 1), (3, 2)]
    assert verifies(again)
    with pytest.raises(JournalError, match="sealed with another key"):
        again.seal(RUN, bytes(SigningKey(b"x" * 32).verify_key), sign)
    again.close()


def test_a_write_the_file_ignores_is_chained_from_what_the_rows_hold(
    store: SQLiteJournal,
) -> None:
    """The owner predicts what its writes change and checks the file changed as many
    rows; a second result for a finished step (the first result wins) makes the count
    differ, and the batch is chained again from the rows themselves."""
    store.seal(RUN, bytes(KEY.verify_key), sign)
    store.write([step(1, output="3")])
    store.write([step(1, "error", error='{"code": "X"}'), step(2)])
    rows = {s.step_id: s for s in store.steps(RUN)}
    assert rows["s1"].status == "ok" and rows["s1"].output == "3"
    entries = store.chain(RUN)
    assert [(e.n, e.step_id) for e in entries] == [(1, "s1"), (2, "s2")]
    assert entries[0].entry == row_hash(rows["s1"]) and verifies(store)


def test_a_mispredicted_batch_is_rolled_back_whole_and_written_again(
    store: SQLiteJournal, tmp_path: Path
) -> None:
    """A staged batch that holds a result the file ignores, after another process's row:
    the first attempt (which chained the other's row and wrote part of the batch) is
    rolled back whole, and the second chains every row exactly once."""
    store.seal(RUN, bytes(KEY.verify_key), sign)
    store.write([step(1, output="3")])
    other = SQLiteJournal(tmp_path / "j.db", durability="normal")  # a person's answer
    other.write([step(7)])
    other.close()
    store.stage([step(2), step(1, "error", error='{"code": "X"}'), step(3)])
    store.commit_staged()
    store.write([step(4)])
    assert [(e.n, e.step_id) for e in store.chain(RUN)] == [
        (1, "s1"), (2, "s7"), (3, "s2"), (4, "s3"), (5, "s4"),
    ]  # fmt: skip
    rows = {s.step_id: s for s in store.steps(RUN)}
    assert rows["s1"].status == "ok" and rows["s1"].output == "3"
    assert verifies(store)


def test_rows_written_before_the_seal_are_chained_by_it(store: SQLiteJournal) -> None:
    store.write([step(1, "started", started_at=1.0)])
    store.seal(RUN, bytes(KEY.verify_key), sign)
    store.write([step(1, "ok", output="3", ended_at=2.0), step(2)])
    rows = {s.step_id: s for s in store.steps(RUN)}
    assert rows["s1"].started_at == 1.0  # the intent's identity stays
    assert [(e.n, e.step_id) for e in store.chain(RUN)] == [(1, "s1"), (2, "s1"), (3, "s2")]
    assert store.chain(RUN)[1].entry == row_hash(rows["s1"]) and verifies(store)


def test_a_result_landing_on_its_intent_keeps_the_intents_entry(store: SQLiteJournal) -> None:
    store.seal(RUN, bytes(KEY.verify_key), sign)
    store.write([step(1, "started", started_at=1.0)])
    intent = store.chain(RUN)[0]
    store.write([step(1, "ok", output="3", started_at=1.0, ended_at=2.0)])
    assert [(e.n, e.step_id) for e in store.chain(RUN)] == [(1, "s1"), (2, "s1")]
    assert store.chain(RUN)[0] == intent and verifies(store)


def test_a_raw_edit_leaves_the_row_unlike_its_entry(store: SQLiteJournal, tmp_path: Path) -> None:
    store.seal(RUN, bytes(KEY.verify_key), sign)
    store.write([step(1)])
    conn = sqlite3.connect(tmp_path / "j.db")
    conn.execute("UPDATE steps SET output = '99' WHERE step_id = 's1'")
    conn.commit()
    conn.close()
    row = store.get_step(RUN, "s1")
    assert row is not None and row_hash(row) != store.chain(RUN)[-1].entry


def test_module_examples() -> None:
    assert doctest.testmod(chain_module).failed == 0


def test_a_run_is_sealed_in_the_transaction_that_creates_it(tmp_path: Path) -> None:
    s = SQLiteJournal(tmp_path / "k.db", durability="normal")
    s.create_run(RunRecord("r2", "g", "a", "{}"), seal=(bytes(KEY.verify_key), sign))
    assert s.seal_key("r2") == bytes(KEY.verify_key)
    assert [(c.k, c.n) for c in s.checkpoints("r2")] == [(1, 0)]
    assert s.checkpoints("r2")[0].run_hash == run_hash(s.get_run("r2"))
    s.write([StepRecord("r2", "s1", "t", 1, "tool", "calc", "ok", "{}")])
    assert verifies(s, "r2")
    with pytest.raises(JournalError, match="already exists"):
        s.create_run(RunRecord("r2", "g", "a", "{}"), seal=(bytes(KEY.verify_key), sign))
    s.close()


def test_a_new_runs_seal_chains_what_the_file_already_holds_of_its_id(tmp_path: Path) -> None:
    """A run just created starts its chain at once, unless rows of its id are already
    there (left by a run whose record is gone): those are chained first, as seal() does."""
    s = SQLiteJournal(tmp_path / "k.db", durability="normal")
    s.write([StepRecord("r3", "s0", "t", 0, "tool", "calc", "ok", "{}")])
    s.create_run(RunRecord("r3", "g", "a", "{}"), seal=(bytes(KEY.verify_key), sign))
    assert [(e.n, e.step_id) for e in s.chain("r3")] == [(1, "s0")]
    assert [(c.k, c.n) for c in s.checkpoints("r3")] == [(1, 1)] and verifies(s, "r3")
    s.close()


# --- the row's byte form, as the docstring of row_hash_of states it ----------------------


def _documented_form(r: StepRecord) -> bytes:
    """The entry rebuilt from the documentation alone, as a verifier in another language
    would: text fields and seq joined by NUL, a byte of None flags, the times as doubles."""
    optional = (r.input, r.output, r.error, r.spent, r.proof, r.ended_at)
    nulls = sum(1 << i for i, v in enumerate(optional) if v is None)
    text = "\x00".join(
        (
            r.run_id,
            r.step_id,
            r.task_id,
            str(r.seq),
            r.kind,
            r.name,
            r.status,
            *("" if v is None else v for v in optional[:5]),
        )
    )
    times = struct.pack(">d", r.started_at)
    if r.ended_at is not None:
        times += struct.pack(">d", r.ended_at)
    data = b"remit.row\x00" + bytes([nulls]) + text.encode() + times
    return hashlib.sha256(data).digest()


@pytest.mark.parametrize(
    "record",
    [
        StepRecord(
            RUN,
            "0.1:call:1",
            "0.1",
            1,
            "call",
            "calc",
            "ok",
            '{"x":"é"}',
            "2",
            None,
            '{"calls":1}',
            1765000000.25,
            1765000000.5,
            "nonce:ab",
        ),
        StepRecord(RUN, "0.1:end", "0.1", 2, "task", "end", "started", started_at=3.0),
        StepRecord(RUN, "s", "t", 0, "tool", "calc", "error", error='{"code":"X"}', ended_at=4),
    ],
)
def test_a_rows_entry_is_the_documented_byte_form(record: StepRecord) -> None:
    assert row_hash(record) == _documented_form(record)


def test_none_and_the_empty_string_hash_apart() -> None:
    a = StepRecord(RUN, "s", "t", 0, "tool", "calc", "ok", output=None, started_at=1.0)
    b = StepRecord(RUN, "s", "t", 0, "tool", "calc", "ok", output="", started_at=1.0)
    assert row_hash(a) != row_hash(b)


def test_a_nul_moved_between_fields_changes_the_hash() -> None:
    # with NUL as the separator, "a" + NUL + "b" in one field could pass for two fields:
    # a row holding a NUL hashes in another form, never as a well-formed row does
    a = StepRecord(RUN, "s\x00t", "u", 0, "tool", "calc", "ok", started_at=1.0)
    b = StepRecord(RUN, "s", "t\x00u", 0, "tool", "calc", "ok", started_at=1.0)
    assert len({row_hash(a), row_hash(b)}) == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [("seq", "0"), ("seq", True), ("status", b"ok"), ("started_at", "1.0"), ("output", 2)],
)
def test_a_field_of_another_type_hashes_apart_from_the_row_as_written(
    field: str, value: object
) -> None:
    # what an edit of the file can leave in a column: hashed, never raising, never equal
    good = StepRecord(RUN, "s", "t", 0, "tool", "calc", "ok", output="2", started_at=1.0)
    edited = dataclasses.replace(good, **{field: value})
    assert row_hash(edited) != row_hash(good)


# --- a batch hashed at once is hashed as each of its rows --------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
_maybe = st.one_of(st.none(), _text)
_time = st.floats(allow_nan=False, allow_infinity=False)
#: a row as a writer makes it
_row = st.tuples(
    _text, _text, _text, st.integers(), _text, _text,
    st.sampled_from(["started", "ok", "error", "denied"]),
    _maybe, _maybe, _maybe, _maybe, _time, st.one_of(st.none(), _time), _maybe,
).map(list)  # fmt: skip
#: what an edit of the file can leave in a column instead
_edit = st.one_of(
    st.none(), st.integers(), st.booleans(), st.binary(max_size=4), _time,
    st.text(max_size=4).map(lambda t: t + "\x00"),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_row, max_size=6), st.lists(st.tuples(st.integers(0, 13), _edit), max_size=2))
def test_a_batch_hashes_as_its_rows_one_by_one(
    rows: list[list[object]], edits: list[tuple[int, object]]
) -> None:
    for i, (column, value) in enumerate(edits):  # an edited row among well-formed ones
        if rows:
            rows[i % len(rows)][column] = value
    batch = [tuple(r) for r in rows]
    assert row_hashes(batch) == [row_hash_of(r) for r in batch]


def test_a_batch_of_written_rows_hashes_as_its_rows() -> None:
    rows = [
        step_fields(r)
        for i in range(40)
        for r in (
            dataclasses.replace(step(i, output=str(i), proof=f"n{i}", ended_at=2.0), input=None),
            step(i, "started", spent='{"calls": 1}'),
            step(i, "error", error='{"code": "X"}', ended_at=3),
        )
    ]
    assert row_hashes(rows) == [row_hash_of(r) for r in rows]
    rows.append(step_fields(step(99, error="x\x00y")))  # a NUL: that row hashes apart
    assert row_hashes(rows) == [row_hash_of(r) for r in rows]
