"""Signals while a run works: SIGINT and SIGTERM stop it cleanly, not halfway."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Generator

from remit.engine._engine import Engine
from remit.errors import RunInterrupted

__all__ = ["stop_on_signals"]


@contextlib.contextmanager
def stop_on_signals(
    loop: asyncio.AbstractEventLoop, engine: Engine, run_id: str, *, active: bool
) -> Generator[None]:
    """While a run works on ``loop``: SIGINT and SIGTERM interrupt ``engine`` cleanly
    (finished steps are in the journal), and the previous handlers come back after.
    ``active`` is False off the main thread, where signals cannot be handled."""
    if not active:
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def stop(sig: signal.Signals) -> None:
        engine.interrupt(
            RunInterrupted(
                f"run {run_id} stopped on {sig.name}; finished steps are in the journal",
                run_id=run_id,
                signal_name=sig.name,
            )
        )

    def on_signal(signum: int, frame: object) -> None:
        # the interpreter runs this on the main thread between bytecodes (a wait in the
        # selector returns for it); the loop hears of it through its self-pipe
        loop.call_soon_threadsafe(stop, signal.Signals(signum))

    # signal.signal, not loop.add_signal_handler: that one checks the signal against a
    # set of every valid signal it builds anew on each call (~0.4 ms a call, four a run)
    installed: list[signal.Signals] = []
    try:
        for sig in previous:
            try:
                signal.signal(sig, on_signal)
            except (ValueError, OSError):
                continue  # not available here (another platform, not the main thread)
            installed.append(sig)
        yield
    finally:
        for sig in installed:
            handler = previous[sig]
            if handler is None:  # one set from outside Python: the interpreter's default
                handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, handler)
