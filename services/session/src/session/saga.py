"""The imperative shell around the safety kernel: gather facts, decide, act, persist, repeat.

One pass reads the record, gathers the facts of both legs (each known lock from its chain service,
each chain's time from the head ticks of the event streams, or from GetChainInfo when none is fresh),
asks `kernel.decide` for the one next step and carries it out:
- Move: persist the transition (and, for the reveal, that the secret is exposed) in one write;
- Send: persist what is about to be broadcast (lock ids, send times), then call the chain service with
  the lease's fencing token; the reply is the freshest fact about that lock;
- Wait / Halt: put the wake-up time in the deadline schedule and sleep until an event on one of the
  session's locks, that time, or the reconciliation sweep.

Locks are read again only when an event named them, an action changed them, or the sweep asks: the
reads the kernel needs, not a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from swap.chain.v1 import chain_pb2
from swap.common.v1 import common_pb2
from swap_runtime import context
from swap_runtime.errors import DomainError, Unavailable
from swap_runtime.logs import redact
from swap_runtime.tracing import resumed

from session import kernel
from session.chains import Chain, ChainUnreachable, Fence
from session.kernel import Action, Decision, Facts, Halt, LockState, Move, Send, Side, Wait
from session.metrics import EVENT_TO_ACTION, SAGA_HALTS, SESSIONS_ENDED, STEP_DURATION, SWAP_DURATION
from session.model import SecretMode, SessionRecord, Step
from session.secrets import SecretBox
from session.states import TERMINAL, State, check
from session.store import SessionStore
from session.views import quote_of, snapshot, source_terms

log = logging.getLogger(__name__)
S = State


@dataclass(frozen=True)
class SagaSettings:
    retry_delay_s: float  # after a failed step, before the next try
    sweep_interval_s: float = 30.0  # a waiting session re-reads its facts at least this often
    clock_skew_s: int = 2  # how far apart the two chains' clocks may be
    head_stale_s: float = 3.0  # a head tick older than this is replaced by a GetChainInfo read
    # A chain service unreachable from this replica for this long (the service never answered, as opposed to
    # answering that its chain is down): the session is left to another replica, which may reach it, instead
    # of being held here, unable to act, for as long as the fault lasts.
    handoff_after_s: float = 60.0


class HandOff(Exception):
    """This replica has not reached a chain service for `handoff_after_s`: another replica should drive."""


def auction_amount(auction_start: int, duration_s: int, start_amount: int, end_amount: int, now: int) -> int:
    """The Dutch auction's destination amount at `now`: linear from start to end over the duration,
    rounded down like the quote service rounds it (what the receiver gets never rounds up)."""
    if duration_s <= 0 or now >= auction_start + duration_s:
        return end_amount
    remaining = min(auction_start + duration_s - now, duration_s)
    return end_amount + (start_amount - end_amount) * remaining // duration_s


def dst_salt(session_id: str) -> str:
    """The destination lock's salt: 24 bytes of a hash, so its decimal form fits NEAR's 64-char nonces."""
    return str(int.from_bytes(hashlib.sha256(f"dst:{session_id}".encode()).digest()[:24], "big"))


class Heads:
    """The newest head tick of each chain, from the runner's event streams."""

    def __init__(self) -> None:
        self._heads: dict[str, tuple[int, float]] = {}

    def update(self, chain: str, chain_time: int) -> None:
        known = self._heads.get(chain)
        if known is None or chain_time >= known[0]:
            self._heads[chain] = (chain_time, time.monotonic())

    def get(self, chain: str) -> tuple[int, float] | None:
        """(chain time, seconds since it was seen), or None before the first tick."""
        known = self._heads.get(chain)
        return None if known is None else (known[0], time.monotonic() - known[1])


