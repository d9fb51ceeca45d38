"""Drives open sessions: chain events wake them, a deadline schedule times them, a sweep backs both up.

Any number of replicas share one Redis. A replica drives a session only while it holds the session's
lease (a Redis key with a TTL, renewed in the background every third of it, also while a chain call is
slow). Each take of a lease raises the session's epoch; every chain action carries it, and the chain
services refuse an epoch older than one they have seen, so a replica stalled across a takeover sends
nothing that counts.

Each replica holds one WatchEvents stream per chain (not one per session), resumes it from a cursor it
persists, and wakes exactly the sessions whose locks an event names (lock id -> session index in
Redis). The streams' head ticks carry each chain's time: a session waiting for a window puts its chain
time in a Redis sorted set per chain, and the tick that reaches it wakes the session. A reconciliation
sweep over all open sessions (every `sweep_interval_s`) is the safety net for a missed event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping

from swap.chain.v1 import chain_pb2

from session.chains import Chain
from session.metrics import CHAIN_STREAM_EVENTS
from session.saga import HandOff, Heads, Lease, Saga
from session.store import SessionStore

log = logging.getLogger(__name__)

_CURSOR_EVERY_S = 1.0
_RECONNECT_S = (0.2, 5.0)


class Runner:
    def __init__(
        self,
        saga: Saga,
        store: SessionStore,
        lease_ttl_s: float = 10.0,
        restart_delay_s: float = 1.0,
        replica_id: str = "",
        chains: Mapping[str, Chain] | None = None,
        heads: Heads | None = None,
        sweep_interval_s: float = 30.0,
    ) -> None:
        self._saga = saga
        self._store = store
        self._delay = restart_delay_s
        self._ttl_s = lease_ttl_s
        self._ttl_ms = int(lease_ttl_s * 1000)
        self._chains = chains or {}
        self._heads = heads or Heads()
        self._sweep_every = sweep_interval_s
        # A stable id lets a restarted replica take its own leases back at once instead of waiting them out.
        self.owner = replica_id or uuid.uuid4().hex
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Sessions this replica handed off (it could not reach a chain service): not taken back before then.
        self._away: dict[str, float] = {}
        self._leases: dict[str, Lease] = {}
        self._background: list[asyncio.Task[None]] = []

    # -- one session ---------------------------------------------------------------------------------

    def spawn(self, session_id: str, event: chain_pb2.ChainEvent | None = None) -> None:
        """Wakes the session if this replica drives it (with what `event` says of its lock), else tries
        to take it (a no-op when another replica holds its lease: that one has the same events)."""
        lease = self._leases.get(session_id)
        task = self._tasks.get(session_id)
        if lease is not None and task is not None and not task.done():
            if event is None:
                lease.poke()
            else:
                lease.learn(event)
            return
        if self._away.get(session_id, 0.0) > time.monotonic():
            return
        self._away.pop(session_id, None)
        if task is None or task.done():
            self._tasks[session_id] = asyncio.create_task(self._drive(session_id), name=f"saga-{session_id}")

    wake = spawn

    async def _drive(self, session_id: str) -> None:
        try:
            epoch = await self._store.acquire_lease(session_id, self.owner, self._ttl_ms)
        except Exception as exc:
            # Redis is away: the sweep (or the session's next event) tries again once it is back.
            log.warning("lease not taken; will try again", extra={"session": session_id, "error": repr(exc)})
            epoch = 0
        if not epoch:
            if self._tasks.get(session_id) is asyncio.current_task():
                self._tasks.pop(session_id, None)
            return
        lease = Lease(epoch=epoch)
        self._leases[session_id] = lease
        keeper = asyncio.create_task(self._keep(session_id, lease), name=f"lease-{session_id}")
        try:
            while not lease.lost.is_set():
                try:
                    await self._saga.run(session_id, lease)
                    return
                except HandOff:
                    # Released below; the other replicas' sweeps take it while this one keeps away.
                    self._away[session_id] = time.monotonic() + self._ttl_s
                    return
                except Exception:
                    # A bug or a lost dependency must not drop a session holding funds: log, drive it again.
                    log.exception("saga crashed; restarting it", extra={"session": session_id})
                    await lease.sleep(self._delay)
        finally:
            keeper.cancel()
            if self._leases.get(session_id) is lease:
                self._leases.pop(session_id, None)
            if not lease.lost.is_set():
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._store.release_lease(session_id, self.owner))
            if self._tasks.get(session_id) is asyncio.current_task():
                self._tasks.pop(session_id, None)

    async def _keep(self, session_id: str, lease: Lease) -> None:
        """Renews the lease while the session is driven, however long a chain call takes; gives up (and
        stops the saga before its next send) once it cannot prove the lease is still held."""
        held_until = time.monotonic() + self._ttl_s
        while True:
            await asyncio.sleep(self._ttl_s / 3)
            try:
                renewed = await self._store.renew_lease(session_id, self.owner, self._ttl_ms)
            except Exception:
                renewed = time.monotonic() < held_until - self._ttl_s / 3
                log.warning("lease renewal failed", extra={"session": session_id})
                if renewed:
                    continue
            if not renewed:
                log.warning("lease lost; another replica may drive this session", extra={"session": session_id})
                lease.lose()
                return
            held_until = time.monotonic() + self._ttl_s

    # -- all sessions --------------------------------------------------------------------------------

    async def resume_all(self) -> int:
        """Picks up every open session no replica drives, starts the chain event streams and the sweep."""
        ids = await self._store.active_ids()
        for session_id in ids:
            self.spawn(session_id)
        log.info("resuming open sessions", extra={"count": len(ids), "owner": self.owner})
        if not self._background:
            self._background.append(asyncio.create_task(self._sweep(), name="session-sweep"))
            for name, chain in self._chains.items():
                self._background.append(asyncio.create_task(self._follow(name, chain), name=f"events-{name}"))
        return len(ids)

    async def _sweep(self) -> None:
        """Takes over open sessions no replica drives (their replica died, their leases expired). The
        sessions driven here re-read their facts at least every sweep interval by themselves."""
        while True:
            await asyncio.sleep(min(self._sweep_every, self._ttl_s / 2))
            now = time.monotonic()
            self._away = {session_id: until for session_id, until in self._away.items() if until > now}
            try:
                for session_id in await self._store.active_ids():
                    if session_id not in self._leases:
                        self.spawn(session_id)
            except Exception:
                log.exception("sweep of open sessions failed")

    async def _follow(self, name: str, chain: Chain) -> None:
        """One event stream for the whole replica: wakes the sessions an event names and, on each head
        tick, those whose deadline on this chain has come."""
        backoff = _RECONNECT_S[0]
        while True:
            try:
                cursor = await self._store.cursor(self.owner, name)
                saved_at = time.monotonic()
                async for item in chain.watch(cursor):
                    backoff = _RECONNECT_S[0]
                    if item.HasField("head"):
                        await self._on_head(name, item.head)
                        continue
                    event = item.event
                    CHAIN_STREAM_EVENTS.labels(name, chain_pb2.ChainEventKind.Name(event.kind)).inc()
                    session_id = await self._store.session_of_lock(name, event.lock_id)
                    if session_id is not None:
                        self.wake(session_id, event)
                    cursor = event.cursor
                    if time.monotonic() - saved_at >= _CURSOR_EVERY_S:
                        await self._store.save_cursor(self.owner, name, cursor)
                        saved_at = time.monotonic()
                await self._store.save_cursor(self.owner, name, cursor)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("chain event stream broke; reconnecting", extra={"chain": name, "error": repr(exc)})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _RECONNECT_S[1])

    async def _on_head(self, name: str, head: chain_pb2.HeadTick) -> None:
        self._heads.update(name, int(head.chain_time))
        for session_id in await self._store.due(name, int(head.chain_time)):
            self.wake(session_id)

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in [*tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
