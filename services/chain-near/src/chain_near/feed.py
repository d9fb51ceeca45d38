"""The HTLC's lock events, read from what a NEAR node serves: the contract's storage changes in each final
block (EXPERIMENTAL_changes), as nearcore reports them for any account, so the same code follows the
devnet and testnet.

The HTLC keeps one record per lock (`l` + id) and, once the lock has paid out, a tombstone (`t` + id)
instead (see records.py). So, in the changes of block h:

- a lock record written in state active whose `locked_height` is h is a `lock_created` (its terms are the
  record);
- a tombstone written is a `lock_withdrawn` (with the secret) or a `lock_refunded`: the lock's terms are
  its last record, which this feed has usually seen, and otherwise the get_lock view at the block the lock
  was made in.

A record written back to active (a payout that bounced) or marked as being paid out is no event: the lock
has not ended until its tombstone is written.

One feed per service follows the final head from when the service started, keeping the events it found
(bounded); every WatchEvents stream reads from it, and a stream resuming from before what it keeps (at the
earliest, the start block) scans the chain for the gap itself. Final blocks are never reverted, so nothing
here is ever retracted.

Cursor: `<height>:<n>`, the n-th HTLC event (from 0) of block `height`; a stream resumes strictly after it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import time
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from py_near.exceptions.provider import UnknownBlockError
from swap_runtime.errors import InvalidArgument

from chain_near.model import HtlcEvent
from chain_near.records import LOCK_PREFIX, TOMBSTONE_PREFIX, CorruptRecord, decode_lock, decode_tombstone
from chain_near.rpc import Rpc

log = logging.getLogger(__name__)

CREATED = "lock_created"
WITHDRAWN = "lock_withdrawn"
REFUNDED = "lock_refunded"
_ENDED = {"withdrawn": WITHDRAWN, "refunded": REFUNDED}
_CURSOR = re.compile(r"(\d{1,20}):(\d{1,9})")
# Blocks whose changes are read at once while catching up.
_PARALLEL = 16
# Beyond this many heights at once, the blocks in between are found from the final one back (heights that
# were skipped cost nothing then).
_WALK_BACK_GAP = 256
_RECORDS_KEPT = 100_000
# Blocks read per step when a stream catches up on history.
_CATCH_UP_STRETCH = 512


@dataclass(frozen=True, order=True)
class Position:
    height: int
    ordinal: int

    @property
    def cursor(self) -> str:
        return f"{self.height}:{self.ordinal}"


def parse_cursor(text: str) -> Position:
    found = _CURSOR.fullmatch(text)
    if found is None:
        raise InvalidArgument("cursor", "must be a cursor returned by WatchEvents")
    return Position(int(found[1]), int(found[2]))


@dataclass(frozen=True)
class Head:
    """Where the chain stood at one scan: latest block, its timestamp, and the final block scanned to."""

    height: int
    chain_time_ns: int
    final_height: int


def _key(change: dict[str, Any]) -> bytes:
    return base64.b64decode(change["change"]["key_base64"])


def _cause_receipt(change: dict[str, Any]) -> str:
    cause = change.get("cause") or {}
    return str(cause.get("receipt_hash") or "")


class LockFeed:
    def __init__(
        self,
        rpc: Rpc,
        contract: str,
        start_height: int,
        poll_interval_s: float,
        retain: int = 200_000,
        on_event: Callable[[HtlcEvent], None] | None = None,
    ) -> None:
        self._rpc = rpc
        self.contract = contract
        self._poll = poll_interval_s
        self._retain = retain
        self._on_event = on_event
        self.start_height = start_height
        self.scanned_to = start_height - 1
        self.head: Head | None = None
        self.head_read_at = 0.0  # time.monotonic() of the read behind `head`
        self._events: list[HtlcEvent] = []
        self._positions: list[Position] = []
        self._dropped = 0  # events dropped from the front (absolute index of self._events[0])
        self._first_kept = Position(start_height, 0)  # nothing before it is kept
        self._records: dict[str, dict[str, Any]] = {}
        self._scan_lock = asyncio.Lock()
        self._scanned = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- following the chain -------------------------------------------------------------------------

    async def start(self) -> None:
        """Follows the chain from its final block, in the background: starting takes no scan of history,
        however long ago the start block was. Streams that need events from before read them from the chain
        (catch_up). A start height of 0 is the final block."""
        header = await self._rpc.block(finality="final")
        final_height = int(header["height"])
        if self.start_height <= 0:
            self.start_height = final_height
        self.scanned_to = max(final_height, self.start_height - 1)
        self._first_kept = Position(self.scanned_to + 1, 0)
        await self.sync()
        self._task = asyncio.create_task(self._follow(), name="near-lock-feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reading the HTLC's changes failed; retrying", extra={"error": repr(exc)})

    async def sync(self) -> int:
        """Reads every final block not read yet; returns the final height now covered."""
        async with self._scan_lock:
            final = await self._rpc.block(finality="final")
            final_height = int(final["height"])
            if final_height > self.scanned_to:
                blocks = await self._blocks(self.scanned_to + 1, final)
                for event in await self.scan(blocks, self._records):
                    self._keep(event)
                self.scanned_to = final_height
            latest = await self._rpc.block(finality="optimistic")
            self.head_read_at = time.monotonic()
            self.head = Head(
                height=max(int(latest["height"]), self.scanned_to),
                chain_time_ns=int(latest["timestamp_nanosec"]),
                final_height=self.scanned_to,
            )
        wake, self._scanned = self._scanned, asyncio.Event()
        wake.set()
        return self.scanned_to

    def _keep(self, event: HtlcEvent) -> None:
        self._events.append(event)
        self._positions.append(Position(event.block_height, event.index))
        if self._on_event is not None:
            self._on_event(event)
        if len(self._events) > self._retain:
            drop = len(self._events) - self._retain
            self._first_kept = self._positions[drop]
            del self._events[:drop], self._positions[:drop]
            self._dropped += drop

    async def _blocks(self, first: int, final: dict[str, Any]) -> list[int | str]:
        """The blocks from height `first` to the block `final`: heights (a skipped one is an unknown block,
        passed over), or, across a long gap, the hashes found walking back from the final block."""
        final_height = int(final["height"])
        if final_height - first < _WALK_BACK_GAP:
            return list(range(first, final_height + 1))
        found: list[int | str] = []
        header = final
        while int(header["height"]) >= first:
            found.append(str(header["hash"]))
            if int(header.get("prev_height") or 0) < first:
                break
            header = await self._rpc.block(block_id=str(header["prev_hash"]))
        return found[::-1]

    async def scan(self, blocks: list[int | str], records: dict[str, dict[str, Any]]) -> list[HtlcEvent]:
        """The events of these blocks, in order."""
        events: list[HtlcEvent] = []
        for start in range(0, len(blocks), _PARALLEL):
            batch = blocks[start : start + _PARALLEL]
            read = await asyncio.gather(*(self._changes(block) for block in batch))
            for changes in read:
                if changes is not None:
                    events.extend(await self._block_events(*changes, records))
        return events

    async def _changes(self, block_id: int | str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        try:
            block_hash, changes = await self._rpc.data_changes(self.contract, block_id)
        except UnknownBlockError:
            return None  # a height no block was produced at
        if not changes:
            return {"hash": block_hash}, []
        header = await self._rpc.block(block_id=block_hash)
        return header, changes

    async def _block_events(
        self, header: dict[str, Any], changes: list[dict[str, Any]], records: dict[str, dict[str, Any]]
    ) -> list[HtlcEvent]:
        if not changes:
            return []
        height = int(header["height"])
        events: list[HtlcEvent] = []
        per_receipt: dict[str, int] = {}

        def event(name: str, data: dict[str, Any], receipt_id: str) -> None:
            log_index = per_receipt.get(receipt_id, 0)
            per_receipt[receipt_id] = log_index + 1
            events.append(
                HtlcEvent(
                    index=len(events),
                    name=name,
                    lock_id=str(data["lock_id"]),
                    data=data,
                    block_height=height,
                    block_timestamp=int(header["timestamp_nanosec"]),
                    receipt_id=receipt_id,
                    tx_hash="",
                    log_index=log_index,
                )
            )

        for change in changes:
            if change.get("type") != "data_update":
                continue
            key = _key(change)
            try:
                if key[:1] == LOCK_PREFIX and len(key) == 33:
                    record = decode_lock(key[1:], base64.b64decode(change["change"]["value_base64"]))
                    self._remember_record(records, record)
                    if record["state"] == "active" and record["locked_height"] == height:
                        event(CREATED, record, _cause_receipt(change))
                elif key[:1] == TOMBSTONE_PREFIX and len(key) == 33:
                    lock_id = key[1:].hex()
                    tombstone = decode_tombstone(base64.b64decode(change["change"]["value_base64"]))
                    terms = records.pop(lock_id, None) or await self.terms(lock_id, tombstone.locked_height)
                    data = {**terms, "state": tombstone.state, "secret": tombstone.secret}
                    event(_ENDED[tombstone.state], data, _cause_receipt(change))
            except (CorruptRecord, KeyError) as exc:
                log.error("unreadable HTLC record", extra={"height": height, "error": repr(exc)})
        return events

    @staticmethod
    def _remember_record(records: dict[str, dict[str, Any]], record: dict[str, Any]) -> None:
        records[str(record["lock_id"])] = record
        if len(records) > _RECORDS_KEPT:
            del records[next(iter(records))]

    async def terms(self, lock_id: str, locked_height: int) -> dict[str, Any]:
        """A lock's record as the block it was made in holds it."""
        data, _ = await self._rpc.view(self.contract, "get_lock", {"lock_id": lock_id}, block_id=locked_height)
        if not isinstance(data, dict) or "depositor" not in data:
            raise CorruptRecord(f"no record of lock {lock_id} at block {locked_height}")
        return data

    # -- reading ---------------------------------------------------------------------------------------

    def after(self, position: Position | None) -> int:
        """The absolute index of the first kept event after `position` (None: the first kept event)."""
        if position is None:
            return self._dropped
        return self._dropped + bisect_right(self._positions, position)

    @property
    def first_index(self) -> int:
        """The absolute index of the first event kept."""
        return self._dropped

    def read(self, index: int, limit: int) -> list[HtlcEvent]:
        """Kept events from absolute index `index` (at least first_index) on."""
        start = index - self._dropped
        return self._events[start : start + limit]

    def keeps(self, position: Position) -> bool:
        """Whether every event after `position` is kept."""
        return position >= self._first_kept

    def kept_from(self) -> Position:
        """The position from which on every event is kept."""
        return self._first_kept

    def next_scan(self) -> asyncio.Event:
        """Set when the scan after this call has ended."""
        return self._scanned

    async def catch_up(self, after: Position) -> AsyncIterator[HtlcEvent]:
        """The events after `after` that are not kept (from before the service started, or dropped), read
        from the chain, a stretch of blocks at a time."""
        end = self._first_kept
        records: dict[str, dict[str, Any]] = {}
        for first in range(max(after.height, self.start_height), end.height + 1, _CATCH_UP_STRETCH):
            last = min(first + _CATCH_UP_STRETCH, end.height + 1)
            for event in await self.scan(list(range(first, last)), records):
                if after < Position(event.block_height, event.index) < end:
                    yield event
