"""chain-near over gRPC against the project's NEAR devnet: fencing tokens on chain actions, head ticks on
WatchEvents, the chain facts of GetChainInfo, CheckAccount and VerifyMakerOrder, as a caller sees them."""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap_devnet.near import NEAR, NearDevnetProcess

from tests.integration.chain_near.helpers import htlc_storage
from tests.integration.chain_streams import EventStream, next_event, next_item, next_tick
from tests.integration.rich_status import error_reason, field_violation

pytestmark = pytest.mark.integration

Stub = chain_pb2_grpc.ChainServiceStub
AMOUNT = NEAR // 1000
DEPOSIT = NEAR // 100
_salts = itertools.count(int.from_bytes(os.urandom(4), "big") * 1000 + 7)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def timelocks(withdrawal: int = 10) -> common_pb2.Timelocks:
    return common_pb2.Timelocks(
        withdrawal_after_s=withdrawal,
        public_withdrawal_after_s=20,
        cancellation_after_s=100,
        public_cancellation_after_s=200,
    )


def lock_request(devnet: NearDevnetProcess, hashlock: bytes | None = None) -> chain_pb2.CreateLockRequest:
    return chain_pb2.CreateLockRequest(
        terms=chain_pb2.LockTerms(
            token="native",
            amount=str(AMOUNT),
            hashlock=hashlock or sha256(os.urandom(32)),
            timelocks=timelocks(),
            beneficiary=devnet.receiver.account_id,
            safety_deposit=str(DEPOSIT),
        ),
        resolver=chain_pb2.ResolverFunding(salt=str(next(_salts))),
    )


def fence(key: str, epoch: int | str) -> tuple[tuple[str, str], ...]:
    return (("x-fence-key", key), ("x-fence-epoch", str(epoch)))


@pytest.fixture
async def watch(chain_near: Stub) -> AsyncIterator[Callable[..., EventStream]]:
    streams: list[EventStream] = []

    def open_stream(lock_id: str = "", heads: bool = False) -> EventStream:
        stream = EventStream(chain_near.WatchEvents(chain_pb2.WatchEventsRequest(lock_id=lock_id, heads=heads)))
        streams.append(stream)
        return stream

    yield open_stream
    for stream in streams:
        stream.close()


async def _chain_snapshot(devnet: NearDevnetProcess) -> tuple[int, int, Any]:
    return (
        await devnet.abalance(devnet.resolver.account_id),
        await devnet.abalance(devnet.receiver.account_id),
        await htlc_storage(devnet),
    )


# -- fencing -----------------------------------------------------------------------------------------------


async def test_stale_epoch_is_refused_before_anything_is_sent(
    chain_near: Stub, chain_near_devnet: NearDevnetProcess
) -> None:
    devnet = chain_near_devnet
    key = f"session-{uuid.uuid4().hex}"
    secret = os.urandom(32)
    created = await chain_near.CreateLock(lock_request(devnet, sha256(secret)), metadata=fence(key, 2))
    assert created.sent
    lock_id = created.lock.lock_id
    await devnet.afast_forward(delta_seconds=10)  # the withdrawal window is open: only the fence refuses

    before = await _chain_snapshot(devnet)
    stale = fence(key, 1)
    calls = {
        "CreateLock": chain_near.CreateLock(lock_request(devnet), metadata=stale),
        "Withdraw": chain_near.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret), metadata=stale),
        "Cancel": chain_near.Cancel(chain_pb2.CancelRequest(lock_id=lock_id), metadata=stale),
    }
    for name, call in calls.items():
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, name
        assert error_reason(err.value) == "STALE_FENCE", name

    assert await _chain_snapshot(devnet) == before
    read = await chain_near.GetLock(chain_pb2.GetLockRequest(lock_id=lock_id), metadata=stale)
    assert read.lock.state == chain_pb2.LOCK_STATE_ACTIVE

    done = await chain_near.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret), metadata=fence(key, 2))
    assert done.sent and done.lock.state == chain_pb2.LOCK_STATE_WITHDRAWN
    assert await devnet.abalance(devnet.receiver.account_id) == before[1] + AMOUNT


async def test_rising_epochs_pass_and_keys_are_independent(
    chain_near: Stub, chain_near_devnet: NearDevnetProcess
) -> None:
    devnet = chain_near_devnet
    key, other = f"session-{uuid.uuid4().hex}", f"session-{uuid.uuid4().hex}"
    first = await chain_near.CreateLock(lock_request(devnet), metadata=fence(key, 1))
    assert first.sent
    await devnet.afast_forward(delta_seconds=100)
    cancelled = await chain_near.Cancel(chain_pb2.CancelRequest(lock_id=first.lock.lock_id), metadata=fence(key, 2))
    assert cancelled.sent and cancelled.lock.state == chain_pb2.LOCK_STATE_CANCELLED

    independent = await chain_near.CreateLock(lock_request(devnet), metadata=fence(other, 1))
    assert independent.sent
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await chain_near.CreateLock(lock_request(devnet), metadata=fence(key, 1))
    assert error_reason(err.value) == "STALE_FENCE"
    assert (await chain_near.CreateLock(lock_request(devnet))).sent


