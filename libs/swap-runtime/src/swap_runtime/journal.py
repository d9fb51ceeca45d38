"""The transactions a chain service sent for a lock step and has not yet seen executed.

A chain service that is killed while a step's transaction waits for a block (a stalled chain, a slow
mempool) forgets it; the session asks the restarted service for the step again, the lock still reads
active, and a second transaction would go out for the same step (the later one fails on chain and costs
its fee). So before broadcasting, the service writes the signed transaction here under the step's key, and
a request for a step with an entry resumes it: it looks the transaction up, submits the same signed bytes
again (same hash: a chain executes it at most once) and only signs a new one when the old one provably can
never execute (its nonce was used by another transaction, or it expired). The entry is dropped once the
transaction's outcome is known.

An entry holds a transaction about to be broadcast: a withdrawal's carries the secret, which is public in
the mempool a moment later. Entries expire after `ttl_s` in any case.

`RedisJournal` survives restarts of the service; `MemoryJournal` (no URL configured) only covers a step
retried within one process lifetime.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from swap_runtime.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Entry = dict[str, Any]
DEFAULT_TTL_S = 7 * 24 * 3600


class SendJournal(Protocol):
    async def get(self, step: str) -> Entry | None: ...

    async def put(self, step: str, entry: Entry) -> None: ...

    async def drop(self, step: str) -> None: ...

    async def close(self) -> None: ...


class MemoryJournal:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    async def get(self, step: str) -> Entry | None:
        return self._entries.get(step)

    async def put(self, step: str, entry: Entry) -> None:
        self._entries[step] = entry

    async def drop(self, step: str) -> None:
        self._entries.pop(step, None)

    async def close(self) -> None:
        return None


class RedisJournal:
    """Entries as JSON strings under `<namespace>:<step>`, each with the TTL. A Redis that does not answer
    makes the step UNAVAILABLE (JOURNAL_UNAVAILABLE): a transaction is never broadcast unrecorded."""

    def __init__(self, url: str, namespace: str, ttl_s: int = DEFAULT_TTL_S, timeout_s: float = 5.0) -> None:
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        self._namespace = namespace
        self._ttl = ttl_s

    def _key(self, step: str) -> str:
        return f"{self._namespace}:{step}"

    async def get(self, step: str) -> Entry | None:
        try:
            raw = await self._redis.get(self._key(step))
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from None
        return None if raw is None else dict(json.loads(raw))

    async def put(self, step: str, entry: Entry) -> None:
        try:
            await self._redis.set(self._key(step), json.dumps(entry), ex=self._ttl)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from None

    async def drop(self, step: str) -> None:
        try:
            await self._redis.delete(self._key(step))
        except (RedisError, OSError) as exc:
            # A stale entry only makes the next request for the step look its transaction up first.
            log.warning("journal entry not dropped", extra={"step": step, "error": type(exc).__name__})

    async def close(self) -> None:
        await self._redis.aclose()


async def settle(journal: SendJournal, step: str | None, attempt: Awaitable[T]) -> T:
    """Awaits a step's send (or resumption) and drops its entry once the outcome is known, failures included;
    an UNAVAILABLE outcome (the transaction may still land) keeps the entry for the next request."""
    if step is None:
        return await attempt
    try:
        result = await attempt
    except Unavailable:
        raise
    except BaseException:
        await journal.drop(step)
        raise
    await journal.drop(step)
    return result


def _unavailable(exc: BaseException) -> Unavailable:
    return Unavailable(f"send journal unavailable: {type(exc).__name__}", reason="JOURNAL_UNAVAILABLE")


def open_journal(url: str, namespace: str) -> SendJournal:
    """A Redis journal for `url`, or one kept in memory when `url` is empty."""
    if not url:
        return MemoryJournal()
    return RedisJournal(url, namespace)
