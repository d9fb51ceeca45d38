"""chain-near over gRPC against the project's NEAR devnet: head ticks on WatchEvents, the chain facts of
GetChainInfo, CheckAccount and VerifyMakerOrder, as a caller sees them (fencing, in the conformance suite both
chain services pass: tests/integration/chain_services)."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap_devnet.near import NEAR, NearDevnetProcess

from tests.integration.chain_streams import EventStream, next_item, next_tick
from tests.integration.rich_status import field_violation

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
