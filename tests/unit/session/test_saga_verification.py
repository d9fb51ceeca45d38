"""The reveal gate: with both legs locked, the saga reads both locks back and reveals only when every
term matches; any adversarial destination lock sends the session to refunds with the secret unrevealed.

Chains are in-memory fakes of the ChainService contract; the store is a real Redis."""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from session.model import Leg, SessionRecord
from session.saga import Retry, Saga, SagaSettings
from session.secrets import SecretBox, new_secret
from session.states import State
from session.store import SessionStore
from session.views import snapshot
from swap.chain.v1 import chain_pb2
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2

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


class FakeChain:
    def __init__(self, name: str, resolver: str) -> None:
        self.name = name
        self.resolver = resolver
        self.now = 10_000
        self.locks: dict[str, chain_pb2.Lock] = {}
        self.withdrawn: list[str] = []
        self.cancelled: list[str] = []

    async def info(self) -> chain_pb2.GetChainInfoResponse:
        return chain_pb2.GetChainInfoResponse(chain_time=self.now, resolver=self.resolver, confirmations=1)

    async def prepare_maker_lock(self, request: Any) -> Any:
        raise AssertionError("not used")

    async def create_lock(self, request: Any) -> Any:
        raise AssertionError("the saga must not lock anything here")

    async def get_lock(self, lock_id: str) -> chain_pb2.Lock:
        return self.locks.get(lock_id, chain_pb2.Lock(lock_id=lock_id, state=chain_pb2.LOCK_STATE_ABSENT))

    async def withdraw(self, lock_id: str, secret: bytes) -> chain_pb2.WithdrawResponse:
        self.withdrawn.append(lock_id)
        self.locks[lock_id].state = chain_pb2.LOCK_STATE_WITHDRAWN
        self.locks[lock_id].closed.tx_hash = "w"
        self.locks[lock_id].closed_confirmations = 1
        return chain_pb2.WithdrawResponse(lock=self.locks[lock_id], tx=chain_pb2.TxRef(tx_hash="w"), sent=True)

    async def cancel(self, lock_id: str) -> chain_pb2.CancelResponse:
        self.cancelled.append(lock_id)
        self.locks[lock_id].state = chain_pb2.LOCK_STATE_CANCELLED
        return chain_pb2.CancelResponse(lock=self.locks[lock_id], tx=chain_pb2.TxRef(tx_hash="c"), sent=True)


