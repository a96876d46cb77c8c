"""What only the SQLite backend does: its file, its pragmas, damaged files, migrations,
and sharing the file with other connections and processes.

The backend-agnostic spec is in ``tests/journal_conformance``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import remit.journal
from remit.errors import JournalCorrupt, JournalError, JournalVersionError, RunNotFound
from remit.journal import (
    JournalStore,
    RunRecord,
    SQLiteJournal,
    StepRecord,
    load_json,
    open_journal,
)
from remit.journal.sqlite import SCHEMA_VERSION
from remit.journal.sqlite import _schema as sqlite_schema
from remit.journal.sqlite import _steps as sqlite_steps


def step(step_id: str, run_id: str = "run-1", status: str = "started", **fields: object):
    base: dict[str, object] = {
        "task_id": "t0",
        "seq": 0,
        "kind": "tool",
        "name": "read_file",
        "status": status,
        "input": json.dumps({"path": f"src/{step_id}.py"}),
        "started_at": 1.0,
    }
    if status != "started":
        base |= {"output": json.dumps({"text": "y" * 400}), "ended_at": 2.0}
    base.update(fields)
    return StepRecord(run_id, step_id, **base)  # type: ignore[arg-type]


def new_run(run_id: str = "run-1") -> RunRecord:
    return RunRecord(run_id, goal="g", agent="a", remit="{}", created_at=1.0, updated_at=1.0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def journal(db: Path) -> Iterator[SQLiteJournal]:
    with SQLiteJournal(db, durability="normal") as j:
        yield j


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def filled(path: Path, steps: int = 300) -> list[StepRecord]:
    """A closed journal at ``path`` with one run and ``steps`` finished steps."""
    records = [step(f"s{i:04d}", status="ok", seq=i) for i in range(steps)]
    with SQLiteJournal(path) as j:
        j.create_run(new_run())
        for start in range(0, steps, 50):
            j.write(records[start : start + 50])
    return records


def read_everything(path: Path) -> tuple[list[RunRecord], list[StepRecord]]:
    with SQLiteJournal(path) as j:
        runs = j.list_runs()
        return runs, list(j.steps("run-1"))


# --- the file and its settings -------------------------------------------------------


@pytest.mark.parametrize(("durability", "synchronous"), [("full", 2), ("normal", 1)])
def test_pragmas(db: Path, durability: str, synchronous: int) -> None:
    with SQLiteJournal(db, durability=durability) as j:  # type: ignore[arg-type]
        conn = j._conn  # pyright: ignore[reportPrivateUsage]
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (synchronous,)
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (5000,)
        assert j.durability == durability


def test_unknown_durability_is_refused(db: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        SQLiteJournal(db, durability="sometimes")  # type: ignore[arg-type]


def test_schema_of_a_new_file(db: Path) -> None:
    with SQLiteJournal(db) as j:
        assert j.schema_version == SCHEMA_VERSION == len(sqlite_schema._MIGRATIONS)  # pyright: ignore[reportPrivateUsage]
    conn = raw(db)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "runs", "steps"} <= tables


def test_reading_steps_in_order_needs_no_sort(journal: SQLiteJournal) -> None:
    conn = journal._conn  # pyright: ignore[reportPrivateUsage]
    assert conn is not None
    plan = conn.execute(
        "EXPLAIN QUERY PLAN " + sqlite_steps._SELECT_STEPS,  # pyright: ignore[reportPrivateUsage]
        ("run-1",),
    ).fetchall()
    text = " ".join(str(row[-1]) for row in plan)
    assert "steps_by_run" in text
    assert "TEMP B-TREE" not in text


def test_empty_file_becomes_a_journal(db: Path) -> None:
    db.touch()
    with SQLiteJournal(db) as j:
        j.create_run(new_run())
    assert read_everything(db)[0] == [new_run()]


def test_in_memory_journal() -> None:
    with SQLiteJournal(":memory:") as j:
        j.write([step("s1"), step("s1", status="ok")])
        assert [s.status for s in j.steps("run-1")] == ["ok"]


def test_missing_directory_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "runs.db"
    with pytest.raises(JournalError, match="does not exist") as info:
        SQLiteJournal(path)
    assert str(path) in str(info.value)
    assert not (tmp_path / "no").exists()


def test_a_directory_is_not_a_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="is a directory"):
        SQLiteJournal(tmp_path)


def test_close_is_idempotent_and_final(db: Path) -> None:
    j = SQLiteJournal(db)
    j.close()
    j.close()
    with pytest.raises(JournalError, match="closed"):
        j.write([step("s1")])
    with pytest.raises(JournalError, match="closed"):
        j.get_run("run-1")
    assert "closed" in repr(j)


def test_context_manager_closes(db: Path) -> None:
    with SQLiteJournal(db) as j:
        pass
    with pytest.raises(JournalError, match="closed"):
        list(j.steps("run-1"))


def test_close_removes_the_wal(db: Path) -> None:
    filled(db, 10)
    assert not Path(f"{db}-wal").exists()


# --- errors on the way in ---------------------------------------------------------------


def test_write_of_a_non_text_value_is_a_journal_error(journal: SQLiteJournal) -> None:
    with pytest.raises(JournalError, match=r"write 2 step records.*runs\.db") as info:
        journal.write([step("s1"), step("s2", output={"not": "text"})])
    assert not isinstance(info.value, JournalCorrupt)
    assert list(journal.steps("run-1")) == []


def test_write_names_the_step_with_an_unknown_status(journal: SQLiteJournal) -> None:
    with pytest.raises(JournalError, match=r"'s2'.*'exploded'"):
        journal.write([step("s1"), step("s2", status="exploded")])


def test_write_refuses_missing_required_fields(journal: SQLiteJournal) -> None:
    with pytest.raises(JournalError, match="NOT NULL"):
        journal.write([step("s1", task_id=None)])


def test_a_batch_goes_in_many_row_statements_with_the_protocol_of_one_row_each(
    journal: SQLiteJournal,
) -> None:
    # 46 rows: statements of 32, 8, 4 and 2 rows; the last three meet rows the same
    # batch wrote earlier, as one row a statement would
    intents = [step(f"s{i:02d}") for i in range(43)]
    late = [step("s00", status="ok"), step("s01", status="ok"), step("s02", name="again")]
    journal.write(intents + late)
    steps = list(journal.steps("run-1"))
    assert [s.step_id for s in steps] == [f"s{i:02d}" for i in range(43)]
    assert [s.status for s in steps[:3]] == ["ok", "ok", "started"]
    assert steps[2].name == "read_file"  # an intent never touches an existing row
    assert steps[0].output == late[0].output


def test_run_not_found_names_the_journal_and_a_hint(journal: SQLiteJournal, db: Path) -> None:
    with pytest.raises(RunNotFound) as info:
        journal.get_run("r-404")
    message = str(info.value)
    assert "r-404" in message
    assert str(db) in message
    assert "remit runs" in message


def test_list_runs_refuses_a_negative_limit(journal: SQLiteJournal) -> None:
    with pytest.raises(ValueError):
        journal.list_runs(-1)


# --- damaged files --------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"hello, this is a text file\n" * 10,
        os.urandom(8192),
        b"\x00" * 4096,
        b"SQLite format 2\x00" + b"\x00" * 4080,
    ],
    ids=["text", "random", "zeros", "wrong-magic"],
)
def test_a_file_that_is_not_sqlite(db: Path, content: bytes) -> None:
    db.write_bytes(content)
    with pytest.raises(JournalCorrupt, match="not a SQLite database") as info:
        SQLiteJournal(db)
    assert str(db) in str(info.value)
    assert db.read_bytes() == content


def test_a_header_cut_short(db: Path) -> None:
    db.write_bytes(b"SQLite format 3\x00\x10\x00")
    with pytest.raises(JournalCorrupt, match="truncated"):
        SQLiteJournal(db)


def test_a_sqlite_file_that_is_not_a_journal(db: Path) -> None:
    conn = raw(db)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.close()
    with pytest.raises(JournalCorrupt, match=r"not a remit journal.*invoices") as info:
        SQLiteJournal(db)
    assert str(db) in str(info.value)
    conn = raw(db)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # left as it was
    conn.close()


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("DELETE FROM meta", "no schema_version"),
        ("UPDATE meta SET value = 'two' WHERE key = 'schema_version'", "'two'"),
        ("UPDATE meta SET value = '0' WHERE key = 'schema_version'", "'0'"),
        ("DROP TABLE steps", "table steps is missing"),
        ("ALTER TABLE runs DROP COLUMN meta", "table runs lacks columns meta"),
    ],
)
def test_a_journal_with_damaged_tables(db: Path, sql: str, problem: str) -> None:
    filled(db, 3)
    conn = raw(db)
    conn.execute(sql)
    conn.close()
    with pytest.raises(JournalCorrupt, match=problem) as info:
        SQLiteJournal(db)
    assert str(db) in str(info.value)


CUTS: dict[str, Callable[[int], int]] = {
    "half": lambda size: size // 2,
    "4096": lambda size: 4096,
    "100": lambda size: 100,
    "50": lambda size: 50,
    "1-page-short": lambda size: size - 4096,
    "1-byte-short": lambda size: size - 1,
}


def truncated_copy(tmp_path: Path, cut: str) -> tuple[Path, list[StepRecord]]:
    original = tmp_path / "whole.db"
    written = filled(original, 300)
    copy = tmp_path / f"cut-{cut}.db"
    shutil.copyfile(original, copy)
    with copy.open("r+b") as f:
        f.truncate(CUTS[cut](original.stat().st_size))
    return copy, written


@pytest.mark.parametrize("cut", CUTS)
def test_a_truncated_journal(tmp_path: Path, cut: str) -> None:
    copy, _ = truncated_copy(tmp_path, cut)
    with pytest.raises(JournalCorrupt, match="truncated") as info:
        read_everything(copy)
    assert str(copy) in str(info.value)


@pytest.mark.parametrize("cut", [c for c in CUTS if c != "1-byte-short"])
def test_a_truncated_journal_without_the_header_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: str
) -> None:
    # As when a WAL file is present and the size in the header cannot be trusted:
    # what SQLite itself detects must still come out as JournalCorrupt. (A cut inside
    # the last page is left out: SQLite alone reads the missing bytes as zeros and
    # returns a changed value without complaint; only the header check catches it.)
    monkeypatch.setattr(SQLiteJournal, "_check_file", lambda self: None)  # pyright: ignore[reportUnknownLambdaType]
    copy, written = truncated_copy(tmp_path, cut)
    try:
        runs, steps = read_everything(copy)
    except JournalCorrupt as e:
        assert str(copy) in str(e)
    else:  # SQLite read a consistent prefix: only whole, valid records
        assert runs in ([], [new_run()])
        assert all(s in written for s in steps)


def test_a_torn_wal_gives_a_prefix_of_whole_batches(tmp_path: Path) -> None:
    # A crash while appending to the WAL leaves a torn tail; SQLite must recover the
    # committed batches before it, and no part of the torn one.
    live = tmp_path / "live.db"
    batches = [[step(f"b{b}-s{i}", status="ok", seq=i) for i in range(10)] for b in range(20)]
    with SQLiteJournal(live, durability="normal") as j:
        for batch in batches:
            j.write(batch)
        wal = Path(f"{live}-wal").read_bytes()
        main = live.read_bytes()
    assert len(wal) > 20 * 4096
    prefixes = [[s for batch in batches[:k] for s in batch] for k in range(len(batches) + 1)]
    seen: set[int] = set()
    for offset in range(0, len(wal), len(wal) // 13 + 1):
        copy = tmp_path / f"copy-{offset}.db"
        copy.write_bytes(main)
        Path(f"{copy}-wal").write_bytes(wal[:offset])
        with SQLiteJournal(copy) as j:
            got = list(j.steps("run-1"))
        assert got in prefixes, f"WAL cut at {offset} gave a partial batch"
        seen.add(len(got))
    assert len(seen) > 3  # the cuts really landed between different batches


def test_a_page_of_garbage(tmp_path: Path) -> None:
    original = tmp_path / "whole.db"
    filled(original, 300)
    size = original.stat().st_size
    for page in range(2, size // 4096, 7):
        copy = tmp_path / f"garbage-{page}.db"
        shutil.copyfile(original, copy)
        with copy.open("r+b") as f:
            f.seek(page * 4096)
            f.write(os.urandom(4096))
        try:
            with SQLiteJournal(copy) as j:
                j.list_runs()
                list(j.steps("run-1"))
                j.check()
        except JournalCorrupt as e:
            assert str(copy) in str(e)
        else:
            pytest.fail(f"garbage in page {page} went unnoticed")


def test_check_passes_on_a_sound_journal(db: Path) -> None:
    filled(db, 50)
    with SQLiteJournal(db) as j:
        j.check()


# --- damaged rows ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [("output", "{not json"), ("input", "[1, 2"), ("spent", ""), ("error", b"\x00\xff")],
)
def test_a_row_with_unreadable_json(
    journal: SQLiteJournal, db: Path, column: str, value: object
) -> None:
    journal.write([step("s1", status="ok"), step("s2", status="ok")])
    journal.write([step("s1", run_id="run-2", status="ok")])
    conn = raw(db)
    conn.execute(
        f"UPDATE steps SET {column} = ? WHERE run_id = 'run-1' AND step_id = 's2'", (value,)
    )
    conn.close()
    for read in (
        lambda: list(journal.steps("run-1")),
        lambda: journal.get_step("run-1", "s2"),
        lambda: journal.get_steps("run-1", ["s1", "s2"]),
    ):
        with pytest.raises(JournalCorrupt) as info:
            read()
        message = str(info.value)
        assert "'run-1'" in message
        assert "'s2'" in message
        assert column in message
    # the sound rows, and other runs, stay readable
    assert journal.get_step("run-1", "s1") is not None
    assert len(list(journal.steps("run-2"))) == 1
    with pytest.raises(JournalCorrupt, match="'s2'"):
        journal.check()


def test_a_row_with_an_unknown_status(journal: SQLiteJournal, db: Path) -> None:
    journal.write([step("s1")])
    conn = raw(db)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    conn.execute("UPDATE steps SET status = 'maybe'")
    conn.close()
    with pytest.raises(JournalCorrupt, match=r"'s1'.*'maybe'"):
        list(journal.steps("run-1"))


def test_load_json() -> None:
    assert load_json('{"a": [1, 2]}', where="x") == {"a": [1, 2]}
    assert load_json(None, where="x") is None
    with pytest.raises(JournalCorrupt, match="run r1, step s3, output"):
        load_json("{oops", where="run r1, step s3, output")


# --- schema versions and migrations ----------------------------------------------------

# The version 1 schema exactly as remit 0.1 wrote it; kept here, not imported, because
# the migration must keep working after the code that created it has changed.
V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
CREATE TABLE runs (
  run_id TEXT PRIMARY KEY NOT NULL, goal TEXT NOT NULL, agent TEXT NOT NULL,
  remit TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status = 'running' OR status = 'done' OR status = 'failed'),
  inputs TEXT, result TEXT, error TEXT, meta TEXT,
  created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX runs_by_created ON runs (created_at);
CREATE TABLE steps (
  pos INTEGER PRIMARY KEY, run_id TEXT NOT NULL, step_id TEXT NOT NULL,
  task_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status = 'started' OR status = 'ok'
    OR status = 'error' OR status = 'denied'),
  input TEXT, output TEXT, error TEXT, started_at REAL NOT NULL, ended_at REAL,
  UNIQUE (run_id, step_id));
CREATE INDEX steps_by_run ON steps (run_id);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def make_v1(path: Path) -> None:
    conn = raw(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(V1_SCHEMA)
    conn.execute(
        "INSERT INTO runs VALUES ('old-run', 'g', 'a', '{}', 'running',"
        " NULL, NULL, NULL, NULL, 10.0, 10.0)"
    )
    conn.executemany(
        "INSERT INTO steps (run_id, step_id, task_id, seq, kind, name, status, input,"
        " output, error, started_at, ended_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            ("old-run", "s1", "t", 0, "model", "plan", "ok", "{}", '"plan"', None, 1.0, 2.0),
            ("old-run", "s2", "t", 1, "tool", "grep", "started", '{"q": 1}', None, None, 3.0, None),
        ],
    )
    conn.close()


def columns(path: Path, table: str) -> list[tuple[object, ...]]:
    conn = raw(path)
    try:
        return [tuple(r[1:]) for r in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def test_a_version_1_journal_is_migrated(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    make_v1(old)
    with SQLiteJournal(old) as j:
        assert j.schema_version == SCHEMA_VERSION
        assert j.get_run("old-run").status == "running"
        before = list(j.steps("old-run"))
        assert [(s.step_id, s.status, s.spent) for s in before] == [
            ("s1", "ok", None),
            ("s2", "started", None),
        ]
        # the old intent takes a result that records what it spent
        j.write([step("s2", run_id="old-run", status="ok", spent='{"calls": 1}')])
        assert [s.spent for s in j.steps("old-run")] == [None, '{"calls": 1}']
    # the migrated file has exactly the shape of a new one
    fresh = tmp_path / "fresh.db"
    SQLiteJournal(fresh).close()
    for table in ("meta", "runs", "steps"):
        assert columns(old, table) == columns(fresh, table)
    # and opening it again migrates nothing
    with SQLiteJournal(old) as j:
        assert [s.status for s in j.steps("old-run")] == ["ok", "ok"]


def test_a_failed_migration_leaves_the_file_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "old.db"
    make_v1(old)

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE steps ADD COLUMN spent TEXT")
        conn.execute("UPDATE no_such_table SET x = 1")

    monkeypatch.setattr(
        sqlite_schema,
        "_MIGRATIONS",
        [sqlite_schema._MIGRATIONS[0], half_done],  # pyright: ignore[reportPrivateUsage]
    )
    with pytest.raises(JournalError, match=r"from schema version 1 to 2.*unchanged"):
        SQLiteJournal(old)
    assert "spent" not in [c[0] for c in columns(old, "steps")]
    conn = raw(old)
    assert conn.execute("SELECT value FROM meta").fetchone() == ("1",)
    conn.close()
    monkeypatch.undo()
    with SQLiteJournal(old) as j:
        assert j.schema_version == SCHEMA_VERSION


def test_a_journal_from_a_newer_remit_is_refused(db: Path) -> None:
    filled(db, 3)
    newer = SCHEMA_VERSION + 5
    conn = raw(db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(newer),))
    conn.close()
    with pytest.raises(JournalVersionError) as info:
        SQLiteJournal(db)
    message = str(info.value)
    assert f"version {newer}" in message
    assert f"up to {SCHEMA_VERSION}" in message
    assert str(db) in message


# --- sharing the file -------------------------------------------------------------------


def test_a_reader_sees_committed_steps_while_a_writer_holds_the_file(db: Path) -> None:
    writer = SQLiteJournal(db, durability="normal")
    reader = SQLiteJournal(db, durability="normal")
    try:
        writer.create_run(new_run())
        writer.write([step("s1"), step("s2")])
        assert [s.step_id for s in reader.steps("run-1")] == ["s1", "s2"]

        # another connection is mid-transaction with uncommitted steps
        other = raw(db)
        other.execute("BEGIN IMMEDIATE")
        other.execute(
            "INSERT INTO steps (run_id, step_id, task_id, seq, kind, name, status,"
            " started_at) VALUES ('run-1', 'uncommitted', 't', 0, 'tool', 'x', 'started', 0)"
        )
        started = time.perf_counter()
        assert [s.step_id for s in reader.steps("run-1")] == ["s1", "s2"]
        assert reader.get_step("run-1", "uncommitted") is None
        assert time.perf_counter() - started < 1.0  # readers never wait for writers
        other.execute("COMMIT")
        other.close()
        assert reader.get_step("run-1", "uncommitted") is not None
    finally:
        writer.close()
        reader.close()


def test_a_second_writer_waits_then_fails_clearly(db: Path) -> None:
    SQLiteJournal(db).close()
    other = raw(db)
    other.execute("BEGIN IMMEDIATE")
    try:
        with SQLiteJournal(db, busy_timeout=0.2) as j:
            started = time.perf_counter()
            with pytest.raises(JournalError, match="locked") as info:
                j.write([step("s1")])
            assert time.perf_counter() - started >= 0.15
            assert str(db) in str(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()


WRITER = """
import sys, time
from remit.journal import SQLiteJournal, StepRecord, RunRecord
path, batches = sys.argv[1], int(sys.argv[2])
with SQLiteJournal(path, durability="normal") as j:
    j.create_run(RunRecord("run-1", goal="g", agent="a", remit="{}"))
    print("ready", flush=True)
    for b in range(batches):
        j.write([StepRecord("run-1", f"b{b:03d}-s{i}", "t", i, "tool", "x", "started",
                            started_at=time.time()) for i in range(20)])
        time.sleep(0.005)
