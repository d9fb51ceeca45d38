"""Reading a ChainService.WatchEvents stream in tests: events queue up as they come, so waiting for one
with a timeout never cancels the call."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from swap.chain.v1 import chain_pb2


class EventStream:
    """A WatchEvents call drained by a task, so waiting for an event with a timeout never cancels the call."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.queue: asyncio.Queue[chain_pb2.ChainEvent | BaseException] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            async for reply in self.call:
                await self.queue.put(reply.event)
        except grpc.aio.AioRpcError as err:
            await self.queue.put(err)

    def close(self) -> None:
        self.call.cancel()
        self.task.cancel()


async def next_event(stream: EventStream, timeout: float = 10.0) -> chain_pb2.ChainEvent:
    item = await asyncio.wait_for(stream.queue.get(), timeout)
    if isinstance(item, BaseException):
        raise item
    return item
