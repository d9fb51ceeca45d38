"""Keeps one saga task per open session in this process; resumes every open session on start."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from session.saga import Saga
from session.store import SessionStore

log = logging.getLogger(__name__)


class Runner:
    def __init__(self, saga: Saga, store: SessionStore, restart_delay_s: float = 1.0) -> None:
        self._saga = saga
        self._store = store
        self._delay = restart_delay_s
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def spawn(self, session_id: str) -> None:
        task = self._tasks.get(session_id)
        if task is None or task.done():
            self._tasks[session_id] = asyncio.create_task(self._drive(session_id), name=f"saga-{session_id}")

    async def _drive(self, session_id: str) -> None:
        try:
            while True:
                try:
                    await self._saga.run(session_id)
                    return
                except Exception:
                    # A bug or a lost dependency must not drop a session holding funds: log, drive it again.
                    log.exception("saga crashed; restarting it", extra={"session": session_id})
                    await asyncio.sleep(self._delay)
        finally:
            if self._tasks.get(session_id) is asyncio.current_task():
                self._tasks.pop(session_id, None)

    async def resume_all(self) -> int:
        """Picks up every non-terminal session: after a restart the chains say where each one stands."""
        ids = await self._store.active_ids()
        for session_id in ids:
            self.spawn(session_id)
        log.info("resumed open sessions", extra={"count": len(ids)})
        return len(ids)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
