"""The hash chain that makes a run's journal tamper-evident (pure: no I/O here).

Every write that changes a step row of a *sealed* run appends an entry to the run's
chain: the row's hash as the write left it (:func:`row_hash`). The run's owner signs
the chain's head at each group commit and when the run ends (a :class:`Checkpoint`: one
signature per batch, not per step), over the message :func:`checkpoint_message`, which
also binds the run's own record (:func:`run_hash`). A checkpoint's head is
``H(previous head || link || link ...)`` over the entries it adds (:func:`link`: an
entry's hash and its step id; :func:`fold`), starting from :func:`genesis`.

So an edited row no longer hashes to its last entry; a deleted, reordered or spliced
entry changes every head after it; a head not signed by the run's key, or a finished
run whose record the last checkpoint does not cover, shows a forgery or a truncation.
``remit.trust.provenance`` verifies all of it from the journal file alone.

Hashes are SHA-256 over a domain tag and a byte form any language can rebuild: a row's
text fields joined by NUL with its timestamps as IEEE 754 doubles (:func:`row_hash_of`),
a run's fields as a compact JSON array (:func:`run_hash`).

>>> r = StepRecord("r1", "t:execute", "t", 0, "execute", "execute", "ok", output="2")
>>> len(row_hash(r)), row_hash(r) == row_hash(StepRecord(*step_fields(r)))
(32, True)
>>> fold(genesis("r1"), [link(r.step_id, row_hash(r))]) != genesis("r1")
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import operator
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, Final

from remit.journal._store import RunRecord, StepRecord

__all__ = [
    "ChainEntry",
    "Checkpoint",
    "checkpoint_message",
    "column_hashes",
    "fold",
    "genesis",
    "link",
    "row_hash",
    "row_hash_of",
    "row_hashes",
    "run_hash",
    "step_fields",
]

_sha256 = hashlib.sha256

_ROW_TAG: Final = b"remit.row\x00"
_ODD_TAG: Final = b"remit.row.odd\x00"
_RUN_TAG: Final = b"remit.run\x00"
_HEAD_TAG: Final = b"remit.chain\x00"
_CHECKPOINT_TAG: Final = b"remit.checkpoint\x00"

#: the step fields a row hash covers, in this order (every column of a step row)
STEP_FIELDS: Final = tuple(f.name for f in dataclasses.fields(StepRecord))
#: the run fields a run hash covers (not ``updated_at``: bookkeeping, not content)
RUN_FIELDS: Final = (
    "run_id", "goal", "agent", "remit", "status", "inputs", "result", "error", "meta",
    "created_at",
)  # fmt: skip


def _refuse(o: object) -> object:
    raise TypeError(f"a journal field holds {type(o).__name__}, not JSON")


# the C encoder made once: ``json.dumps`` builds one per call, which doubles the cost
# of hashing a row (compact separators, no ASCII escaping, NaN refused)
_c_encode = c_make_encoder(None, _refuse, encode_basestring, None, ":", ",", False, False, False)


def _encode(values: Sequence[Any]) -> str:
    return "".join(_c_encode(values, 0))


step_fields = operator.attrgetter(*STEP_FIELDS)
_run_fields = operator.attrgetter(*RUN_FIELDS)


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """Entry ``n`` (from 1) of a run's chain: a write left step ``step_id``'s row with
    hash ``entry``."""

    n: int
    step_id: str
    entry: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The run's key signed the chain's head after entry ``n`` (``k`` counts them)."""

    run_id: str
    k: int
    n: int
    head: bytes
    run_hash: bytes
    signature: bytes
    at: float

    def message(self) -> bytes:
        return checkpoint_message(self.run_id, self.n, self.head, self.run_hash)


#: the two timestamps of a row as IEEE 754 doubles, big-endian (ended_at may be absent)
_TIMES = struct.Struct(">dd").pack
_TIME = struct.Struct(">d").pack
#: the byte that says which of a row's optional fields are None (see row_hash_of)
_NULLS: Final = {
    nulls: bytes([sum(bit << i for i, bit in enumerate(nulls))])
    for nulls in itertools.product((False, True), repeat=6)
}


def row_hash_of(fields: Sequence[Any]) -> bytes:
    """The hash of a step row given as its fields in :data:`STEP_FIELDS` order.

    ``SHA-256("remit.row" NUL || nulls || text || times)``: ``text`` is the UTF-8 of the
    text fields and ``seq`` (in decimal) joined by NUL, in column order, a None as the
    empty string; ``nulls`` one byte whose bits 0-5 say which of ``input``, ``output``,
    ``error``, ``spent``, ``proof`` and ``ended_at`` are None; ``times`` ``started_at``
    and ``ended_at`` as 8-byte big-endian doubles (``ended_at`` left out when None).
    JSON text never holds a raw NUL and identifiers hold none either, so the fields can
    be read back from the bytes. A row that breaks that shape (a NUL in a field, a field
    of another type: only an edited row) hashes as the JSON array of its fields under
    another tag, never as a well-formed row does.
    """
    run_id, step_id, task_id, seq, kind, name, status, inp, out, err, spent, started, ended, proof = fields  # fmt: skip  # noqa: E501
    try:
        text = "\x00".join((
            run_id, step_id, task_id, str(seq), kind, name, status,
            inp or "", out or "", err or "", spent or "", proof or "",
        ))  # fmt: skip
        times = _TIMES(started, ended) if ended is not None else _TIME(started)
    except (TypeError, struct.error):  # a field of another type: an edited row
        return _odd(fields)
    if text.count("\x00") != 11 or seq.__class__ is not int:
        return _odd(fields)
    nulls = _NULLS[inp is None, out is None, err is None, spent is None, proof is None, ended is None]  # fmt: skip  # noqa: E501
    return _sha256(_ROW_TAG + nulls + text.encode("utf-8") + times).digest()