@dataclass
class Lease:
    """A replica's hold on one session while it drives it: the fencing epoch, the wake-up signal that
    events and deadlines set, and the flag the lease keeper sets when the hold is lost."""

    epoch: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    locks: dict[str, chain_pb2.Lock] = field(default_factory=dict)  # lock id -> last read
    known_at: dict[str, float] = field(default_factory=dict)  # lock id -> when its fact was read or learned
    # lock id -> events seen on it: a read that an event overtook is not kept (the event may be newer).
    generations: dict[str, int] = field(default_factory=dict)
    woken_at: float | None = None
    waiting: str = ""  # what the session last waited for (logged when it changes)

    def generation(self, lock_id: str) -> int:
        return self.generations.get(lock_id, 0)

    def remember(self, lock_id: str, lock: chain_pb2.Lock, generation: int) -> None:
        if self.generation(lock_id) == generation:
            self.know(lock_id, lock)

    def know(self, lock_id: str, lock: chain_pb2.Lock) -> None:
        self.locks[lock_id] = lock
        self.known_at[lock_id] = time.monotonic()

    def fact(self, lock_id: str, max_age_s: float) -> chain_pb2.Lock | None:
        """What is known of a lock, unless it is older than `max_age_s`: however often a session is woken,
        a missed event cannot keep a stale fact alive longer than that."""
        lock = self.locks.get(lock_id)
        if lock is not None and time.monotonic() - self.known_at.get(lock_id, 0.0) <= max_age_s:
            return lock
        return None

    def forget(self) -> None:
        """Every lock is read again on the next pass."""
        self.locks.clear()
        self.known_at.clear()

    def poke(self, lock_id: str | None = None) -> None:
        """Something happened: an event on `lock_id` (that lock is read again), or a deadline came or the
        maker recorded an intent (nothing on chain changed: no lock is read again)."""
        if lock_id is not None:
            self.locks.pop(lock_id, None)
            self.generations[lock_id] = self.generation(lock_id) + 1
        if self.woken_at is None:
            self.woken_at = time.monotonic()
        self.wake.set()

    def learn(self, event: chain_pb2.ChainEvent) -> None:
        """An event at confirmation depth is a chain fact as fresh as a read: keep what it says of its
        lock, so the pass it wakes needs no read. A retraction (reorg) or an event about a lock not known
        here makes the lock be read again."""
        lock_id = event.lock_id
        known = self.locks.get(lock_id)
        self.poke(lock_id)
        if event.removed:
            return
        if event.kind == chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED:
            if known is not None and known.state not in {chain_pb2.LOCK_STATE_ABSENT, chain_pb2.LOCK_STATE_ACTIVE}:
                self.know(lock_id, known)  # an old event replayed: the lock is further along already
                return
            lock = chain_pb2.Lock()
            lock.CopyFrom(event.lock)
            lock.lock_id, lock.state, lock.final = lock_id, chain_pb2.LOCK_STATE_ACTIVE, True
            lock.confirmations = event.confirmations
            lock.created.CopyFrom(event.tx)
            self.know(lock_id, lock)
            return
        closing = {
            chain_pb2.CHAIN_EVENT_KIND_LOCK_WITHDRAWN: chain_pb2.LOCK_STATE_WITHDRAWN,
            chain_pb2.CHAIN_EVENT_KIND_LOCK_CANCELLED: chain_pb2.LOCK_STATE_CANCELLED,
        }.get(event.kind)
        if closing is None or known is None or known.state == chain_pb2.LOCK_STATE_ABSENT:
            return
        lock = chain_pb2.Lock()
        lock.CopyFrom(known)
        lock.state = closing
        lock.closed.CopyFrom(event.tx)
        lock.closed_confirmations = event.confirmations
        if event.secret:
            lock.secret = event.secret
        self.know(lock_id, lock)

    def lose(self) -> None:
        """The hold is lost: the saga stops before its next send (a sleeping one wakes to see it)."""
        self.lost.set()
        self.wake.set()

    async def sleep(self, seconds: float) -> None:
        """Until woken (an event, a deadline, the lease lost) or `seconds` pass. The session's own task waits
        on the event itself: nothing else is made per sleeping session."""
        if not self.wake.is_set() and not self.lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(seconds, 0)):
                    await self.wake.wait()
        self.wake.clear()

    def fence(self, session_id: str) -> Fence | None:
        return (session_id, self.epoch) if self.epoch else None


@dataclass(frozen=True)
class ChainStatics:
    resolver: str
    inclusion_s: int
    confirmations: int


Schedule = Callable[[str, int, str], Awaitable[None]]  # (chain, chain time, session id)


