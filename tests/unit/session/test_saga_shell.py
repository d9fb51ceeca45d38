"""The saga's shell around the kernel, with in-memory fakes of the ChainService contract and a real Redis:
what it persists before it sends, what it does when a send fails or its reply is lost, and the
adversarial cases that once lost money (destination locked too late, a reverted reveal, a destination
withdrawn while refunding, a lost CreateLock reply, a stale replica)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from session.chains import ChainUnreachable
from session.kernel import Wait
from session.model import Leg, SessionRecord
from session.runner import Runner
from session.saga import Lease, Saga, SagaSettings
from session.secrets import SecretBox, new_secret
from session.service import IdempotencyConflict, Sessions, check_plan, valid_cursor
from session.states import TERMINAL, State
from session.store import SessionStore
from session.views import snapshot
from swap.chain.v1 import chain_pb2
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap_runtime.errors import FailedPrecondition, Unavailable

MAKER = "0x" + "11" * 20
RESOLVER_BASE = "0x" + "22" * 20
RECEIVER = "bob.test.near"
PLAN = quote_pb2.TimelockPlan(
    src=common_pb2.Timelocks(
        withdrawal_after_s=2, public_withdrawal_after_s=60, cancellation_after_s=120, public_cancellation_after_s=180
    ),
    dst=common_pb2.Timelocks(
        withdrawal_after_s=1, public_withdrawal_after_s=40, cancellation_after_s=80, public_cancellation_after_s=100
    ),
    reveal_margin_s=10,
)
ACTIVE = chain_pb2.LOCK_STATE_ACTIVE
ABSENT = chain_pb2.LOCK_STATE_ABSENT
WITHDRAWN = chain_pb2.LOCK_STATE_WITHDRAWN
CANCELLED = chain_pb2.LOCK_STATE_CANCELLED


def copy(lock: chain_pb2.Lock) -> chain_pb2.Lock:
    out = chain_pb2.Lock()
    out.CopyFrom(lock)
    return out


class FakeChain:
    """The ChainService contract in memory: locks, a clock, fences, and hooks to fail a call."""

    def __init__(self, name: str, resolver: str) -> None:
        self.name = name
        self.resolver = resolver
        self.now = 10_000
        self.inclusion = 5
        self.locks: dict[str, chain_pb2.Lock] = {}
        self.sent: list[tuple[str, str]] = []  # (call, lock id) of every transaction sent
        self.fences: dict[str, int] = {}
        self.fail_next: dict[str, Exception] = {}
        self.lose_reply_of: set[str] = set()  # calls that land but whose reply is lost

    def _fence(self, fence: tuple[str, int] | None) -> None:
        if fence is None:
            return
        key, epoch = fence
        if epoch < self.fences.get(key, 0):
            raise FailedPrecondition("stale fence", reason="STALE_FENCE")
        self.fences[key] = epoch

    def _maybe_fail(self, call: str) -> None:
        if (err := self.fail_next.pop(call, None)) is not None:
            raise err

    async def info(self) -> chain_pb2.GetChainInfoResponse:
        return chain_pb2.GetChainInfoResponse(
            chain_time=self.now, resolver=self.resolver, confirmations=1, inclusion_bound_s=self.inclusion
        )

    async def prepare_maker_lock(self, request: Any) -> Any:
        raise AssertionError("not used")

    async def check_account(self, account: str) -> Any:
        raise AssertionError("not used")

    async def verify_maker_order(self, order: Any, signature: bytes) -> None:
        raise AssertionError("not used")

    def watch(self, cursor: str) -> Any:
        raise AssertionError("not used")

    async def get_lock(self, lock_id: str) -> chain_pb2.Lock:
        found = self.locks.get(lock_id)
        return chain_pb2.Lock(lock_id=lock_id, state=ABSENT) if found is None else copy(found)

    async def create_lock(
        self, request: chain_pb2.CreateLockRequest, fence: tuple[str, int] | None = None
    ) -> chain_pb2.CreateLockResponse:
        lock_id = f"{self.name}-lock-{request.resolver.salt}"
        if request.dry_run:
            return chain_pb2.CreateLockResponse(lock=await self.get_lock(lock_id))
        self._fence(fence)
        self._maybe_fail("create")
        if lock_id not in self.locks:
            self.sent.append(("create", lock_id))
            make_lock(self, lock_id, request.terms, depositor=self.resolver)
        if "create" in self.lose_reply_of:
            raise Unavailable(f"{self.name} service: DEADLINE_EXCEEDED", reason="CHAIN_UNAVAILABLE")
        return chain_pb2.CreateLockResponse(lock=await self.get_lock(lock_id), sent=True)

    async def withdraw(
        self, lock_id: str, secret: bytes, fence: tuple[str, int] | None = None
    ) -> chain_pb2.WithdrawResponse:
        self._fence(fence)
        lock = self.locks[lock_id]
        assert hashlib.sha256(secret).digest() == lock.terms.hashlock
        self.sent.append(("withdraw", lock_id))
        self._maybe_fail("withdraw")  # a revert after broadcast: the calldata (the secret) is public anyway
        lock.state, lock.secret, lock.closed_confirmations = WITHDRAWN, secret, 1
        return chain_pb2.WithdrawResponse(lock=copy(lock), tx=chain_pb2.TxRef(tx_hash="w"), sent=True)

    async def cancel(self, lock_id: str, fence: tuple[str, int] | None = None) -> chain_pb2.CancelResponse:
        self._fence(fence)
        lock = self.locks[lock_id]
        assert self.now >= lock.cancellation_at, "cancelled before its window"
        self.sent.append(("cancel", lock_id))
        lock.state, lock.closed_confirmations = CANCELLED, 1
        return chain_pb2.CancelResponse(lock=copy(lock), tx=chain_pb2.TxRef(tx_hash="c"), sent=True)


def make_lock(
    chain: FakeChain, lock_id: str, terms: chain_pb2.LockTerms, *, depositor: str, age: int = 5
) -> chain_pb2.Lock:
    at = chain.now - age
    t = terms.timelocks
    lock = chain_pb2.Lock(
        lock_id=lock_id,
        state=ACTIVE,
        depositor=depositor,
        operator=chain.resolver,
        terms=terms,
        locked_at=at,
        withdrawal_at=at + t.withdrawal_after_s,
        public_withdrawal_at=at + t.public_withdrawal_after_s,
        cancellation_at=at + t.cancellation_after_s,
        public_cancellation_at=at + t.public_cancellation_after_s,
        confirmations=3,
        final=True,
    )
    chain.locks[lock_id] = lock
    return lock


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[SessionStore]:
    s = SessionStore(aioredis.Redis.from_url(redis_url), redis_prefix)
    yield s
    await s.close()


class World:
    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.base = FakeChain("base", RESOLVER_BASE)
        self.near = FakeChain("near", "resolver.test.near")
        self.box = SecretBox(os.urandom(32))
        self.saga = Saga(
            store, {"base": self.base, "near": self.near}, self.box, SagaSettings(retry_delay_s=0.01, head_stale_s=0)
        )
        self.secret, self.hashlock = new_secret()
        quote = quote_pb2.Quote(quote_id="q", timelocks=PLAN, min_received="995", src_safety_deposit="0")
        quote.auction.end_amount = quote.auction.start_amount = "995"
        self.record = SessionRecord(
            session_id=os.urandom(8).hex(),
            state=State.SOURCE_LOCKED,
            src=Leg(chain="base", token="0x" + "33" * 20, amount="1000", lock_id="src-lock"),
            dst=Leg(chain="near", token="tusd.test.near"),
            maker=MAKER,
            receiver=RECEIVER,
            hashlock=self.hashlock.hex(),
            sealed_secret="",
            quote=base64.b64encode(quote.SerializeToString()).decode(),
            order_deadline=self.base.now + 600,
            src_sent_at=self.base.now - 5,  # the saga submitted the maker's order
            created_at=0,
            updated_at=0,
        )
        self.record.sealed_secret = self.box.seal(self.record.session_id, self.secret)

    async def start(self, src_age: int = 5) -> None:
        await self.store.create(self.record, snapshot(self.record))
        terms = chain_pb2.LockTerms(
            token=self.record.src.token,
            amount="1000",
            hashlock=self.hashlock,
            timelocks=PLAN.src,
            beneficiary=RESOLVER_BASE,
        )
        make_lock(self.base, "src-lock", terms, depositor=MAKER, age=src_age)

    async def run_until(self, *states: State, steps: int = 30, lease: Lease | None = None) -> list[Any]:
        decisions = []
        for _ in range(steps):
            if self.record.state in states:
                break
            decisions.append(await self.saga.advance(self.record, lease))
        return decisions

    def tick(self, seconds: int) -> None:
        self.base.now += seconds
        self.near.now += seconds


@pytest.fixture
async def world(store: SessionStore) -> World:
    return World(store)


async def test_a_swap_runs_from_the_source_lock_to_completed(world: World) -> None:
    await world.start()
    await world.run_until(State.BOTH_LOCKED)
    assert world.near.sent == [("create", world.record.dst.lock_id)]
    world.tick(2)  # past the destination's withdrawal opening
    await world.run_until(State.COMPLETED)
    assert world.record.state is State.COMPLETED
    assert world.near.sent[-1] == ("withdraw", world.record.dst.lock_id)
    assert world.base.sent == [("withdraw", "src-lock")]
    stored = await world.store.get(world.record.session_id)
    assert stored is not None and stored.state is State.COMPLETED and stored.secret_public == world.secret.hex()
    assert stored.sealed_secret == "", "an ended session keeps no secret"


async def test_destination_lock_id_is_persisted_before_the_lock_is_sent(world: World) -> None:
    """Rule g: a lost CreateLock reply still leaves the session knowing the lock, so it is refunded."""
    await world.start()
    world.near.lose_reply_of.add("create")
    world.base.now = world.base.locks["src-lock"].cancellation_at - 110
    await world.run_until(State.DESTINATION_LOCKING)
    planned = world.record.dst.lock_id
    assert planned and (await world.store.get(world.record.session_id)).dst.lock_id == planned  # type: ignore[union-attr]
    assert world.near.sent == []
    with pytest.raises(Unavailable):  # the lock lands, the reply is lost
        await world.saga.advance(world.record)
    assert world.near.sent == [("create", planned)]
    # The maker cancels; the saga refunds the lock it never heard back about, by its persisted id.
    world.record.cancel_requested = True
    await world.run_until(State.REFUNDING)
    world.tick(200)
    decisions = await world.run_until(State.REFUNDED)
    assert ("cancel", planned) in world.near.sent, decisions
    assert ("cancel", "src-lock") in world.base.sent
    assert world.record.state is State.REFUNDED


async def test_destination_is_not_locked_when_the_source_has_too_little_time_left(world: World) -> None:
    """Regression: the destination was once locked 1 s before the source's cancellation, after a stall."""
    await world.start(src_age=30)  # the saga was stalled: the source lock is 30 s old
    world.near.inclusion = 20
    await world.run_until(State.REFUNDING, State.BOTH_LOCKED)
    assert world.record.state is State.REFUNDING
    assert world.record.error_reason == "NO_TIME_FOR_DESTINATION"
    assert world.near.sent == [], "no destination lock was sent"


