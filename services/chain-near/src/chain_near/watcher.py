"""HTLC events at finality "final", oldest first, resumable from a cursor.

Every stream reads the service's one LockFeed (feed.py), which follows the HTLC's storage changes block by
block; a stream resuming from before what the feed keeps reads that gap from the chain first. Final NEAR
blocks are never reverted, so nothing emitted here is ever retracted (ChainEvent.removed stays false) and
no reorg bookkeeping is needed.

Cursor: `<height>:<n>` (feed.py); resuming starts strictly after it. An empty cursor starts at the start
block, or, for a stream of one lock, at the block the lock was made in.

Head ticks (heads=True): once a stream has read every event the feed found up to the final block, it
yields the latest block's height and time and that final height, when they changed since the last tick. A
tick therefore follows every event at or below its final height.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from chain_near.feed import CREATED, REFUNDED, WITHDRAWN, LockFeed, Position, parse_cursor
from chain_near.htlc import Htlc
from chain_near.model import NS_PER_S, HtlcEvent, TxRef

log = logging.getLogger(__name__)

KINDS = (CREATED, WITHDRAWN, REFUNDED)


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
    """Where the chain stood at one scan: latest block, its timestamp, and the final block."""

    height: int
    chain_time: int  # unix seconds
    final_height: int


class EventWatcher:
    def __init__(self, htlc: Htlc, feed: LockFeed, batch: int) -> None:
        self._htlc = htlc
        self._feed = feed
        self._batch = batch

    async def _raw(self, event: HtlcEvent) -> RawEvent:
        final_height = self._feed.scanned_to
        tx = await self._htlc.event_ref(event, final_height)
        return RawEvent(
            name=event.name,
            lock_id=event.lock_id,
            data=event.data,
            tx=tx,
            block_time=event.block_timestamp // NS_PER_S,
            log_index=event.log_index,
            confirmations=final_height - event.block_height + 1,
            cursor=Position(event.block_height, event.index).cursor,
        )

    async def _beginning(self, lock_id: str | None) -> Position:
        """Where a stream without a cursor starts: the start block; for one lock, the block it was made in
        (or, for a lock not made yet, what the feed reads from now on)."""
        if lock_id is None:
            return Position(self._feed.start_height, -1)
        lock = await self._htlc.read(lock_id)
        if lock is None:
            return Position(self._feed.kept_from().height, -1)
        return Position(max(lock.locked_height, self._feed.start_height), -1)

    async def stream(
        self, cursor: str = "", lock_id: str | None = None, heads: bool = False
    ) -> AsyncIterator[RawEvent | Head]:
        after = parse_cursor(cursor) if cursor else await self._beginning(lock_id)

        def wanted(event: HtlcEvent) -> bool:
            return event.name in KINDS and (lock_id is None or event.lock_id == lock_id)

        if not self._feed.keeps(after):
            async for event in self._feed.catch_up(after):
                if wanted(event):
                    yield await self._raw(event)
        index = self._feed.after(after)
        last: Head | None = None
        while True:
            scanned = self._feed.next_scan()
            if index < self._feed.first_index:  # a stream that fell more than the feed keeps behind
                log.warning("event stream fell behind what the feed keeps; events skipped")
                index = self._feed.first_index
            batch = self._feed.read(index, self._batch)
            for event in batch:
                index += 1
                if wanted(event):
                    yield await self._raw(event)
            if len(batch) < self._batch:
                head = self._feed.head
                if heads and head is not None:
                    tick = Head(
                        height=head.height, chain_time=head.chain_time_ns // NS_PER_S, final_height=head.final_height
                    )
                    if tick != last:
                        last = tick
                        yield tick
                await scanned.wait()
