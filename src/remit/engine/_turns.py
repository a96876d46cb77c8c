"""Letting the event loop turn while workers compute.

A fan-out of plain functions never waits on its own, so signals, timers and the
journal's commits would wait for the queue to drain. A worker that has run for
``YIELD_AFTER_S`` parks here; parked workers are let go one per loop turn, each with a
fresh time slice, so a CPU-bound fan-out turns the loop every ``YIELD_AFTER_S`` and
wakes one worker per turn, not all of them.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Final

__all__ = ["YIELD_AFTER_S", "Turns"]

#: a worker that has not waited for this long lets the loop turn
YIELD_AFTER_S: Final = 0.002


class Turns:
    """The parked workers of one engine, and when one last got a fresh time slice."""

    __slots__ = ("_parked", "_releasing", "turned")

    def __init__(self) -> None:
        #: when the last worker was let go (time.monotonic)
        self.turned = time.monotonic()
        self._parked: collections.deque[asyncio.Future[None]] = collections.deque()
        self._releasing = False

    async def wait(self) -> None:
        """Park this worker until the loop has served everything that was waiting."""
        fut = asyncio.get_running_loop().create_future()  # its own: cancelling one
        self._parked.append(fut)  # parked worker must not cancel the others
        if not self._releasing:
            self._releasing = True
            asyncio.get_running_loop().call_soon(self._release_one)
        await fut

    def _release_one(self) -> None:
        parked = self._parked
        while parked:
            fut = parked.popleft()
            if not fut.done():
                self.turned = time.monotonic()
                fut.set_result(None)
                break
        if parked:
            asyncio.get_running_loop().call_soon(self._release_one)
        else:
            self._releasing = False