async def test_a_reverted_reveal_is_sent_again_and_the_receiver_is_paid(world: World) -> None:
    """Regression: a destination withdrawal that reverts after broadcast leaves the secret public; the
    saga records the exposure before sending, retries while the window is open, and never refunds."""
    await world.start()
    await world.run_until(State.BOTH_LOCKED)
    world.tick(2)
    world.near.fail_next["withdraw"] = FailedPrecondition("near: reverted", reason="CHAIN_REJECTED")
    await world.run_until(State.REVEALING_SECRET)
    stored = await world.store.get(world.record.session_id)
    assert stored is not None and stored.secret_exposed, "exposure persisted before the first broadcast"
    with pytest.raises(FailedPrecondition):
        await world.saga.advance(world.record)
    await world.run_until(State.COMPLETED)
    assert world.record.state is State.COMPLETED
    assert [c for c in world.near.sent if c[0] == "withdraw"] == [("withdraw", world.record.dst.lock_id)] * 2


async def test_a_destination_withdrawn_while_refunding_collects_the_source(world: World) -> None:
    """Regression: the destination read withdrawn (the secret leaked, or a reorg resurrected it) while the
    session refunded; the source once went back to the maker although the receiver was paid."""
    await world.start()
    await world.run_until(State.BOTH_LOCKED)
    world.record.cancel_requested = True
    await world.run_until(State.REFUNDING)
    dst = world.near.locks[world.record.dst.lock_id]
    dst.state, dst.secret, dst.closed_confirmations = WITHDRAWN, world.secret, 1  # a third party's withdrawal
    world.tick(2)
    await world.run_until(State.COMPLETED)
    assert world.record.state is State.COMPLETED
    assert ("withdraw", "src-lock") in world.base.sent
    assert not [c for c in world.base.sent if c[0] == "cancel"], "the source never goes back to the maker"


