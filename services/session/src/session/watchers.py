"""WatchSession's share of Redis: a pool of its own and caps on open streams, per replica and per client.

Every open stream holds a Redis connection while it blocks on its session's update stream. On the pool the
saga and the leases use, a client opening streams by the thousand would starve the saga at the worst
moment (the receiver paid, the source not yet withdrawn). Here streams only ever take connections from
their own pool, and a stream past a cap is refused before it touches Redis at all."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any, NoReturn

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from swap_runtime.errors import ResourceExhausted

from session.metrics import WATCH_REJECTED, WATCH_STREAMS
from session.model import SessionRecord
from session.store import SessionStore

log = logging.getLogger(__name__)

TOO_MANY_WATCHERS = "TOO_MANY_WATCHERS"


def client_id(tenant: str | None, peer: str) -> str:
    """Who a stream counts against: the tenant the edge names, else the caller's host (every port of one
    host is one client). The two never share a key, so no tenant name can spend a host's quota."""
    if tenant:
        return f"tenant:{tenant}"
    return f"peer:{peer_host(peer)}"


def peer_host(peer: str) -> str:
    """`ipv4:10.0.0.5:41234` -> `10.0.0.5`, `ipv6:[::1]:41234` -> `::1`; other forms (unix sockets) whole."""
    kind, _, address = peer.partition(":")
    if kind == "ipv4":
        return address.rsplit(":", 1)[0]
    if kind == "ipv6":
        host = address.rsplit(":", 1)[0] if address.startswith("[") else address
        return host.strip("[]")
    return peer


class Watchers:
    """The watch pool's client and the stream caps of this replica."""

    def __init__(self, client: aioredis.Redis, prefix: str, *, max_streams: int, max_per_client: int) -> None:
        # redis-py's return types are unions over its decode modes; this client never decodes.
        self._r: Any = client
        # The session record is read like the saga reads it, but over this pool.
        self._records = SessionStore(client, prefix)
        self._p = prefix
        self._max_streams = max_streams
        self._max_per_client = max_per_client
        self._per_client: dict[str, int] = {}
        self._total = 0

    @property
    def open_streams(self) -> int:
        return self._total

    def open_for(self, client: str) -> int:
        return self._per_client.get(client, 0)

    @contextlib.contextmanager
    def slot(self, client: str) -> Iterator[None]:
        """Holds one of the replica's and one of `client`'s stream slots until the block ends, however it ends."""
        held = self._per_client.get(client, 0)
        if self._total >= self._max_streams:
            self._reject("replica", f"this replica serves {self._max_streams} WatchSession streams already")
        if held >= self._max_per_client:
            self._reject("client", f"this client has {self._max_per_client} WatchSession streams open already")
        self._per_client[client] = held + 1
        self._total += 1
        WATCH_STREAMS.set(self._total)
        try:
            yield
        finally:
            self._total -= 1
            left = self._per_client[client] - 1
            if left:
                self._per_client[client] = left
            else:
                del self._per_client[client]
            WATCH_STREAMS.set(self._total)

    def _reject(self, cap: str, message: str) -> NoReturn:
        WATCH_REJECTED.labels(cap).inc()
        raise ResourceExhausted(f"{message}; retry later", reason=TOO_MANY_WATCHERS, metadata={"cap": cap})

    async def get(self, session_id: str) -> SessionRecord | None:
        with _pool_wait():
            return await self._records.get(session_id)

    async def updates(
        self, session_id: str, after: str | None, block_ms: int, follow: bool = True
    ) -> AsyncIterator[tuple[str, bytes]]:
        """Snapshots after stream id `after` (None: the latest one first), then, with `follow`, waiting for
        new ones."""
        key = f"{self._p}updates:{session_id}"  # the layout of session.store
        if after is None:
            with _pool_wait():
                last = await self._r.xrevrange(key, count=1)
            if not last:
                return
            entry_id, fields = last[0]
            after = entry_id.decode()
            yield after, fields[b"pb"]
        while True:
            with _pool_wait():
                batch = await self._r.xread({key: after}, block=block_ms if follow else None, count=100)
            if not batch and not follow:
                return
            for _, entries in batch:
                for entry_id, fields in entries:
                    after = entry_id.decode()
                    yield after, fields[b"pb"]

    async def close(self) -> None:
        await self._r.aclose()


@contextlib.contextmanager
def _pool_wait() -> Iterator[None]:
    """A stream that waited the pool's timeout for a connection is refused like one past a cap."""
    try:
        yield
    except RedisConnectionError as err:
        # redis-py's blocking pool reports its wait running out as a ConnectionError caused by a timeout;
        # an unreachable Redis raises one caused by the OSError, which stays what it is.
        if isinstance(err.__cause__, TimeoutError):
            WATCH_REJECTED.labels("pool").inc()
            raise ResourceExhausted(
                "no Redis connection for another WatchSession stream; retry later",
                reason=TOO_MANY_WATCHERS,
                metadata={"cap": "pool"},
            ) from None
        raise