def row_hashes(rows: Sequence[Sequence[Any]]) -> list[bytes]:
    """``[row_hash_of(r) for r in rows]`` (see :func:`column_hashes`)."""
    if not rows:
        return []
    try:
        columns = list(zip(*rows, strict=True))
    except ValueError:  # rows of different lengths: none is a row as written
        return list(map(row_hash_of, rows))
    return column_hashes(columns)


def column_hashes(columns: Sequence[Sequence[Any]]) -> list[bytes]:
    """The hashes of the rows whose fields ``columns`` holds, a column per field in
    :data:`STEP_FIELDS` order: ``[row_hash_of(r) for r in zip(*columns)]``.

    A sealed run hashes every row it writes, and per row the Python around the one
    SHA-256 call costs more than the call: here the byte forms of a whole batch are
    built by C loops (``zip``, ``map``, ``str.join``), with one comprehension each for
    the timestamps and the None flags. A batch holding a row that breaks the
    well-formed shape (see :func:`row_hash_of`) is hashed row by row, so every row
    gets exactly the bytes :func:`row_hash_of` gives it.
    """
    try:
        run_id, step_id, task_id, seq, kind, name, status, inp, out, err, spent, started, ended, proof = columns  # fmt: skip  # noqa: E501
        text = list(map("\x00".join, zip(
            run_id, step_id, task_id, map(str, seq), kind, name, status,
            [v or "" for v in inp], [v or "" for v in out], [v or "" for v in err],
            [v or "" for v in spent], [v or "" for v in proof], strict=True,
        )))  # fmt: skip
        times = [
            _TIMES(s, e) if e is not None else _TIME(s) for s, e in zip(started, ended, strict=True)
        ]
    except (TypeError, ValueError, struct.error):  # a field of another type: an edited row
        return list(map(row_hash_of, zip(*columns, strict=True)))
    # every row's text holds exactly its 11 separators (then all together hold 11 each)
    if "".join(text).count("\x00") != 11 * len(text) or set(map(type, seq)) - {int}:
        return list(map(row_hash_of, zip(*columns, strict=True)))
    nulls = [
        _NULLS[a is None, b is None, c is None, d is None, e is None, f is None]
        for a, b, c, d, e, f in zip(inp, out, err, spent, proof, ended, strict=True)
    ]
    data = map(b"".join, zip(repeat(_ROW_TAG), nulls, map(str.encode, text), times, strict=False))
    return [_sha256(d).digest() for d in data]


def _odd(fields: Sequence[Any]) -> bytes:
    """The hash of a row no writer makes (see :func:`row_hash_of`)."""
    try:
        data = _encode(list(fields))
    except (TypeError, ValueError):  # not even JSON: a value no column holds as written
        data = repr(list(fields))
    return _sha256(_ODD_TAG + data.encode("utf-8", "surrogatepass")).digest()


def row_hash(record: StepRecord) -> bytes:
    """The hash of a step row."""
    return row_hash_of(step_fields(record))


def run_hash(run: RunRecord) -> bytes:
    """The hash of a run's record (its goal, agent, remit, outcome and metadata)."""
    data = _encode(_run_fields(run)).encode("utf-8")
    return _sha256(_RUN_TAG + data).digest()


def genesis(run_id: str) -> bytes:
    """The head of a run's chain before its first entry."""
    return _sha256(_HEAD_TAG + run_id.encode("utf-8")).digest()


def link(step_id: str, entry: bytes) -> bytes:
    """What the chain folds for one entry: its hash and the step it is of (so a kept,
    replaced entry cannot be relabelled to another step)."""
    return entry + step_id.encode("utf-8")


def fold(head: bytes, links: Iterable[bytes]) -> bytes:
    """The head after one checkpoint's span of the chain: ``H(head || link || link ...)``
    over the links (see :func:`link`) of the entries it adds, in order. One hash per
    checkpoint, not per entry: the chain is checked where it is signed."""
    # one update of the joined bytes, not one a link: the same digest, and a batch of
    # a few hundred links costs a few microseconds, not a call a link
    return _sha256(head + b"".join(links)).digest()


def checkpoint_message(run_id: str, n: int, head: bytes, run_hash: bytes) -> bytes:
    """What a checkpoint's signature covers: the run, how far the chain goes, its head,
    and the run's record as it stood."""
    rid = run_id.encode("utf-8")
    return (
        _CHECKPOINT_TAG + struct.pack(">H", len(rid)) + rid + struct.pack(">Q", n) + head + run_hash
    )