async def test_a_replica_with_a_stale_epoch_sends_nothing(world: World) -> None:
    """Rule h: the chain refuses a replica whose lease epoch is older than one it has seen."""
    await world.start()
    newer, stale = Lease(epoch=2), Lease(epoch=1)
    await world.run_until(State.DESTINATION_LOCKING, lease=newer)
    await world.saga.advance(world.record, newer)  # the newer replica locks: the chain sees epoch 2
    sent = list(world.near.sent)
    copy = await world.store.get(world.record.session_id)
    assert copy is not None
    world.near.locks.clear()  # as if the stale replica's view had the lock missing
    with pytest.raises(FailedPrecondition) as refused:
        await world.saga.advance(copy, stale)
    assert refused.value.reason == "STALE_FENCE"
    assert world.near.sent == sent


async def test_run_stops_when_the_chain_says_a_newer_replica_drives(world: World) -> None:
    await world.start()
    world.near.fences[world.record.session_id] = 5
    await world.run_until(State.DESTINATION_LOCKING, lease=Lease(epoch=3))
    await world.saga.run(world.record.session_id, Lease(epoch=3))  # returns instead of retrying forever
    assert world.near.sent == []


async def test_a_refused_destination_lock_refunds_the_source(world: World) -> None:
    """The destination chain refuses the lock (a simulation revert: nothing sent): the source goes back
    to the maker once its window opens, and no secret is ever exposed."""
    await world.start()
    world.near.fail_next["create"] = FailedPrecondition("near: not enough balance", reason="CHAIN_REJECTED")
    await world.run_until(State.REFUNDING)
    assert world.record.error_reason == "DESTINATION_LOCK_REJECTED"
    assert world.near.sent == [] and not world.record.secret_exposed
    world.tick(200)
    await world.run_until(State.REFUNDED)
    assert world.record.state is State.REFUNDED and world.base.sent == [("cancel", "src-lock")]