class Saga:
    def __init__(
        self,
        store: SessionStore,
        chains: Mapping[str, Chain],
        box: SecretBox,
        settings: SagaSettings,
        heads: Heads | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        self._store = store
        self._chains = chains
        self._box = box
        self._settings = settings
        self._heads = heads or Heads()
        self._schedule = schedule
        self._chain_statics: dict[str, ChainStatics] = {}
        # Steps (transactions sent) not yet persisted: they ride on the session's next write, so a send
        # costs no write of its own; only their display is lost if the replica dies before that write.
        self._unsaved: dict[str, list[Step]] = {}
        self._clock: Callable[[], float] = time.time

    # -- persistence ---------------------------------------------------------------------------------

    async def move(self, record: SessionRecord, to: State, note: str = "", chain: str = "", tx: str = "") -> None:
        check(record.state, to)
        now = self._clock()
        leaving = record.state
        since = record.steps[-1].at if record.steps else record.created_at
        record.version += 1
        record.state = to
        record.updated_at = now
        record.alert = ""
        record.steps.append(Step(state=to, at=now, chain=chain, tx_hash=tx, note=note))
        if to in TERMINAL:
            # An ended session never needs its secret again: it is public (completed) or must never be.
            record.sealed_secret = ""
        await self._store.save(record, snapshot(record))
        self._unsaved.pop(record.session_id, None)
        STEP_DURATION.labels(leaving.value).observe(max(now - since, 0))
        if to in TERMINAL:
            SESSIONS_ENDED.labels(to.value, record.error_reason).inc()
            SWAP_DURATION.labels(to.value).observe(max(now - record.created_at, 0))
        log.info("session moved", extra={"state": to.value, "note": note, "tx_hash": tx})

    async def touch(self, record: SessionRecord) -> None:
        """Persists field changes without a transition (intents, lock ids, send times) before acting."""
        record.version += 1
        record.updated_at = self._clock()
        await self._store.save(record, snapshot(record))
        self._unsaved.pop(record.session_id, None)

    # -- the loop ------------------------------------------------------------------------------------

    async def run(self, session_id: str, lease: Lease | None = None) -> None:
        """Drives one session until it ends or the lease is lost."""
        context.session_id.set(session_id)
        lease = lease or Lease()
        last: Decision | None = None
        unreachable_since: float | None = None
        while not lease.lost.is_set():
            record = await self._store.get(session_id)
            if record is None or record.state in TERMINAL:
                return
            try:
                decision = await self.advance(record, lease)
                unreachable_since = None
            except DomainError as err:
                if err.reason == "STALE_FENCE":
                    log.warning("a newer replica drives this session; stopping")
                    return
                if isinstance(err, ChainUnreachable):
                    # Not the chain's outage (no replica could help): this replica's link to its service.
                    unreachable_since = unreachable_since or time.monotonic()
                    if time.monotonic() - unreachable_since >= self._settings.handoff_after_s:
                        log.warning("a chain service is unreachable from here; leaving the session to another replica")
                        raise HandOff(session_id) from None
                else:
                    unreachable_since = None
                # The chain's own words (a revert reason, "too early"), calldata redacted.
                log.warning(
                    "step failed, will retry",
                    extra={"state": record.state.value, "reason": err.reason, "error": redact(err.message)},
                )
                lease.forget()
                await lease.sleep(self._settings.retry_delay_s)
                continue
            if isinstance(decision, Wait | Halt):
                pause = await self._pause(record, decision)
                # A session can wait for hours (the maker's signature, a timelock); its record is read again
                # when it wakes, so none is held meanwhile.
                del record
                await self._sleep(pause, lease)
            elif isinstance(decision, Send) and (decision == last or decision.action is Action.PAY_RECEIVER):
                # The same send twice in a row: the chain has not caught up with the last one yet.
                await lease.sleep(self._settings.retry_delay_s)
            last = decision

    async def _pause(self, record: SessionRecord, decision: Wait | Halt) -> tuple[float, bool]:
        """How long to wait for `decision` (at most until the sweep; a wake-up comes sooner) and whether an
        event stream is down; schedules the wake-up at a timelock the decision waits for."""
        timeout = self._settings.sweep_interval_s
        if isinstance(decision, Wait) and decision.until is not None:
            side, at = decision.until
            chain = record.src.chain if side is Side.SRC else record.dst.chain
            if self._schedule is not None:
                await self._schedule(chain, at, record.session_id)
            head = self._heads.get(chain)
            if head is not None:
                # Chain time runs with wall time between blocks; the tick of the block that reaches `at`
                # normally wakes the session first.
                timeout = min(timeout, max(at - head[0] - head[1], 0) + 1.0)
            else:
                timeout = min(timeout, self._settings.retry_delay_s * 5)
        elif self._schedule is None:
            # No event streams (a unit test or a lone saga): fall back to a short pause.
            timeout = min(timeout, self._settings.retry_delay_s * 5)
        blind = not self._streams_fresh(record)
        if blind:
            # An event stream is down (its head ticks stopped): look again soon rather than at the sweep.
            timeout = min(timeout, max(self._settings.retry_delay_s, 1.0))
        return timeout, blind

    async def _sleep(self, pause: tuple[float, bool], lease: Lease) -> None:
        timeout, blind = pause
        await lease.sleep(timeout)
        if lease.woken_at is None and (blind or timeout >= self._settings.sweep_interval_s):
            lease.forget()  # a sweep, or no events to tell what changed: read everything again

    def _streams_fresh(self, record: SessionRecord) -> bool:
        for chain in (record.src.chain, record.dst.chain):
            head = self._heads.get(chain)
            if head is None or head[1] > self._settings.head_stale_s:
                return False
        return True

    async def advance(self, record: SessionRecord, lease: Lease | None = None) -> Decision:
        """One pass: gather the facts, decide, carry the decision out. Returns the decision."""
        lease = lease or Lease()
        if record.state in TERMINAL:
            return Wait("ended")
        for step in self._unsaved.get(record.session_id, []):
            if step not in record.steps:
                record.steps.append(step)
        with resumed(record.trace_parent, f"saga {record.state.value}"):
            facts = await self.facts(record, lease)
            # Shown to the maker as when each refund window opens; saved with the session's next write.
            for leg, lock in ((record.src, facts.src), (record.dst, facts.dst)):
                if lock.cancellation_at:
                    leg.cancellation_at = lock.cancellation_at
            if (
                not record.secret_public
                and record.sealed_secret
                and LockState.WITHDRAWN in {facts.src.state, facts.dst.state}
            ):
                # On chain now: it may be shown (it is saved with the session's next write).
                record.secret_public = self._secret(record).hex()
            decision = kernel.decide(facts)
            if isinstance(decision, Move):
                await self._move(record, decision, facts, lease)
            elif isinstance(decision, Send):
                if lease.woken_at is not None:
                    EVENT_TO_ACTION.observe(time.monotonic() - lease.woken_at)
                    lease.woken_at = None
                await self._send(record, decision.action, facts, lease)
            elif isinstance(decision, Halt):
                await self._halt(record, decision)
            else:
                lease.woken_at = None
                if decision.why != lease.waiting:
                    # One line per change of what it waits for: a session that never ends says why.
                    log.info("session waits", extra={"state": record.state.value, "why": decision.why})
            lease.waiting = decision.why if isinstance(decision, Wait) else ""
        return decision

    async def _move(self, record: SessionRecord, decision: Move, facts: Facts, lease: Lease) -> None:
        if decision.reason:
            record.error_reason, record.error_message = decision.reason, decision.note
        if decision.expose:
            record.secret_exposed = True
        if decision.to is S.AWAITING_SECRET:
            record.secret_deadline = kernel.secret_deadline_on_destination(facts)
        if decision.to is S.SOURCE_LOCKING and not record.maker_submits_source and not record.src_sent_at:
            # The order is submitted right after this move; the kernel only asks whether it ever was. Until
            # now nothing could be at its id (only the resolver submits it): no need to read it first.
            record.src_sent_at = facts.src_chain.now
            if record.src.lock_id not in lease.locks:
                lease.know(
                    record.src.lock_id, chain_pb2.Lock(lock_id=record.src.lock_id, state=chain_pb2.LOCK_STATE_ABSENT)
                )
        await self.move(record, decision.to, note=decision.note)
        if decision.to in TERMINAL:
            await self._store.forget_locks(record)

    async def _halt(self, record: SessionRecord, decision: Halt) -> None:
        if record.alert == decision.alert:
            return
        record.alert = decision.alert
        await self.touch(record)
        SAGA_HALTS.labels(decision.alert).inc()
        log.error("saga halted: an operator must look", extra={"alert": decision.alert, "problem": decision.message})

    # -- facts ---------------------------------------------------------------------------------------

    def _src(self, record: SessionRecord) -> Chain:
        return self._chains[record.src.chain]

    def _dst(self, record: SessionRecord) -> Chain:
        return self._chains[record.dst.chain]

    async def statics(self, chain: Chain) -> ChainStatics:
        known = self._chain_statics.get(chain.name)
        if known is None:
            info = await chain.info()
            known = ChainStatics(info.resolver, int(info.inclusion_bound_s), int(info.confirmations))
            self._chain_statics[chain.name] = known
            self._heads.update(chain.name, int(info.chain_time))
        return known

    async def _now(self, chain: Chain) -> tuple[int, float]:
        """The chain's time and how stale it may be, seconds."""
        head = self._heads.get(chain.name)
        if head is not None and head[1] <= self._settings.head_stale_s:
            return head
        info = await chain.info()
        self._heads.update(chain.name, int(info.chain_time))
        return int(info.chain_time), 0.0

    async def _lock(self, chain: Chain, lock_id: str, lease: Lease) -> chain_pb2.Lock:
        cached = lease.fact(lock_id, self._settings.sweep_interval_s)
        if cached is None:
            generation = lease.generation(lock_id)
            cached = await chain.get_lock(lock_id)
            lease.remember(lock_id, cached, generation)
            log.debug("lock read", extra={"chain": chain.name, "lock_state": int(cached.state), "final": cached.final})
        return cached

    async def facts(self, record: SessionRecord, lease: Lease) -> Facts:
        src, dst = self._src(record), self._dst(record)
        src_statics, dst_statics = await asyncio.gather(self.statics(src), self.statics(dst))
        (src_now, src_age), (dst_now, dst_age) = await asyncio.gather(self._now(src), self._now(dst))
        absent = chain_pb2.Lock(state=chain_pb2.LOCK_STATE_ABSENT)

        async def read(chain: Chain, lock_id: str) -> chain_pb2.Lock:
            return await self._lock(chain, lock_id, lease) if lock_id else absent

        # Only the resolver can make a lock at the resolver's ids (the order names it; the destination id
        # derives from it): before the saga sent one, there is nothing to read.
        src_id = record.src.lock_id if record.maker_submits_source or record.src_sent_at else ""
        dst_id = record.dst.lock_id if record.dst_sent_at else ""
        src_lock, dst_lock = await asyncio.gather(read(src, src_id), read(dst, dst_id))
        self._learn_secret(record, src_lock, dst_lock)
        plan = quote_of(record).timelocks
        terms = kernel.Terms(
            hashlock=record.hashlock,
            maker=record.maker,
            receiver=record.receiver,
            src_token=record.src.token,
            src_amount=record.src.amount,
            dst_token=record.dst.token,
            src_timelocks=_timelocks(plan.src),
            dst_timelocks=_timelocks(plan.dst),
            reveal_margin_s=plan.reveal_margin_s,
            order_deadline=record.order_deadline,
            maker_submits_source=record.maker_submits_source,
            maker_holds_secret=record.secret_mode is SecretMode.MAKER,
        )
        memory = kernel.Memory(
            state=record.state,
            executed=record.execute_requested,
            cancel_requested=record.cancel_requested,
            quote_expired=record.quote_expired,
            dst_amount=record.dst.amount,
            dst_lock_id=record.dst.lock_id,
            src_sent_at=record.src_sent_at,
            src_rejected=record.src_rejected,
            dst_sent_at=record.dst_sent_at,
            dst_rejected=record.dst_rejected,
            secret_exposed=record.secret_exposed,
            secret_known=bool(record.sealed_secret),
            receiver_paid_directly=record.receiver_paid_directly,
        )
        return Facts(
            terms=terms,
            memory=memory,
            src_chain=kernel.ChainFact(src_now, src_statics.inclusion_s, src_statics.resolver),
            dst_chain=kernel.ChainFact(dst_now, dst_statics.inclusion_s, dst_statics.resolver),
            src=lock_fact(src_lock, src_statics.confirmations),
            dst=lock_fact(dst_lock, dst_statics.confirmations),
            skew_s=self._settings.clock_skew_s + math.ceil(max(src_age, dst_age)),
        )

    def _learn_secret(self, record: SessionRecord, *locks: chain_pb2.Lock) -> None:
        """A secret the maker held that is now on chain (the maker withdrew a lock with it) is the service's
        too: sealed like a drawn one, saved with the session's next write."""
        if record.sealed_secret:
            return
        for lock in locks:
            if lock.state == chain_pb2.LOCK_STATE_WITHDRAWN and hashlib.sha256(lock.secret).hexdigest() == (
                record.hashlock.lower()
            ):
                record.sealed_secret = self._box.seal(record.session_id, bytes(lock.secret))
                log.info("the maker's secret appeared on chain")
                return

    # -- actions -------------------------------------------------------------------------------------

    async def _send(self, record: SessionRecord, action: Action, facts: Facts, lease: Lease) -> None:
        fence = lease.fence(record.session_id)
        src, dst = self._src(record), self._dst(record)
        if action is Action.SUBMIT_SOURCE:
            await self._submit_source(record, facts, lease, fence)
        elif action is Action.PREPARE_DESTINATION:
            await self._prepare_destination(record)
        elif action is Action.LOCK_DESTINATION:
            await self._lock_destination(record, facts, lease, fence)
        elif action is Action.WITHDRAW_DESTINATION:
            secret = self._secret(record)
            done = await self._closing(dst, record.dst.lock_id, lease, dst.withdraw(record.dst.lock_id, secret, fence))
            self._step(record, record.dst.chain, done.tx.tx_hash, "destination withdrawn to the receiver")
        elif action is Action.WITHDRAW_SOURCE:
            secret = self._secret(record)
            done = await self._closing(src, record.src.lock_id, lease, src.withdraw(record.src.lock_id, secret, fence))
            self._step(record, record.src.chain, done.tx.tx_hash, "source withdrawn to the resolver")
        elif action is Action.CANCEL_DESTINATION:
            done_c = await self._closing(dst, record.dst.lock_id, lease, dst.cancel(record.dst.lock_id, fence))
            self._step(record, record.dst.chain, done_c.tx.tx_hash, "destination lock refunded to the resolver")
        elif action is Action.CANCEL_SOURCE:
            done_cs = await self._closing(src, record.src.lock_id, lease, src.cancel(record.src.lock_id, fence))
            self._step(record, record.src.chain, done_cs.tx.tx_hash, "source lock refunded to the maker")
        elif action is Action.PAY_RECEIVER:
            await self._pay_receiver(record)

    def _secret(self, record: SessionRecord) -> bytes:
        return self._box.open(record.session_id, record.sealed_secret)

    async def _closing(
        self,
        chain: Chain,
        lock_id: str,
        lease: Lease,
        call: Awaitable[chain_pb2.WithdrawResponse | chain_pb2.CancelResponse],
    ) -> chain_pb2.WithdrawResponse | chain_pb2.CancelResponse:
        generation = lease.generation(lock_id)
        try:
            done = await call
        except DomainError:
            lease.locks.pop(lock_id, None)  # a revert or a lost reply: read the lock again before deciding
            raise
        lease.remember(lock_id, done.lock, generation)
        return done

    def _step(self, record: SessionRecord, chain: str, tx_hash: str, note: str) -> None:
        step = Step(state=record.state, at=self._clock(), chain=chain, tx_hash=tx_hash, note=note)
        record.steps.append(step)
        self._unsaved.setdefault(record.session_id, []).append(step)

    async def _submit_source(self, record: SessionRecord, facts: Facts, lease: Lease, fence: Fence | None) -> None:
        src = self._src(record)
        if not record.src_sent_at:
            record.src_sent_at = facts.src_chain.now
            await self.touch(record)
        generation = lease.generation(record.src.lock_id)
        try:
            created = await src.create_lock(self._maker_order(record), fence)
        except DomainError as err:
            lease.locks.pop(record.src.lock_id, None)
            if err.reason in {"CHAIN_UNAVAILABLE", "STALE_FENCE"}:
                raise
            if (await self._lock(src, record.src.lock_id, lease)).state == chain_pb2.LOCK_STATE_ABSENT:
                record.src_rejected = True
                record.error_message = err.message
                await self.touch(record)
            return
        lease.remember(record.src.lock_id, created.lock, generation)
        if created.sent:
            self._step(record, record.src.chain, created.lock.created.tx_hash, "maker's order submitted")

    async def _prepare_destination(self, record: SessionRecord) -> None:
        """Rule g: the amount, salt and lock id are persisted before the lock is ever sent."""
        quote = quote_of(record)
        a = quote.auction
        amount = auction_amount(a.start_time, a.duration_s, int(a.start_amount), int(a.end_amount), int(self._clock()))
        record.dst.amount = str(max(amount, int(quote.min_received)))
        record.dst.salt = dst_salt(record.session_id)
        request = self._dst_request(record)
        request.dry_run = True
        planned = await self._dst(record).create_lock(request)
        record.dst.lock_id = planned.lock.lock_id
        await self._store.index_lock(record.dst.chain, record.dst.lock_id, record.session_id)
        await self.touch(record)

    async def _lock_destination(self, record: SessionRecord, facts: Facts, lease: Lease, fence: Fence | None) -> None:
        dst = self._dst(record)
        if record.dst_sent_at != facts.dst_chain.now:
            # The latest send: a resend may land up to the inclusion bound after it.
            record.dst_sent_at = facts.dst_chain.now
            await self.touch(record)
        generation = lease.generation(record.dst.lock_id)
        try:
            created = await dst.create_lock(self._dst_request(record), fence)
        except DomainError as err:
            lease.locks.pop(record.dst.lock_id, None)
            if err.reason in {"CHAIN_UNAVAILABLE", "STALE_FENCE"}:
                raise
            if (await self._lock(dst, record.dst.lock_id, lease)).state == chain_pb2.LOCK_STATE_ABSENT:
                record.dst_rejected = True
                record.error_message = err.message
                await self.touch(record)
            return
        if created.lock.lock_id != record.dst.lock_id:
            raise Unavailable(f"{dst.name} created lock {created.lock.lock_id}, planned {record.dst.lock_id}")
        lease.remember(record.dst.lock_id, created.lock, generation)
        if created.sent:
            self._step(record, record.dst.chain, created.lock.created.tx_hash, f"locked {record.dst.amount}")

    async def _pay_receiver(self, record: SessionRecord) -> None:
        # Never twice: once started, only an operator can tell whether a payment went out.
        if not record.paying_receiver:
            record.paying_receiver = True
            await self.touch(record)
        await self._halt(
            record,
            Halt(
                "PAY_RECEIVER",
                f"pay {record.dst.amount} of {record.dst.token} to {record.receiver} on {record.dst.chain}, "
                "then set receiver_paid_directly",
            ),
        )

    def _maker_order(self, record: SessionRecord) -> chain_pb2.CreateLockRequest:
        return chain_pb2.CreateLockRequest(
            terms=source_terms(record),
            maker_order=chain_pb2.MakerOrder(
                maker=record.maker,
                nonce=record.order_nonce,
                deadline=record.order_deadline,
                dst_terms_hash=bytes.fromhex(record.dst_terms_hash),
                signature=bytes.fromhex(record.signature),
            ),
        )

    def _dst_request(self, record: SessionRecord) -> chain_pb2.CreateLockRequest:
        quote = quote_of(record)
        return chain_pb2.CreateLockRequest(
            terms=chain_pb2.LockTerms(
                token=record.dst.token,
                amount=record.dst.amount,
                hashlock=bytes.fromhex(record.hashlock),
                timelocks=quote.timelocks.dst,
                beneficiary=record.receiver,
                safety_deposit=quote.dst_safety_deposit,
            ),
            resolver=chain_pb2.ResolverFunding(salt=record.dst.salt),
        )


def _timelocks(t: common_pb2.Timelocks) -> kernel.Timelocks:
    return kernel.Timelocks(
        t.withdrawal_after_s, t.public_withdrawal_after_s, t.cancellation_after_s, t.public_cancellation_after_s
    )


def lock_fact(lock: chain_pb2.Lock, confirmations: int) -> kernel.LockFact:
    """A chain service's Lock as the kernel sees it."""
    state = LockState(lock.state) if lock.state else LockState.ABSENT
    if state is LockState.ABSENT:
        return kernel.ABSENT_LOCK
    t = lock.terms
    return kernel.LockFact(
        state=state,
        final=lock.final,
        closed_final=state in {LockState.WITHDRAWN, LockState.CANCELLED} and lock.closed_confirmations >= confirmations,
        hashlock=t.hashlock.hex(),
        token=t.token,
        amount=t.amount,
        depositor=lock.depositor,
        beneficiary=t.beneficiary,
        operator=lock.operator,
        timelocks=_timelocks(t.timelocks),
        withdrawal_at=lock.withdrawal_at,
        cancellation_at=lock.cancellation_at,
    )