def make_lock(
    chain: FakeChain,
    lock_id: str,
    *,
    token: str,
    amount: str,
    hashlock: bytes,
    depositor: str,
    beneficiary: str,
    timelocks: common_pb2.Timelocks,
) -> chain_pb2.Lock:
    at = chain.now - 5
    lock = chain_pb2.Lock(
        lock_id=lock_id,
        state=chain_pb2.LOCK_STATE_ACTIVE,
        depositor=depositor,
        operator=chain.resolver,
        terms=chain_pb2.LockTerms(
            token=token, amount=amount, hashlock=hashlock, timelocks=timelocks, beneficiary=beneficiary
        ),
        locked_at=at,
        withdrawal_at=at + timelocks.withdrawal_after_s,
        public_withdrawal_at=at + timelocks.public_withdrawal_after_s,
        cancellation_at=at + timelocks.cancellation_after_s,
        public_cancellation_at=at + timelocks.public_cancellation_after_s,
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


@pytest.fixture
async def world(store: SessionStore) -> Any:
    base, near = FakeChain("base", RESOLVER_BASE), FakeChain("near", "resolver.test.near")
    box = SecretBox(os.urandom(32))
    saga = Saga(store, {"base": base, "near": near}, box, SagaSettings(poll_interval_s=0.01, lock_allowance_s=15))
    secret, hashlock = new_secret()
    quote = quote_pb2.Quote(quote_id="q", timelocks=PLAN, min_received="990")
    record = SessionRecord(
        session_id=os.urandom(8).hex(),
        state=State.BOTH_LOCKED,
        src=Leg(chain="base", token="0x" + "33" * 20, amount="1000", lock_id="src-lock"),
        dst=Leg(chain="near", token="tusd.test.near", amount="995", lock_id="dst-lock"),
        maker=MAKER,
        receiver=RECEIVER,
        hashlock=hashlock.hex(),
        sealed_secret="",
        quote=base64.b64encode(quote.SerializeToString()).decode(),
        created_at=0,
        updated_at=0,
    )
    record.sealed_secret = box.seal(record.session_id, secret)
    await store.create(record, snapshot(record))
    make_lock(
        base,
        "src-lock",
        token=record.src.token,
        amount="1000",
        hashlock=hashlock,
        depositor=MAKER,
        beneficiary=RESOLVER_BASE,
        timelocks=PLAN.src,
    )
    make_lock(
        near,
        "dst-lock",
        token=record.dst.token,
        amount="995",
        hashlock=hashlock,
        depositor=near.resolver,
        beneficiary=RECEIVER,
        timelocks=PLAN.dst,
    )
    return saga, record, base, near


async def test_matching_locks_are_revealed_and_withdrawn(world: Any, store: SessionStore) -> None:
    saga, record, base, near = world
    await saga.advance(record)
    assert record.state is State.REVEALING_SECRET
    for _ in range(3):  # withdraw the destination, then the source, then see both final
        with contextlib.suppress(Retry):
            await saga.advance(record)
    assert record.state.value == "completed"
    assert near.withdrawn == ["dst-lock"] and base.withdrawn == ["src-lock"]
    stored = await store.get(record.session_id)
    assert stored is not None and stored.state is State.COMPLETED and stored.secret_public


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda lock: setattr(lock.terms, "hashlock", b"\x00" * 32), id="wrong-hashlock"),
        pytest.param(lambda lock: setattr(lock.terms, "amount", "994"), id="short-amount"),
        pytest.param(lambda lock: setattr(lock.terms, "beneficiary", "mallory.test.near"), id="wrong-receiver"),
        pytest.param(lambda lock: setattr(lock.terms, "token", "fake.test.near"), id="wrong-token"),
        pytest.param(lambda lock: setattr(lock.terms.timelocks, "cancellation_after_s", 30), id="short-timelock"),
        pytest.param(lambda lock: setattr(lock, "final", False), id="not-final"),
        pytest.param(lambda lock: setattr(lock, "state", chain_pb2.LOCK_STATE_ABSENT), id="absent"),
    ],
)
async def test_adversarial_destination_lock_is_never_revealed_to(world: Any, tamper: Any) -> None:
    saga, record, base, near = world
    tamper(near.locks["dst-lock"])
    await saga.advance(record)
    assert record.state is State.REFUNDING
    assert record.error_reason == "LOCK_VERIFICATION_FAILED"
    assert near.withdrawn == [] and base.withdrawn == []
    assert not record.secret_public

    # Refunds wait for each lock's cancellation window on that chain's clock, then cancel what is active.
    near.locks["dst-lock"].state = chain_pb2.LOCK_STATE_ACTIVE
    with pytest.raises(Retry):
        await saga.advance(record)
    base.now += 200
    near.now += 200
    await saga.advance(record)
    assert record.state.value == "refunded"
    assert base.cancelled == ["src-lock"] and near.cancelled == ["dst-lock"]
    assert record.sealed_secret == "", "an ended session keeps no secret"


async def test_no_reveal_when_too_little_time_is_left(world: Any) -> None:
    saga, record, _base, near = world
    near.now = near.locks["dst-lock"].cancellation_at - PLAN.reveal_margin_s
    await saga.advance(record)
    assert record.state is State.REFUNDING and record.error_reason == "NO_TIME_TO_REVEAL"
    assert near.withdrawn == []