class _NoRunner:
    def wake(self, session_id: str, event: Any = None) -> None:
        pass


def _sessions(world: World) -> Sessions:
    return Sessions(
        world.store,
        {"base": world.base, "near": world.near},
        quotes=None,  # type: ignore[arg-type]
        box=world.box,
        saga=world.saga,
        runner=_NoRunner(),  # type: ignore[arg-type]
        order_deadline_s=600,
        max_active_per_maker=5,
        max_active_total=100,
    )


async def test_a_cancel_once_the_secret_is_exposed_is_refused(world: World) -> None:
    await world.start()
    await world.run_until(State.BOTH_LOCKED)
    world.tick(2)
    await world.run_until(State.REVEALING_SECRET)
    with pytest.raises(FailedPrecondition) as refused:
        await _sessions(world).cancel(world.record.session_id)
    assert refused.value.reason == "REVEALING"
    stored = await world.store.get(world.record.session_id)
    assert stored is not None and not stored.cancel_requested


async def test_a_cancel_records_the_intent_and_the_saga_acts_on_it(world: World) -> None:
    await world.start()
    replied = await _sessions(world).cancel(world.record.session_id)
    assert replied.state is State.SOURCE_LOCKED and replied.cancel_requested
    again = await _sessions(world).cancel(world.record.session_id)
    assert again.version == replied.version, "a repeated cancel changes nothing"
    world.record = replied
    await world.run_until(State.REFUNDING)
    assert world.record.state is State.REFUNDING and world.near.sent == []


