"""Reading a ChainService.WatchEvents stream in tests: items queue up as they come, so waiting for one
with a timeout never cancels the call."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from swap.chain.v1 import chain_pb2

Item = chain_pb2.ChainEvent | chain_pb2.HeadTick


class EventStream:
    """A WatchEvents call drained by a task, so waiting for an item with a timeout never cancels the call.
    Events and head ticks share one queue, in the order the stream sent them."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.queue: asyncio.Queue[Item | BaseException] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            async for reply in self.call:
                await self.queue.put(reply.head if reply.WhichOneof("item") == "head" else reply.event)
        except grpc.aio.AioRpcError as err:
            await self.queue.put(err)

    def close(self) -> None:
        self.call.cancel()
        self.task.cancel()


async def next_item(stream: EventStream, timeout: float = 10.0) -> Item:
    """The next event or head tick."""
    item = await asyncio.wait_for(stream.queue.get(), timeout)
    if isinstance(item, BaseException):
        raise item
    return item


async def next_event(stream: EventStream, timeout: float = 10.0) -> chain_pb2.ChainEvent:
    """The next event, passing over head ticks (only a stream opened with heads=true has them)."""
    deadline = time.monotonic() + timeout
    while True:
        item = await next_item(stream, max(deadline - time.monotonic(), 0.0))
        if isinstance(item, chain_pb2.ChainEvent):
            return item


async def next_tick(stream: EventStream, timeout: float = 10.0) -> chain_pb2.HeadTick:
    """The next head tick; fails on an event in between, so a test sees every event it did not expect."""
    item = await next_item(stream, timeout)
    assert isinstance(item, chain_pb2.HeadTick), f"expected a head tick, got an event: {item}"
    return item
