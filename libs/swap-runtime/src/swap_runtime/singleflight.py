"""One run of a chain step per key at a time.

A caller whose deadline passed while a transaction was in flight asks again; so does a second replica that
took over the swap. Sending the step again would spend a second transaction on a lock that the first one is
about to change (and fail on chain). Instead a call for a key already in flight joins the run in progress and
gets its result; the run itself is shielded, so it carries on to its outcome when its first caller gives up.
A call after the run ended starts afresh (and finds the lock's new state)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    def in_flight(self, key: K) -> bool:
        return key in self._running

    async def run(self, key: K, start: Callable[[], Awaitable[V]]) -> V:
        run = self._running.get(key)
        if run is None:
            run = asyncio.ensure_future(start())
            self._running[key] = run
            run.add_done_callback(partial(self._ended, key))
        return await asyncio.shield(run)

    def _ended(self, key: K, run: asyncio.Future[V]) -> None:
        if self._running.get(key) is run:
            del self._running[key]
        if not run.cancelled():
            run.exception()  # every caller that waited has it; a run nobody waits for any more is not an error