@pytest.mark.parametrize(
    ("src_cancel", "dst_cancel", "margin", "problem"),
    [
        pytest.param(120, 80, 10, "", id="fits"),
        pytest.param(98, 80, 10, "source cancellation", id="no-room-for-rule-a"),
        pytest.param(120, 80, 4, "reveal margin", id="margin-below-inclusion"),
    ],
)
def test_plans_the_rules_could_not_keep_are_refused_at_create(
    src_cancel: int, dst_cancel: int, margin: int, problem: str
) -> None:
    plan = quote_pb2.TimelockPlan(
        src=common_pb2.Timelocks(cancellation_after_s=src_cancel),
        dst=common_pb2.Timelocks(cancellation_after_s=dst_cancel),
        reveal_margin_s=margin,
    )
    if not problem:
        check_plan(plan, 8, 8, skew_s=2)
        return
    with pytest.raises(FailedPrecondition) as refused:
        check_plan(plan, 8, 8, skew_s=2)
    assert refused.value.reason == "UNSAFE_TIMELOCKS" and problem in refused.value.message


async def test_a_session_woken_over_and_over_still_reads_its_locks_again(world: World) -> None:
    """A missed event must not keep a stale fact alive: however often a session is woken (head ticks,
    deadlines, other events), what it knows of a lock is read again once older than the sweep interval."""
    saga = Saga(
        world.store,
        {"base": world.base, "near": world.near},
        world.box,
        SagaSettings(retry_delay_s=0.01, head_stale_s=0, sweep_interval_s=0.3),
    )
    await world.start()
    lease = Lease()
    withdraw = world.base.withdraw

    async def not_final_yet(lock_id: str, secret: bytes, fence: Any = None) -> chain_pb2.WithdrawResponse:
        reply = await withdraw(lock_id, secret, fence)
        world.base.locks[lock_id].closed_confirmations = reply.lock.closed_confirmations = 0
        return reply

    world.base.withdraw = not_final_yet  # type: ignore[method-assign]
    for _ in range(30):
        if world.record.state is State.BOTH_LOCKED:
            world.tick(2)
        decision = await saga.advance(world.record, lease)
        if getattr(decision, "why", "") == "the withdrawals are not final yet":
            break
    assert world.base.sent == [("withdraw", "src-lock")], "the source was collected"
    world.base.locks["src-lock"].closed_confirmations = 3  # final now; its event never reaches this replica
    lease.poke()
    assert await saga.advance(world.record, lease) == Wait("the withdrawals are not final yet")
    assert world.record.state is State.REVEALING_SECRET
    await asyncio.sleep(0.35)
    lease.poke()  # woken again (a head tick): no pause long enough to count as a sweep ever came
    await saga.advance(world.record, lease)
    assert world.record.state.value == "completed"


