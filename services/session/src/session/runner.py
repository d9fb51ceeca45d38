"""Drives open sessions: one saga task per session this replica holds the lease of.

Any number of replicas share one Redis. A replica drives a session only while it holds the session's
lease (a Redis key with a TTL, renewed on every saga pass); a replica that dies stops renewing, and
the periodic scan of another replica picks the session up once the lease expires. Writes are fenced by
the record's version, so a replica that lost its lease cannot overwrite a newer step."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from session.saga import Saga
from session.store import SessionStore

log = logging.getLogger(__name__)


class Runner:
    def __init__(
        self,
        saga: Saga,
        store: SessionStore,
        lease_ttl_s: float = 10.0,
        restart_delay_s: float = 1.0,
        replica_id: str = "",
    ) -> None:
        self._saga = saga
        self._store = store
        self._delay = restart_delay_s
        self._ttl_ms = int(lease_ttl_s * 1000)
        self._scan_every = lease_ttl_s / 2
        # A stable id lets a restarted replica take its own leases back at once instead of waiting them out.
        self.owner = replica_id or uuid.uuid4().hex
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._scanner: asyncio.Task[None] | None = None

    def spawn(self, session_id: str) -> None:
        """Drives the session here if no replica holds its lease (a no-op when one does)."""
        task = self._tasks.get(session_id)
        if task is None or task.done():
            self._tasks[session_id] = asyncio.create_task(self._drive(session_id), name=f"saga-{session_id}")

    async def _drive(self, session_id: str) -> None:
        if not await self._store.acquire_lease(session_id, self.owner, self._ttl_ms):
            self._tasks.pop(session_id, None)
            return

        async def still_mine() -> bool:
            return await self._store.renew_lease(session_id, self.owner, self._ttl_ms)

        try:
            while True:
                try:
                    await self._saga.run(session_id, still_mine)
                    return
                except Exception:
                    # A bug or a lost dependency must not drop a session holding funds: log, drive it again.
                    log.exception("saga crashed; restarting it", extra={"session": session_id})
                    await asyncio.sleep(self._delay)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.release_lease(session_id, self.owner))
            if self._tasks.get(session_id) is asyncio.current_task():
                self._tasks.pop(session_id, None)

    async def resume_all(self) -> int:
        """Picks up every open session no replica drives, now and then periodically: after a restart or
        a replica's death the chains say where each one stands."""
        ids = await self._store.active_ids()
        for session_id in ids:
            self.spawn(session_id)
        log.info("scanning open sessions", extra={"count": len(ids), "owner": self.owner})
        if self._scanner is None:
            self._scanner = asyncio.create_task(self._scan(), name="session-scan")
        return len(ids)

    async def _scan(self) -> None:
        while True:
            await asyncio.sleep(self._scan_every)
            try:
                for session_id in await self._store.active_ids():
                    self.spawn(session_id)
            except Exception:
                log.exception("scan of open sessions failed")

    async def stop(self) -> None:
        if self._scanner is not None:
            self._scanner.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
