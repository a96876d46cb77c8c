"""Live export: a run's spans leave while it works, as its tasks and effects end.

:class:`LiveExport` watches the journal rather than the engine: :meth:`LiveExport.tap`
wraps the store a :class:`~remit.Runtime` writes to, and every batch of rows, once it
is *committed* (on disk: a span never reports what a crash could undo), is handed to a
thread of its own. That thread feeds the rows to the same :class:`SpanMapper` that
``remit trace`` uses and exports the spans that ended, in batches (every ``interval``
seconds at most). The run's own span leaves when the run's outcome is recorded. The
engine and the Gate know nothing of it; a run without live export does not pay for it.

A resumed run (``Runtime.resume`` on a tapped store) continues the same trace: ids come
from the run and step ids. Its first batch reads what the journal already holds and
does not export the spans that had ended before (the process before exported those, if
it ran with live export; ``resend=True`` exports them too); what ends from then on,
the tasks left open by the crash and the run itself are exported once. Spans that had
ended but not yet left when a process was killed are lost to live export:
``remit trace RUN_ID`` sends the whole run again, with the same ids.

>>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # doctest: +SKIP
...     InMemorySpanExporter)
>>> spans = InMemorySpanExporter()                                        # doctest: +SKIP
>>> with LiveExport(spans) as live:                                       # doctest: +SKIP
...     Runtime(journal=live.tap("runs.db"), agent=MyAgent()).run("g", remit=r)
>>> len(spans.get_finished_spans())                                       # doctest: +SKIP
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from remit.journal import (
    ChainEntry,
    Checkpoint,
    Durability,
    JournalStore,
    Lease,
    RunRecord,
    RunStatus,
    StepRecord,
    open_journal,
)
from remit.trace.otel._mapper import SpanMapper
from remit.trace.otel._sdk import export_spans, require_otel, shutdown
from remit.trace.otel._spans import SpanData

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["LiveExport"]


@dataclass(frozen=True, slots=True)
class _Message:
    """To the export thread: a run ``begin``s (with the rows it already had), ``rows``
    reached the disk, a run ``end``ed (its record as finished), ``stop``."""

    kind: str
    run_id: str = ""
    run: RunRecord | None = None
    rows: Sequence[StepRecord] = ()


class LiveExport:
    """Exports the spans of runs while they work, through any SDK ``SpanExporter``.

    ``interval``: the longest a finished span waits to leave (spans are exported in
    batches). ``resend``: on resume, also export the spans that had ended before this
    process took the run. ``close()`` (or leaving the ``with`` block) exports what is
    left, then flushes and shuts the exporter down.
    """

    def __init__(
        self, exporter: SpanExporter, *, interval: float = 0.2, resend: bool = False
    ) -> None:
        require_otel()
        self.exporter = exporter
        self.interval = interval
        self.resend = resend
        #: spans handed to the exporter, and how many of them it refused
        self.exported = 0
        self.failed = 0
        #: the first error the exporter raised, if any (export goes on)
        self.error: BaseException | None = None
        self._runs: set[str] = set()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="remit-otel", daemon=True)
        self._thread.start()

    def tap(
        self,
        journal: str | os.PathLike[str] | JournalStore,
        durability: Durability = "full",
    ) -> JournalStore:
        """The journal (a path, opened with ``durability``, or a store), watched: pass
        it to ``Runtime(journal=...)``."""
        return _Tapped(open_journal(journal, durability=durability), self)

    def close(self) -> None:
        """Export what is left, then flush and shut the exporter down (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_Message("stop"))
        self._thread.join()
        shutdown(self.exporter)

    def __enter__(self) -> LiveExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- from the store's callers ------------------------------------------------------

    def _begin(self, run: RunRecord, rows: list[StepRecord]) -> None:
        with self._lock:
            if run.run_id in self._runs:
                return
            self._runs.add(run.run_id)
        self._queue.put(_Message("begin", run.run_id, run, rows))

    def _known(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._runs

    def _rows(self, records: Sequence[StepRecord]) -> None:
        if records and self._known(records[0].run_id):
            self._queue.put(_Message("rows", records[0].run_id, rows=list(records)))

    def _ended(self, run: RunRecord) -> None:
        if self._known(run.run_id):
            self._queue.put(_Message("end", run.run_id, run))

    # --- the export thread -------------------------------------------------------------

    def _work(self) -> None:
        mappers: dict[str, SpanMapper] = {}
        while True:
            out: list[SpanData] = []
            message = self._queue.get()
            stop = self._handle(message, mappers, out)
            # gather what else arrives within the interval: one export per batch
            until = time.monotonic() + self.interval
            while not stop:
                try:
                    message = self._queue.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
                stop = self._handle(message, mappers, out)
            for m in mappers.values():
                out += m.ready()
            self._export(out)
            if stop:
                return

    def _handle(self, message: _Message, mappers: dict[str, SpanMapper],
                out: list[SpanData]) -> bool:  # fmt: skip
        kind, run = message.kind, message.run
        if kind == "begin" and run is not None:
            m = mappers[run.run_id] = SpanMapper(run)
            if message.rows:
                m.add(message.rows)
                if not self.resend:
                    m.skip_ready()  # the process before exported these
        elif kind == "rows":
            m = mappers.get(message.run_id)
            if m is not None:
                m.add(message.rows)
        elif kind == "end" and run is not None:
            m = mappers.pop(run.run_id, None)
            if m is not None:
                out += m.finish(run)
            with self._lock:
                self._runs.discard(run.run_id)
        return kind == "stop"

    def _export(self, spans: list[SpanData]) -> None:
        if not spans:
            return
        try:
            ok = export_spans(spans, self.exporter)
        except Exception as e:  # an exporter's bug must not stop the next batch
            ok = False
            if self.error is None:
                self.error = e
                print(f"remit: otel: export failed: {e}", file=sys.stderr)
        self.exported += len(spans)
        if not ok:
            self.failed += len(spans)


class _Tapped:
    """A journal store that tells a :class:`LiveExport` what reached the disk."""

    def __init__(self, store: JournalStore, live: LiveExport) -> None:
        self._store = store
        self._live = live
        self._staged: Sequence[StepRecord] = ()
        self.durability: Durability = store.durability

    def __getattr__(self, name: str) -> Any:
        # the group-commit path (stage, then commit) exists only where the store has it
        if name in ("stage", "commit_staged"):
            getattr(self._store, name)
            return self._stage if name == "stage" else self._commit_staged
        return getattr(self._store, name)

    def _seen(self, run_id: str) -> None:
        """Before the first write to a run this export has not met: what the run already
        had (a resume), read before anything new is written."""
        if not self._live._known(run_id):  # pyright: ignore[reportPrivateUsage]
            self._live._begin(self._store.get_run(run_id), list(self._store.steps(run_id)))  # pyright: ignore[reportPrivateUsage]

    def _stage(self, records: Sequence[StepRecord], owner: str | None = None) -> None:
        if records:
            self._seen(records[0].run_id)
        getattr(self._store, "stage")(records, owner=owner)  # noqa: B009
        self._staged = records

    def _commit_staged(self) -> None:
        # stage holds the store until this commit: no other batch was staged meanwhile
        records, self._staged = self._staged, ()
        getattr(self._store, "commit_staged")()  # noqa: B009
        self._live._rows(records)  # pyright: ignore[reportPrivateUsage]

    # --- the JournalStore protocol -------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return self._store.schema_version

    def create_run(
        self,
        run: RunRecord,
        lease: Lease | None = None,
        seal: tuple[bytes, Callable[[bytes], bytes]] | None = None,
    ) -> None:
        self._store.create_run(run, lease, seal)
        self._live._begin(run, [])  # pyright: ignore[reportPrivateUsage]

    def get_run(self, run_id: str) -> RunRecord:
        return self._store.get_run(run_id)

    def list_runs(self, limit: int = 100) -> list[RunRecord]:
        return self._store.list_runs(limit)

    def finish_run(self, run_id: str, status: RunStatus, result: str | None,
                   error: str | None, owner: str | None = None) -> None:  # fmt: skip
        # a resume that wrote nothing new still ends the run, and its span
        self._seen(run_id)
        self._store.finish_run(run_id, status, result, error, owner)
        self._live._ended(self._store.get_run(run_id))  # pyright: ignore[reportPrivateUsage]

    def acquire_lease(self, lease: Lease, takeover: Callable[[Lease], bool]) -> None:
        self._store.acquire_lease(lease, takeover)

    def renew_lease(self, run_id: str, owner: str, now: float, expires: float) -> bool:
        return self._store.renew_lease(run_id, owner, now, expires)

    def release_lease(self, run_id: str, owner: str) -> None:
        self._store.release_lease(run_id, owner)

    def get_lease(self, run_id: str) -> Lease | None:
        return self._store.get_lease(run_id)

    def write(self, records: Sequence[StepRecord], owner: str | None = None) -> None:
        if records:
            self._seen(records[0].run_id)
        self._store.write(records, owner)
        self._live._rows(records)  # pyright: ignore[reportPrivateUsage]

    def steps(self, run_id: str) -> Iterator[StepRecord]:
        return self._store.steps(run_id)

    def get_step(self, run_id: str, step_id: str) -> StepRecord | None:
        return self._store.get_step(run_id, step_id)

    def get_steps(self, run_id: str, step_ids: Iterable[str]) -> dict[str, StepRecord]:
        return self._store.get_steps(run_id, step_ids)

    def seal(self, run_id: str, key: bytes, sign: Callable[[bytes], bytes]) -> None:
        self._store.seal(run_id, key, sign)

    def seal_key(self, run_id: str) -> bytes | None:
        return self._store.seal_key(run_id)

    def chain(self, run_id: str) -> list[ChainEntry]:
        return self._store.chain(run_id)

    def checkpoints(self, run_id: str) -> list[Checkpoint]:
        return self._store.checkpoints(run_id)

    def close(self) -> None:
        self._store.close()
