"""HTLC events at finality "final", oldest first, resumable from a cursor.

The HTLC numbers its events and keeps them (get_events); each stream pages through them as the contract
state of the final block shows them. Final NEAR blocks are never reverted, so nothing emitted here is
ever retracted (ChainEvent.removed stays false) and no reorg bookkeeping is needed.

Cursor: the decimal index of the last event delivered; resuming starts strictly after it.

Head ticks (heads=True): once a poll has read every event up to the final block, the stream yields the
latest block's height and time and that final height, when they changed since the last tick. A tick
therefore follows every event at or below its final height.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from swap_runtime.errors import InvalidArgument

from chain_near.htlc import CREATED, REFUNDED, WITHDRAWN, Htlc
from chain_near.model import NS_PER_S, TxRef

log = logging.getLogger(__name__)

KINDS = (CREATED, WITHDRAWN, REFUNDED)


def parse_cursor(text: str) -> int:
    """The index to resume from: one past the cursor's event."""
    if not text.isascii() or not text.isdigit():
        raise InvalidArgument("cursor", "must be a cursor returned by WatchEvents")
    return int(text) + 1


@dataclass(frozen=True)
class RawEvent:
    name: str
    lock_id: str
    data: dict[str, Any]
    tx: TxRef
    block_time: int  # unix seconds
    log_index: int
    confirmations: int
    cursor: str


@dataclass(frozen=True)
class Head:
    """Where the chain stood at one poll: latest block, its timestamp, and the final block."""

    height: int
    chain_time: int  # unix seconds
    final_height: int


class EventWatcher:
    def __init__(self, htlc: Htlc, poll_interval_s: float, batch: int) -> None:
        self._htlc = htlc
        self._poll = poll_interval_s
        self._batch = batch

    async def stream(
        self, cursor: str = "", lock_id: str | None = None, heads: bool = False
    ) -> AsyncIterator[RawEvent | Head]:
        next_index = parse_cursor(cursor) if cursor else 0
        last: Head | None = None
        while True:
            events, final_height = await self._htlc.events(next_index, self._batch, finality="final")
            for event in events:
                next_index = event.index + 1
                self._htlc.remember(event)
                if event.name not in KINDS or (lock_id is not None and event.lock_id != lock_id):
                    continue
                tx = await self._htlc.event_ref(event, final_height)
                yield RawEvent(
                    name=event.name,
                    lock_id=event.lock_id,
                    data=event.data,
                    tx=tx,
                    block_time=event.block_timestamp // NS_PER_S,
                    log_index=event.log_index,
                    confirmations=final_height - event.block_height + 1,
                    cursor=str(event.index),
                )
            if len(events) < self._batch:
                if heads:
                    # Read after the events view, so the latest block is never below the final one.
                    height, now_ns = await self._htlc.head()
                    tick = Head(
                        height=max(height, final_height), chain_time=now_ns // NS_PER_S, final_height=final_height
                    )
                    if tick != last:
                        last = tick
                        yield tick
                await asyncio.sleep(self._poll)