async def test_a_lease_redis_could_not_give_is_taken_by_the_sweep(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis away when a replica tries to take a session's lease: nothing escapes the runner, and its
    sweep takes the session once Redis answers again and drives it to the end."""
    await world.start()
    acquire = world.store.acquire_lease
    refusals = 2

    async def redis_away(session_id: str, owner: str, ttl_ms: int) -> int:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise aioredis.ConnectionError("Connection refused")
        return await acquire(session_id, owner, ttl_ms)

    world.store.acquire_lease = redis_away  # type: ignore[method-assign]
    runner = Runner(world.saga, world.store, lease_ttl_s=0.4, sweep_interval_s=0.1)
    runner.spawn(world.record.session_id)
    await runner.resume_all()
    try:
        async with asyncio.timeout(10):
            while (
                stored := await world.store.get(world.record.session_id)
            ) is None or stored.state is not State.COMPLETED:
                world.tick(1)
                await asyncio.sleep(0.05)
    finally:
        await runner.stop()
    assert stored.state is State.COMPLETED and refusals == 0
    assert [r.getMessage() for r in caplog.records].count("lease not taken; will try again") == 2
    assert world.base.sent == [("withdraw", "src-lock")] and world.near.sent[-1][0] == "withdraw"


class _Unreachable:
    """A chain service this replica cannot reach (a broken link, `down`), or one that answers that its chain
    is unavailable (an outage no replica can help with): every call fails."""

    def __init__(self, chain: FakeChain, error: type[Unavailable] = ChainUnreachable) -> None:
        self.name, self.error = chain.name, error

    def __getattr__(self, call: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.error(f"{self.name} service: UNAVAILABLE", reason="CHAIN_UNAVAILABLE")

        return fail


async def test_a_chain_outage_is_waited_out_not_handed_over(world: World) -> None:
    """The service answers that its chain is unavailable: every replica would see the same, so the session
    stays here however long the outage lasts."""
    await world.start()
    settings = SagaSettings(retry_delay_s=0.01, head_stale_s=0, handoff_after_s=0.1)
    down: dict[str, Any] = {"base": world.base, "near": _Unreachable(world.near, Unavailable)}
    lease = Lease()
    driving = asyncio.create_task(Saga(world.store, down, world.box, settings).run(world.record.session_id, lease))
    await asyncio.sleep(0.5)  # five times handoff_after_s
    assert not driving.done(), "still driving the session, no hand-off"
    lease.lost.set()  # the run ends as when its lease is lost
    await asyncio.wait_for(driving, 5)


async def test_a_replica_that_cannot_reach_a_chain_service_hands_the_session_over(world: World) -> None:
    """Chaos seed 8: a replica whose link to chain-near stayed broken held a session for 18 minutes, unable to
    see that a reorg had undone its destination withdrawal. After `handoff_after_s` of failures it releases
    the session and keeps away for a lease length; a replica that reaches both chains takes it and completes it."""
    await world.start()
    settings = SagaSettings(retry_delay_s=0.01, head_stale_s=0, handoff_after_s=0.3)
    broken: dict[str, Any] = {"base": world.base, "near": _Unreachable(world.near)}
    cut_off = Saga(world.store, broken, world.box, settings)
    healthy = Saga(world.store, {"base": world.base, "near": world.near}, world.box, settings)
    first = Runner(cut_off, world.store, lease_ttl_s=0.4, sweep_interval_s=0.1, replica_id="cut-off")
    second = Runner(healthy, world.store, lease_ttl_s=0.4, sweep_interval_s=0.1, replica_id="healthy")
    first.spawn(world.record.session_id)
    await first.resume_all()
    await asyncio.sleep(0.2)  # the cut-off replica holds the session first
    await second.resume_all()
    try:
        async with asyncio.timeout(10):
            while (stored := await world.store.get(world.record.session_id)) is None or stored.state not in TERMINAL:
                world.tick(1)
                await asyncio.sleep(0.05)
    finally:
        await first.stop()
        await second.stop()
    assert stored.state is State.COMPLETED
    assert world.near.sent[-1][0] == "withdraw" and world.base.sent == [("withdraw", "src-lock")]


async def test_a_read_overtaken_by_an_event_is_not_kept(world: World) -> None:
    """An event on a lock arriving while that lock is being read may be newer than the read: the read is
    used once but not cached, so the next pass reads the lock again."""
    await world.start()
    lease = Lease()
    read = world.base.get_lock

    async def overtaken(lock_id: str) -> chain_pb2.Lock:
        lock = await read(lock_id)
        lease.poke(lock_id)  # the event arrives while the reply is on its way
        return lock

    world.base.get_lock = overtaken  # type: ignore[method-assign]
    await world.saga.advance(world.record, lease)
    assert "src-lock" not in lease.locks
    world.base.get_lock = read  # type: ignore[method-assign]
    await world.saga.advance(world.record, lease)
    assert "src-lock" in lease.locks


def _event(kind: chain_pb2.ChainEventKind.ValueType, lock: chain_pb2.Lock, **fields: Any) -> chain_pb2.ChainEvent:
    return chain_pb2.ChainEvent(kind=kind, lock_id=lock.lock_id, lock=lock, confirmations=3, **fields)


async def test_events_at_depth_are_facts_the_woken_pass_needs_no_read_for(world: World) -> None:
    await world.start()
    lease = Lease()
    created = world.base.locks["src-lock"]
    lease.learn(_event(chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED, created))
    assert lease.locks["src-lock"].final and lease.locks["src-lock"].state == ACTIVE
    lease.learn(_event(chain_pb2.CHAIN_EVENT_KIND_LOCK_WITHDRAWN, created, secret=world.secret))
    withdrawn = lease.locks["src-lock"]
    assert withdrawn.state == WITHDRAWN and withdrawn.secret == world.secret and withdrawn.closed_confirmations == 3
    lease.learn(_event(chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED, created))  # an old event replayed
    assert lease.locks["src-lock"].state == WITHDRAWN, "a replayed creation never undoes a withdrawal"
    lease.learn(_event(chain_pb2.CHAIN_EVENT_KIND_LOCK_WITHDRAWN, created, removed=True))  # a reorg retracts it
    assert "src-lock" not in lease.locks, "a retraction makes the lock be read again"
    lease.learn(_event(chain_pb2.CHAIN_EVENT_KIND_LOCK_CANCELLED, created))  # about a lock not known here
    assert "src-lock" not in lease.locks


@pytest.mark.parametrize(
    ("cursor", "ok"),
    [
        ("1796000000000-0", True),
        ("18446744073709551615-18446744073709551615", True),
        ("99999999999999999999-0", False),  # Redis refuses ids beyond 64 bits: once an INTERNAL error
        ("1-2-3", False),
        ("abc", False),
        ("1" * 200 + "-0", False),
    ],
)
def test_watch_cursors_are_stream_ids_redis_accepts(cursor: str, ok: bool) -> None:
    assert valid_cursor(cursor) is ok


async def test_an_execute_repeated_with_its_id_but_another_signature_conflicts(world: World) -> None:
    world.record.execute_request_id = "exec-1"
    world.record.signature = "ab" * 65
    await world.start()
    same = await _sessions(world).execute(world.record.session_id, "exec-1", bytes.fromhex("ab" * 65))
    assert same.version == world.record.version, "the same execute again changes nothing"
    with pytest.raises(IdempotencyConflict) as conflict:
        await _sessions(world).execute(world.record.session_id, "exec-1", bytes.fromhex("cd" * 65))
    assert conflict.value.reason == "IDEMPOTENCY_CONFLICT" and conflict.value.metadata == {"field": "request_id"}


async def test_a_waiting_session_wakes_at_its_event_its_lost_lease_or_its_timeout_and_holds_one_task() -> None:
    lease = Lease(epoch=1)

    async def sleeping(seconds: float) -> float:
        started = asyncio.get_running_loop().time()
        await lease.sleep(seconds)
        return asyncio.get_running_loop().time() - started

    tasks_before = len(asyncio.all_tasks())
    waiting = asyncio.create_task(sleeping(30))
    await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) == tasks_before + 1  # the session's own task waits, nothing else
    lease.poke()
    assert await asyncio.wait_for(waiting, 1) < 1
    assert lease.woken_at is not None and not lease.wake.is_set()

    waiting = asyncio.create_task(sleeping(30))
    await asyncio.sleep(0.05)
    lease.lose()
    assert await asyncio.wait_for(waiting, 1) < 1
    assert lease.lost.is_set()
    assert await sleeping(30) < 0.1  # a lost lease does not sleep again

    quiet = Lease(epoch=2)
    started = asyncio.get_running_loop().time()
    await quiet.sleep(0.2)
    assert 0.2 <= asyncio.get_running_loop().time() - started < 1
