"""What the owner of a sealed run knows of its chain, and how it places a batch: the
part of sealing that is the same on every backend (pure: no I/O here).

A backend (``sqlite/_seals``, ``postgres/_seals``) writes what :func:`predict` planned
and keeps it (:func:`keep`) only if the database changed exactly the rows expected;
:func:`next_checkpoint` signs the head over what a batch added.
"""

from __future__ import annotations

import dataclasses
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from remit.journal._chain import (
    STEP_FIELDS,
    checkpoint_message,
    column_hashes,
    fold,
    link,
    row_hash,
    row_hash_of,
)
from remit.journal._store import StepRecord

__all__ = [
    "Held", "Open", "Predicted", "blob", "keep", "landed", "next_checkpoint", "place",
    "place_exact", "predict",
]  # fmt: skip

Sign = Callable[[bytes], bytes]
fields_of = operator.attrgetter(*STEP_FIELDS)
_field_getters = tuple(map(operator.attrgetter, STEP_FIELDS))
#: a started row's state in the chain: the row, its place, its entry
Open = tuple[StepRecord, int, bytes]
_UNSEEN: Final[Any] = object()


def blob(value: object) -> bytes:
    """A hash, signature or key column as bytes; text someone wrote there stays what it
    is (its UTF-8 bytes), so it fails the check it is read for rather than the reading."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return b"" if value is None else str(value).encode("utf-8")


@dataclass(slots=True)
class Held:
    """What the owner of a sealed run knows of its chain."""

    sign: Sign
    k: int  # checkpoints so far
    n: int  # the place the last checkpoint covers
    head: bytes  # ... and the head there
    run_hash: bytes
    next_n: int  # the place the next write takes
    open: dict[str, Open] = field(default_factory=dict[str, Open])
    #: a transaction failed since this was read: read it again before the next write
    #: (a backend whose writes may be retried on a new connection sets it)
    stale: bool = False


def landed(row: StepRecord, r: StepRecord) -> StepRecord | None:
    """What a write of ``r`` leaves of an existing ``row``, or None if it is ignored
    (the journal's protocol: an intent never touches a row; the first result wins)."""
    if row.status != "started" or (r.status == "started" and r.error is None):
        return None
    return dataclasses.replace(
        row, status=r.status, output=r.output, error=r.error, spent=r.spent,
        ended_at=r.ended_at, proof=row.proof if row.proof is not None else r.proof,
    )  # fmt: skip


@dataclass(slots=True)
class Predicted:
    """A batch placed from what the owner knows: the rows to upsert (fields, place,
    entry; ``count`` of them), the entries they replace, the open rows after it, and
    its links.

    ``params`` is an iterator where it can be: a list of a tuple per row keeps a
    batch's worth of new objects alive at once, and that many allocations start the
    garbage collector's young generation mid-batch, which moves whatever the run made
    lately to the older generations, whose collections cost milliseconds (W3 took
    one older collection more than the core, and 2.7 ms more collecting in all).

    Each entry in ``params`` is a ``bytearray``: the same BLOB to the database, and a
    type Python's sqlite3 binds without looking for an adapter (a program's own
    adapter for ``bytes`` may be a slow one; see ``sqlite._file``). psycopg takes
    either as ``bytea``."""

    params: Iterable[tuple[Any, ...]]
    count: int
    superseded: list[tuple[str, int, str, bytes]]
    opened: dict[str, Open | None]
    links: list[bytes]


def _link(entry: bytes, step_id: str) -> bytes:
    return entry + step_id.encode("utf-8")  # see _chain.link


def predict(run_id: str, records: Sequence[StepRecord], held: Held) -> Predicted:
    """Place ``records`` after ``held``'s chain, from what the owner knows of its open
    rows (the hot path of a sealed run: one hash per row)."""
    columns = [list(map(get, records)) for get in _field_getters]
    ids = columns[1]
    if "started" not in columns[6] and held.open.keys().isdisjoint(ids):
        # the common batch: results of calls that wrote no intent, tasks' ends; every
        # row new, none left open (no bookkeeping), so the whole batch is placed by C
        # loops, a column at a time: a row is its fields, then its place and entry
        hashes = column_hashes(columns)
        n, count = held.next_n, len(records)
        places = (range(n, n + count), map(bytearray, hashes))
        links = list(map(bytes.__add__, hashes, map(str.encode, ids)))  # see _chain.link
        return Predicted(zip(*columns, *places, strict=True), count, [], {}, links)
    opened: dict[str, Open | None] = {}
    superseded: list[tuple[str, int, str, bytes]] = []
    params: list[tuple[Any, ...]] = []
    links: list[bytes] = []
    n = held.next_n
    open_get, hash_of, put, add = held.open.get, row_hash_of, params.append, links.append
    for r, fields in zip(records, zip(*columns, strict=True), strict=True):
        sid = r.step_id
        cur = opened.get(sid, _UNSEEN)
        if cur is _UNSEEN:
            cur = open_get(sid)
        if cur is None:  # a new row, as far as this process knows
            entry = hash_of(fields)
            if r.status == "started":
                opened[sid] = (r, n, entry)
        else:
            eff = landed(cur[0], r)
            if eff is None:
                continue
            superseded.append((run_id, cur[1], sid, cur[2]))
            entry = row_hash(eff)
            opened[sid] = (eff, n, entry) if eff.status == "started" else None
        put((*fields, n, bytearray(entry)))
        add(_link(entry, sid))
        n += 1
    return Predicted(params, len(params), superseded, opened, links)


def keep(held: Held, p: Predicted, entries: list[bytes]) -> None:
    """The database took ``p`` as predicted: the owner's picture moves past it."""
    for sid, state in p.opened.items():
        if state is None:
            held.open.pop(sid, None)
        else:
            held.open[sid] = state
    held.next_n += p.count
    entries.extend(p.links)


def place(held: Held, row: StepRecord, entry: bytes, entries: list[bytes]) -> int:
    """Give ``row`` (as written, hashed ``entry``) the next place of ``held``'s chain."""
    n = held.next_n
    held.next_n += 1
    if row.status == "started":
        held.open[row.step_id] = (row, n, entry)
    else:
        held.open.pop(row.step_id, None)
    entries.append(link(row.step_id, entry))
    return n


#: a step row as read back with its place and entry (None where never chained)
Stored = tuple[StepRecord, "int | None", "bytes | None"]


def place_exact(
    run_id: str,
    records: Sequence[StepRecord],
    rows: dict[str, Stored],
    held: Held | None,
    entries: list[bytes] | None,
    put_row: Callable[[tuple[Any, ...]], object],
    put_superseded: Callable[[tuple[str, int, str, bytes]], object],
) -> None:
    """Chain a batch from what ``rows`` hold now (read back by step id), writing each
    row with ``put_row`` and each entry it replaces with ``put_superseded``; with
    ``held`` None (not the owner), the rows wait at place -1 for the owner to chain."""
    for r in records:
        sid = r.step_id
        cur = rows.get(sid)
        if cur is None:
            eff = r
        else:
            eff = landed(cur[0], r)
            if eff is None:
                continue
            if cur[1] is not None and cur[1] > 0 and cur[2] is not None:
                put_superseded((run_id, cur[1], sid, blob(cur[2])))
        entry = row_hash(eff)
        if held is None:
            n = -1
        else:
            assert entries is not None
            n = place(held, eff, entry, entries)
        put_row((*fields_of(r), n, entry))
        rows[sid] = (eff, n, entry)


def next_checkpoint(
    run_id: str, held: Held, entries: Sequence[bytes], *, force: bool = False
) -> tuple[Any, ...] | None:
    """The row of the checkpoint that signs the head over ``entries`` (the links of the
    places after the last checkpoint), with ``held`` moved to it; None if there is
    nothing to sign."""
    if not entries and not force:
        return None
    head = fold(held.head, entries)
    n = held.n + len(entries)
    signature = held.sign(checkpoint_message(run_id, n, head, held.run_hash))
    held.k += 1
    held.n, held.head = n, head
    return (run_id, held.k, n, head, held.run_hash, signature, time.time())