"""


def test_a_reader_process_follows_a_writer_process(db: Path) -> None:
    batches = 60
    package_root = Path(remit.journal.__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(batches)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr and proc.stderr.read()
    expected = [f"b{b:03d}-s{i}" for b in range(batches) for i in range(20)]
    sizes: list[int] = []
    with SQLiteJournal(db, durability="normal") as reader:
        while True:
            running = proc.poll() is None
            ids = [s.step_id for s in reader.steps("run-1")]
            assert ids == expected[: len(ids)], "a reader saw steps out of order or a gap"
            assert len(ids) % 20 == 0, "a reader saw part of a batch"
            sizes.append(len(ids))
            if not running:
                break
            time.sleep(0.003)
    assert proc.wait(timeout=30) == 0, proc.stderr and proc.stderr.read()
    assert sizes[-1] == len(expected)
    assert len(set(sizes)) > 2  # the reader really read while the writer wrote


def test_threads_can_share_one_journal(journal: SQLiteJournal) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for b in range(20):
                journal.write([step(f"t{t}-b{b}-s{i}") for i in range(10)])
                journal.write([step(f"t{t}-b{b}-s{i}", status="ok") for i in range(10)])
                list(journal.steps("run-1"))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = list(journal.steps("run-1"))
    assert len(got) == 4 * 20 * 10
    assert all(s.status == "ok" for s in got)


@pytest.mark.parametrize("n", [899, 900, 901, 1800, 1801])
def test_get_steps_across_chunk_boundaries(journal: SQLiteJournal, n: int) -> None:
    journal.write([step(f"s{i}", seq=i) for i in range(n + 5)])
    got = journal.get_steps("run-1", (f"s{i}" for i in range(n)))
    assert sorted(got) == sorted(f"s{i}" for i in range(n))
    assert all(got[f"s{i}"].seq == i for i in range(n))


# --- open_journal ------------------------------------------------------------------------


def test_open_journal_takes_paths(db: Path) -> None:
    for where in (db, str(db)):
        store = open_journal(where, durability="normal")
        assert isinstance(store, SQLiteJournal)
        assert isinstance(store, JournalStore)
        assert store.durability == "normal"
        store.close()


def test_open_journal_passes_a_store_through(journal: SQLiteJournal) -> None:
    assert open_journal(journal) is journal


def test_open_journal_refuses_other_things() -> None:
    with pytest.raises(TypeError, match="int"):
        open_journal(42)  # type: ignore[arg-type]
