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

    installed: list[signal.Signals] = []
    try:
        for sig in previous:
            try:
                loop.add_signal_handler(sig, stop, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not available here (another platform, a nested loop)
            installed.append(sig)
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
            handler = previous[sig]
            if handler is not None:
                signal.signal(sig, handler)
