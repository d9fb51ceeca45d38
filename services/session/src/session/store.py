"""Sessions in Redis: the record, an update stream per session (WatchSession's resumable history)
and the indexes, all written in one MULTI/EXEC per transition so they never disagree.

Keys under the configured prefix:
  session:<id>        the record (JSON)             updates:<id>  stream of public snapshots
  active              ids of non-terminal sessions  active:<maker> the same, per maker
  all / maker:<maker> ids by creation time (zset)   request:<id>  idempotency: request id -> session id
  tenant-active:<tenant>[:<maker>]  open sessions of a tenant (and of one maker within it)
  tenant:<tenant> / tenant-maker:<tenant>:<maker>  a tenant's ids by creation time (zset)
  lease:<id> / epoch:<id>  the driving replica and its fencing epoch
  locks:<chain>       lock id -> session id (what a chain event wakes)
  deadlines:<chain>   session ids by the chain time they wait for (zset)
  cursor:<replica>:<chain>  where a replica's chain event stream resumes
  hashlock:<hex>      the session a maker's hashlock belongs to (secret mode "maker": one session per secret)

Nothing outlives its use: an ended session's record and update stream expire after the retention period,
the listing indexes drop members older than it (and expire when no session was created for that long),
request ids, hashlocks, leases, epochs and cursors carry their own expiry, and the live indexes (active
sets, locks, deadlines) lose a session's entries when it ends.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError
from swap_runtime.errors import FailedPrecondition, InvalidArgument

from session.model import SecretMode, SessionRecord
from session.states import TERMINAL

_REQUEST_TTL_S = 24 * 3600
_CURSOR_TTL_S = 7 * 24 * 3600
_LOCK_CACHE_SIZE = 100_000
_ENDED_EPOCH_TTL_S = 24 * 3600  # an ended session's fencing epoch outlives any call still in flight
# A maker's hashlock stays taken far longer than any session can run: a secret revealed once must never
# unlock a second swap.
_HASHLOCK_TTL_S = 90 * 24 * 3600
# How long an ended session stays readable (get, list, watch).
DEFAULT_RETENTION_S = 30 * 24 * 3600


# Renew or release a lease only while we still hold it (compare-and-act in one step).
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
# Take a free lease, or take back our own (a replica restarted under the same id resumes at once); each
# take raises the session's epoch, the fencing token the chain services check on every action.
_ACQUIRE = (
    "local v = redis.call('get', KEYS[1]) "
    "if v == false or v == ARGV[1] then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "return redis.call('incr', KEYS[2]) else return 0 end"
)
# Deadlines due at a chain time: take them off the schedule in the same step, so one replica wakes each.
_DUE = (
    "local ids = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1]) "
    "if #ids > 0 then redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1]) end return ids"
)


class VersionConflict(FailedPrecondition):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id} changed concurrently; retry", reason="CONCURRENT_UPDATE")


class SessionStore:
    def __init__(self, client: aioredis.Redis, prefix: str, retention_s: int = DEFAULT_RETENTION_S) -> None:
        self._retention_s = retention_s
        # redis-py's return types are unions over its decode modes; this client never decodes.
        self._r: Any = client
        self._p = prefix
        # lock -> session never changes once written: the event streams look it up without a round trip.
        self._lock_sessions: OrderedDict[tuple[str, str], str] = OrderedDict()

    def _k(self, *parts: str) -> str:
        return self._p + ":".join(parts)

    async def close(self) -> None:
        await self._r.aclose()

    async def ping(self) -> bool:
        return bool(await self._r.ping())

    async def session_for_request(self, request_id: str) -> str | None:
        value = await self._r.get(self._k("request", request_id))
        return value.decode() if value is not None else None

    async def create(self, record: SessionRecord, snapshot: bytes) -> SessionRecord:
        """Stores a new session; with a request id already used, returns that request's session."""
        if record.request_id:
            claimed = await self._r.set(
                self._k("request", record.request_id), record.session_id, nx=True, ex=_REQUEST_TTL_S
            )
            if not claimed:
                existing = await self.session_for_request(record.request_id)
                if existing is not None and (found := await self.get(existing)) is not None:
                    return found
        if record.secret_mode is SecretMode.MAKER:
            key = self._k("hashlock", record.hashlock)
            if not await self._r.set(key, record.session_id, nx=True, ex=_HASHLOCK_TTL_S):
                if record.request_id:
                    await self._r.delete(self._k("request", record.request_id))
                raise InvalidArgument("hashlock", "already used by another session: draw a new secret for every swap")
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(self._k("session", record.session_id), record.model_dump_json())
            pipe.xadd(self._k("updates", record.session_id), {"v": record.version, "pb": snapshot})
            pipe.sadd(self._k("active"), record.session_id)
            pipe.sadd(self._k("active", record.maker), record.session_id)
            listings = [self._k("all"), self._k("maker", record.maker)]
            if record.tenant:
                pipe.sadd(self._k("tenant-active", record.tenant), record.session_id)
                pipe.sadd(self._k("tenant-active", record.tenant, record.maker), record.session_id)
                listings += [self._k("tenant", record.tenant), self._k("tenant-maker", record.tenant, record.maker)]
            for listing in listings:
                # Newest first by creation; members past the retention are gone (their records expired).
                pipe.zadd(listing, {record.session_id: record.created_at})
                pipe.zremrangebyscore(listing, "-inf", record.created_at - self._retention_s)
                pipe.expire(listing, self._retention_s)
            if record.src.lock_id:
                pipe.hset(self._k("locks", record.src.chain), record.src.lock_id.lower(), record.session_id)
            await pipe.execute()
        if record.src.lock_id:
            self._remember_lock(record.src.chain, record.src.lock_id, record.session_id)
        return record

    async def get(self, session_id: str) -> SessionRecord | None:
        raw = await self._r.get(self._k("session", session_id))
        return SessionRecord.model_validate_json(raw) if raw is not None else None

    async def save(self, record: SessionRecord, snapshot: bytes) -> None:
        """Writes `record` (whose version the caller bumped by one) if nobody wrote in between."""
        key = self._k("session", record.session_id)
        async with self._r.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                raw = await pipe.get(key)
                stored = SessionRecord.model_validate_json(raw) if raw is not None else None
                if stored is None or stored.version != record.version - 1:
                    raise VersionConflict(record.session_id)
                pipe.multi()
                pipe.set(key, record.model_dump_json())
                pipe.xadd(self._k("updates", record.session_id), {"v": record.version, "pb": snapshot})
                if record.state in TERMINAL:
                    # In the same transaction as the end itself: whoever sees the end sees the expiries.
                    pipe.expire(key, self._retention_s)
                    pipe.expire(self._k("updates", record.session_id), self._retention_s)
                    pipe.expire(self._k("epoch", record.session_id), _ENDED_EPOCH_TTL_S)
                    pipe.srem(self._k("active"), record.session_id)
                    pipe.srem(self._k("active", record.maker), record.session_id)
                    if record.tenant:
                        pipe.srem(self._k("tenant-active", record.tenant), record.session_id)
                        pipe.srem(self._k("tenant-active", record.tenant, record.maker), record.session_id)
                await pipe.execute()
            except WatchError:
                raise VersionConflict(record.session_id) from None

    # -- leases: one replica drives a session at a time ----------------------------------------------

    async def acquire_lease(self, session_id: str, owner: str, ttl_ms: int) -> int:
        """The new lease epoch (> 0), or 0 when another replica holds the lease."""
        keys = (self._k("lease", session_id), self._k("epoch", session_id))
        return int(await self._r.eval(_ACQUIRE, 2, *keys, owner, ttl_ms))

    async def renew_lease(self, session_id: str, owner: str, ttl_ms: int) -> bool:
        return bool(await self._r.eval(_RENEW, 1, self._k("lease", session_id), owner, ttl_ms))

    async def release_lease(self, session_id: str, owner: str) -> None:
        await self._r.eval(_RELEASE, 1, self._k("lease", session_id), owner)

    # -- what wakes a session: its locks' events and its deadlines ----------------------------------

    def _remember_lock(self, chain: str, lock_id: str, session_id: str) -> None:
        self._lock_sessions[(chain, lock_id.lower())] = session_id
        if len(self._lock_sessions) > _LOCK_CACHE_SIZE:
            self._lock_sessions.popitem(last=False)

    async def index_lock(self, chain: str, lock_id: str, session_id: str) -> None:
        await self._r.hset(self._k("locks", chain), lock_id.lower(), session_id)
        self._remember_lock(chain, lock_id, session_id)

    async def session_of_lock(self, chain: str, lock_id: str) -> str | None:
        known = self._lock_sessions.get((chain, lock_id.lower()))
        if known is not None:
            return known
        value = await self._r.hget(self._k("locks", chain), lock_id.lower())
        if value is None:
            return None
        self._remember_lock(chain, lock_id, value.decode())
        return str(value.decode())

    async def forget_locks(self, record: SessionRecord) -> None:
        """An ended session's locks wake nothing any more."""
        async with self._r.pipeline(transaction=False) as pipe:
            for leg in (record.src, record.dst):
                if leg.lock_id:
                    pipe.hdel(self._k("locks", leg.chain), leg.lock_id.lower())
                    self._lock_sessions.pop((leg.chain, leg.lock_id.lower()), None)
                pipe.zrem(self._k("deadlines", leg.chain), record.session_id)
            pipe.expire(self._k("epoch", record.session_id), _ENDED_EPOCH_TTL_S)
            await pipe.execute()

    async def schedule(self, chain: str, at: int, session_id: str) -> None:
        """Wake `session_id` once `chain`'s time reaches `at` (the earliest wins when set twice)."""
        await self._r.zadd(self._k("deadlines", chain), {session_id: at}, lt=True)

    async def due(self, chain: str, chain_time: int) -> list[str]:
        ids = await self._r.eval(_DUE, 1, self._k("deadlines", chain), chain_time)
        return [i.decode() for i in ids]

    async def cursor(self, owner: str, chain: str) -> str:
        value = await self._r.get(self._k("cursor", owner, chain))
        return value.decode() if value is not None else ""

    async def save_cursor(self, owner: str, chain: str, cursor: str) -> None:
        # A replica id that never comes back (a test, a scaled-down pod) leaves nothing behind for long.
        await self._r.set(self._k("cursor", owner, chain), cursor, ex=_CURSOR_TTL_S)

    async def active_ids(self) -> list[str]:
        return sorted(m.decode() for m in await self._r.smembers(self._k("active")))

    async def count_active(self, maker: str | None = None, tenant: str = "") -> int:
        if tenant:
            key = self._k("tenant-active", tenant, maker) if maker else self._k("tenant-active", tenant)
        else:
            key = self._k("active", maker) if maker else self._k("active")
        return int(await self._r.scard(key))

    async def list_ids(
        self, maker: str | None, after: tuple[float, str] | None, limit: int, tenant: str = ""
    ) -> list[tuple[str, float]]:
        """(id, created_at) newest first, strictly after the item `after` names (None: from the newest): all
        sessions, or one tenant's (and of one maker). Sessions created meanwhile never shift a page."""
        if tenant:
            key = self._k("tenant-maker", tenant, maker) if maker else self._k("tenant", tenant)
        else:
            key = self._k("maker", maker) if maker else self._k("all")
        top: float | str = "+inf" if after is None else after[0]
        found: list[tuple[str, float]] = []
        skip = 0
        while len(found) < limit:
            # Equal creation times come in reverse id order; those at or before `after` were on earlier pages.
            batch = await self._r.zrevrangebyscore(key, top, "-inf", start=skip, num=limit + 16, withscores=True)
            if not batch:
                break
            skip += len(batch)
            for raw, score in batch:
                sid = raw.decode()
                if after is not None and score == after[0] and sid >= after[1]:
                    continue
                found.append((sid, float(score)))
        return found[:limit]