async def test_malformed_fence_names_the_entry(chain_near: Stub, chain_near_devnet: NearDevnetProcess) -> None:
    devnet = chain_near_devnet
    before = await _chain_snapshot(devnet)
    key = f"session-{uuid.uuid4().hex}"
    cases: list[tuple[tuple[tuple[str, str], ...], str]] = [
        *((fence(key, bad), "x-fence-epoch") for bad in ("", "abc", "-1", "1.5", str(2**64))),
        ((("x-fence-key", key),), "x-fence-epoch"),
        ((("x-fence-epoch", "3"),), "x-fence-key"),
    ]
    for metadata, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await chain_near.CreateLock(lock_request(devnet), metadata=metadata)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, metadata
        assert field_violation(err.value) == field, metadata
    assert await _chain_snapshot(devnet) == before


# -- head ticks --------------------------------------------------------------------------------------------


async def test_head_ticks_follow_the_chain_and_interleave_with_events(
    chain_near: Stub, chain_near_devnet: NearDevnetProcess, watch: Callable[..., EventStream]
) -> None:
    devnet = chain_near_devnet
    created = await chain_near.CreateLock(lock_request(devnet))
    lock_id = created.lock.lock_id
    stream = watch(lock_id=lock_id, heads=True)

    # Whichever comes first, the lock's event precedes every tick whose final height covers its block.
    event: chain_pb2.ChainEvent | None = None
    ticks: list[chain_pb2.HeadTick] = []
    while event is None or not ticks or ticks[-1].final_height < event.tx.block_number:
        item = await next_item(stream)
        if isinstance(item, chain_pb2.ChainEvent):
            assert all(t.final_height < item.tx.block_number for t in ticks)
            event = item
        else:
            ticks.append(item)
    assert (event.kind, event.lock_id) == (chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED, lock_id)
    first = ticks[0]
    assert first.height >= first.final_height > 0 and first.chain_time > 0

    # Ticks follow the chain: heights rise, and chain time tracks the latest block.
    tick = await next_tick(stream)
    assert tick.height > ticks[-1].height and tick.final_height >= ticks[-1].final_height
    final = (await devnet.arpc("block", {"finality": "final"}))["header"]
    assert tick.final_height <= int(final["height"])

    await devnet.afast_forward(delta_seconds=300)
    for _ in range(20):
        later = await next_tick(stream)
        if later.chain_time >= tick.chain_time + 300:
            break
    else:
        raise AssertionError("no tick carried the fast-forwarded chain time")
    latest = (await devnet.arpc("block", {"finality": "optimistic"}))["header"]
    assert later.chain_time <= int(latest["timestamp_nanosec"]) // 10**9
    assert later.height > tick.height


async def test_no_ticks_without_heads(
    chain_near: Stub, chain_near_devnet: NearDevnetProcess, watch: Callable[..., EventStream]
) -> None:
    created = await chain_near.CreateLock(lock_request(chain_near_devnet))
    stream = watch(lock_id=created.lock.lock_id)
    assert (await next_event(stream)).lock_id == created.lock.lock_id
    # The devnet makes a block every second: a heads stream would have had ticks by now.
    with pytest.raises(TimeoutError):
        await next_item(stream, timeout=2.5)


# -- chain facts, accounts, maker orders -------------------------------------------------------------------


async def test_chain_facts(chain_near: Stub) -> None:
    info = await chain_near.GetChainInfo(chain_pb2.GetChainInfoRequest())
    assert info.inclusion_bound_s == 20
    assert info.maker_submits_source_lock is True


async def test_check_account(chain_near: Stub, chain_near_devnet: NearDevnetProcess) -> None:
    maker = chain_near_devnet.maker.account_id
    reply = await chain_near.CheckAccount(chain_pb2.CheckAccountRequest(account=maker))
    assert (reply.account, reply.exists) == (maker, True)
    for absent in ("nobody-here.test.near", "ab" * 32):  # a named account and an unfunded implicit one
        reply = await chain_near.CheckAccount(chain_pb2.CheckAccountRequest(account=absent))
        assert (reply.account, reply.exists) == (absent, False), absent
    for bad in ("", "a", "Bad Account", "Maker.test.near", "a..b", "-ab", "x" * 65):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await chain_near.CheckAccount(chain_pb2.CheckAccountRequest(account=bad))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert field_violation(err.value) == "account", bad


async def test_verify_maker_order_has_nothing_to_check(chain_near: Stub, chain_near_devnet: NearDevnetProcess) -> None:
    """On NEAR the maker authorises the lock by making it: there is no signature, and the answer is OK."""
    order = chain_pb2.PrepareMakerLockRequest(
        terms=chain_pb2.LockTerms(
            token="native", amount=str(AMOUNT), hashlock=sha256(os.urandom(32)), timelocks=timelocks(withdrawal=0)
        ),
        maker=chain_near_devnet.maker.account_id,
        nonce=str(next(_salts)),
    )
    await chain_near.VerifyMakerOrder(chain_pb2.VerifyMakerOrderRequest(order=order))
    await chain_near.VerifyMakerOrder(chain_pb2.VerifyMakerOrderRequest(order=order, signature=os.urandom(65)))
