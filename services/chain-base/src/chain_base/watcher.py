"""Escrow events at confirmation depth, with reorg handling, resumable from a cursor.

Each stream scans eth_getLogs block ranges up to the deepest block with enough confirmations. It
remembers the hash of every block it emitted events from and of the last block of each scanned range
(a checkpoint). Before each scan it re-reads the newest checkpoint's hash: if that block was
replaced, it walks back to the newest checkpoint still canonical (hashes chain, so everything below a
matching hash matches), retracts the events above it (removed=True, newest first) and scans again
from there, so a replaced lock is retracted and its replacement emitted once.

Cursor: "<block number>:<log index>:<block hash>" of the last event delivered: resuming skips every
event at or before it. A cursor whose block was replaced meanwhile resumes from reorg_window blocks
earlier, and events may repeat there; consumers key events by (lock_id, kind).

Head ticks (heads=True): after a poll has scanned up to the deepest confirmed block, the stream yields
where the chain stands, when that changed since the last tick. A tick therefore follows every event at or
below its final height, so a consumer that sees one knows nothing older is still on its way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from hexbytes import HexBytes
from swap_runtime.errors import InvalidArgument
from swap_runtime.metrics import REORGS
from web3.types import LogReceipt

from chain_base.escrows import Escrows
from chain_base.rpc import Rpc

log = logging.getLogger(__name__)

_AFTER_ALL_LOGS = 2**32 - 1


@dataclass(frozen=True)
class Cursor:
    block: int
    log_index: int
    block_hash: str

    def __str__(self) -> str:
        return f"{self.block}:{self.log_index}:{self.block_hash}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        try:
            block, index, block_hash = text.split(":")
            return cls(int(block), int(index), block_hash)
        except ValueError:
            raise InvalidArgument("cursor", "must be a cursor returned by WatchEvents") from None


@dataclass(frozen=True)
class RawEvent:
    """A decoded escrow log, or the retraction of one (removed=True)."""

    name: str
    args: dict[str, Any]
    escrow_id: bytes
    block: int
    block_hash: str
    block_time: int
    log_index: int
    tx_hash: str
    confirmations: int
    removed: bool
    cursor: Cursor


@dataclass(frozen=True)
class Head:
    """Where the chain stood at one poll: latest block, its timestamp, and the deepest confirmed block."""

    height: int
    chain_time: int
    final_height: int


@dataclass
class _Scan:
    scanned_to: int
    checkpoints: dict[int, str] = field(default_factory=dict)
    emitted: dict[int, list[RawEvent]] = field(default_factory=dict)


class EventWatcher:
    def __init__(
        self,
        rpc: Rpc,
        escrows: Escrows,
        confirmations: int,
        poll_interval_s: float,
        reorg_window: int,
        log_chunk: int,
    ) -> None:
        self._rpc = rpc
        self._escrows = escrows
        self._confirmations = confirmations
        self._poll = poll_interval_s
        self._window = reorg_window
        self._chunk = log_chunk

    async def _block(self, number: int) -> tuple[str, int]:
        w3 = self._rpc.w3
        block = await self._rpc.call("get_block", lambda: w3.eth.get_block(number))
        return HexBytes(block["hash"]).to_0x_hex(), int(block["timestamp"])

    async def stream(
        self, cursor: str = "", escrow_id: bytes | None = None, heads: bool = False
    ) -> AsyncIterator[RawEvent | Head]:
        start = self._escrows.start_block
        after: Cursor | None = Cursor.parse(cursor) if cursor else None
        scan = _Scan(scanned_to=start - 1)
        if after is not None:
            current, _ = await self._block(after.block)
            if current == after.block_hash:
                scan.scanned_to = after.block - 1
            else:
                log.warning("cursor block was replaced; resuming earlier", extra={"block": after.block})
                scan.scanned_to = max(start, after.block - self._window) - 1
                after = None
        last: Head | None = None
        while True:
            async for item in self._poll_once(scan, after, escrow_id):
                if isinstance(item, RawEvent):
                    yield item
                elif heads and item != last:
                    last = item
                    yield item
            await asyncio.sleep(self._poll)

    async def _poll_once(
        self, scan: _Scan, after: Cursor | None, escrow_id: bytes | None
    ) -> AsyncIterator[RawEvent | Head]:
        head, chain_time = await self._escrows.head()
        for event in await self._rewind_if_reorged(scan, head):
            yield event
        safe = head - self._confirmations + 1
        while scan.scanned_to < safe:
            lo, hi = scan.scanned_to + 1, min(safe, scan.scanned_to + self._chunk)
            batch = await self._scan_range(lo, hi, head, escrow_id)
            if batch is None:
                return  # the range changed under us; the next poll sees the reorg
            hi_hash, events = batch
            for event in events:
                scan.checkpoints[event.block] = event.block_hash
                scan.emitted.setdefault(event.block, []).append(event)
                if after is None or (event.block, event.log_index) > (after.block, after.log_index):
                    yield event
            scan.checkpoints[hi] = hi_hash
            scan.scanned_to = hi
        self._prune(scan, safe)
        yield Head(height=head, chain_time=chain_time, final_height=max(safe, 0))

    async def _scan_range(
        self, lo: int, hi: int, head: int, escrow_id: bytes | None
    ) -> tuple[str, list[RawEvent]] | None:
        w3 = self._rpc.w3
        topics: list[Any] = [list(self._escrows.topics)]
        if escrow_id is not None:
            topics.append(escrow_id)
        params: Any = {"address": self._escrows.addresses, "fromBlock": lo, "toBlock": hi, "topics": topics}
        logs: list[LogReceipt] = await self._rpc.call("get_logs", lambda: w3.eth.get_logs(params))
        hi_hash, _ = await self._block(hi)
        blocks: dict[int, tuple[str, int]] = {}
        events = []
        for entry in sorted(logs, key=lambda e: (int(e["blockNumber"]), int(e["logIndex"]))):
            number = int(entry["blockNumber"])
            if number not in blocks:
                blocks[number] = await self._block(number)
            block_hash, block_time = blocks[number]
            if HexBytes(entry["blockHash"]).to_0x_hex() != block_hash:
                return None
            self._escrows.learn(entry)
            name, args = self._escrows.decode(entry)
            index = int(entry["logIndex"])
            events.append(
                RawEvent(
                    name=name,
                    args=args,
                    escrow_id=bytes(args["id"]),
                    block=number,
                    block_hash=block_hash,
                    block_time=block_time,
                    log_index=index,
                    tx_hash=HexBytes(entry["transactionHash"]).to_0x_hex(),
                    confirmations=head - number + 1,
                    removed=False,
                    cursor=Cursor(number, index, block_hash),
                )
            )
        return hi_hash, events

    async def _rewind_if_reorged(self, scan: _Scan, head: int) -> list[RawEvent]:
        if not scan.checkpoints:
            return []
        numbers = sorted(scan.checkpoints, reverse=True)
        newest = numbers[0]
        if newest <= head and (await self._block(newest))[0] == scan.checkpoints[newest]:
            return []
        anchor = min(numbers) - 1
        for number in numbers[1:]:
            if number <= head and (await self._block(number))[0] == scan.checkpoints[number]:
                anchor = number
                break
        anchor_hash = scan.checkpoints.get(anchor, "")
        retracted: list[RawEvent] = []
        for number in sorted((n for n in scan.emitted if n > anchor), reverse=True):
            for event in reversed(scan.emitted.pop(number)):
                self._escrows.forget(event.escrow_id)
                retracted.append(
                    RawEvent(
                        **{
                            **event.__dict__,
                            "removed": True,
                            "confirmations": max(head - number + 1, 0),
                            "cursor": Cursor(anchor, _AFTER_ALL_LOGS, anchor_hash),
                        }
                    )
                )
        for number in [n for n in scan.checkpoints if n > anchor]:
            del scan.checkpoints[number]
        scan.scanned_to = anchor
        log.warning("reorg: rewound", extra={"anchor": anchor, "retracted": len(retracted)})
        REORGS.labels("base").inc()
        return retracted

    def _prune(self, scan: _Scan, safe: int) -> None:
        floor = safe - self._window
        keep = max(scan.checkpoints, default=None)
        for number in [n for n in scan.checkpoints if n < floor and n != keep]:
            del scan.checkpoints[number]
        for number in [n for n in scan.emitted if n < floor]:
            del scan.emitted[number]
