"""chain-base over gRPC against a real anvil: head ticks on WatchEvents, the chain facts of GetChainInfo,
CheckAccount and VerifyMakerOrder, each as a caller sees them (fencing, in the conformance suite both chain
services pass: tests/integration/chain_services)."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap_devnet.evm import EvmDeployment, increase_time, mine, sha256_hashlock
from web3 import Web3

from tests.fixtures.services import BASE_CONFIRMATIONS
from tests.integration.chain_streams import EventStream, next_item, next_tick
from tests.integration.rich_status import field_violation

pytestmark = pytest.mark.integration

Stub = chain_pb2_grpc.ChainServiceStub
AMOUNT = 1_000_000
DEPOSIT = 10**15
_salts = itertools.count(int.from_bytes(os.urandom(4), "big") * 1000 + 7)


def timelocks() -> common_pb2.Timelocks:
    return common_pb2.Timelocks(
        withdrawal_after_s=10, public_withdrawal_after_s=20, cancellation_after_s=100, public_cancellation_after_s=200
    )


def dst_request(chain: EvmDeployment, hashlock: bytes | None = None) -> chain_pb2.CreateLockRequest:
    return chain_pb2.CreateLockRequest(
        terms=chain_pb2.LockTerms(
            token=chain.token,
            amount=str(AMOUNT),
            hashlock=hashlock or sha256_hashlock(os.urandom(32)),
            timelocks=timelocks(),
            beneficiary=chain.receiver.address,
            safety_deposit=str(DEPOSIT),
        ),
        resolver=chain_pb2.ResolverFunding(salt=str(next(_salts))),
    )


@pytest.fixture(scope="module")
def w3(base_chain: EvmDeployment) -> Web3:
    return Web3(Web3.HTTPProvider(base_chain.rpc_url))


def tusd(w3: Web3, chain: EvmDeployment, who: str) -> int:
    return int(chain.token_contract(w3).functions.balanceOf(who).call())


@pytest.fixture
async def watch(chain_base: Stub) -> AsyncIterator[Callable[..., EventStream]]:
    streams: list[EventStream] = []

    def open_stream(lock_id: str = "", cursor: str = "", heads: bool = False) -> EventStream:
        request = chain_pb2.WatchEventsRequest(lock_id=lock_id, cursor=cursor, heads=heads)
        stream = EventStream(chain_base.WatchEvents(request))
        streams.append(stream)
        return stream

    yield open_stream
    for stream in streams:
        stream.close()


# -- head ticks --------------------------------------------------------------------------------------------


async def test_head_ticks_follow_the_chain_and_interleave_with_events(
    chain_base: Stub, base_chain: EvmDeployment, w3: Web3, watch: Callable[..., EventStream]
) -> None:
    created = await chain_base.CreateLock(dst_request(base_chain))
    lock_id = created.lock.lock_id
    head = w3.eth.get_block("latest")
    assert created.lock.created.block_number == head["number"]

    stream = watch(lock_id=lock_id, heads=True)
    first = await next_tick(stream)
    assert (first.height, first.chain_time) == (head["number"], head["timestamp"])
    assert first.final_height == head["number"] - BASE_CONFIRMATIONS + 1
    with pytest.raises(TimeoutError):  # the head did not move: no tick, and the lock is not deep enough
        await next_item(stream, timeout=0.5)

    mine(w3)  # the lock reaches its depth: its event comes first, then the tick that covers it
    event = await next_item(stream)
    assert isinstance(event, chain_pb2.ChainEvent)
    assert (event.kind, event.lock_id) == (chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED, lock_id)
    tick = await next_tick(stream)
    assert tick.height == first.height + 1 and tick.final_height == event.tx.block_number

    increase_time(w3, 500)
    later = await next_tick(stream)
    latest = w3.eth.get_block("latest")
    assert (later.height, later.chain_time) == (latest["number"], latest["timestamp"])
    assert later.chain_time >= tick.chain_time + 500
    assert later.final_height == later.height - BASE_CONFIRMATIONS + 1


# -- chain facts, accounts, maker orders -------------------------------------------------------------------


async def test_chain_facts(chain_base: Stub) -> None:
    info = await chain_base.GetChainInfo(chain_pb2.GetChainInfoRequest())
    assert info.inclusion_bound_s == 60  # the default, above the fixture's 1 s resend interval
    assert info.maker_submits_source_lock is False


async def test_check_account(chain_base: Stub, base_chain: EvmDeployment) -> None:
    checksummed = base_chain.maker.address
    body = checksummed[2:]
    assert body != body.lower()  # the dev address has letters, so its checksum means something
    for given in (checksummed, "0x" + body.lower(), "0x" + body.upper()):
        reply = await chain_base.CheckAccount(chain_pb2.CheckAccountRequest(account=given))
        assert (reply.account, reply.exists) == (checksummed, True), given

    # One letter's case flipped: a mixed-case address whose checksum is wrong.
    index = next(i for i, c in enumerate(body) if c.isalpha())
    flipped = "0x" + body[:index] + body[index].swapcase() + body[index + 1 :]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await chain_base.CheckAccount(chain_pb2.CheckAccountRequest(account=flipped))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(err.value) == "account"
    assert "checksum" in (err.value.details() or "")

    for bad in ("", "0x1234", body.lower(), "0x" + "g" * 40, "0X" + body.lower(), "0x" + body.lower() + "00"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await chain_base.CheckAccount(chain_pb2.CheckAccountRequest(account=bad))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert field_violation(err.value) == "account", bad


async def test_verify_maker_order(chain_base: Stub, base_chain: EvmDeployment, w3: Web3) -> None:
    order = chain_pb2.PrepareMakerLockRequest(
        terms=chain_pb2.LockTerms(
            token=base_chain.token,
            amount=str(AMOUNT),
            hashlock=sha256_hashlock(os.urandom(32)),
            timelocks=timelocks(),
            safety_deposit=str(DEPOSIT),
        ),
        maker=base_chain.maker.address,
        nonce=str(next(_salts)),
        deadline=int(w3.eth.get_block("latest")["timestamp"]) + 600,
        dst_terms_hash=os.urandom(32),
    )
    prepared = await chain_base.PrepareMakerLock(order)
    typed = json.loads(prepared.sign_order.typed_data_json)

    def sign(key: str) -> bytes:
        return bytes(Account.sign_message(encode_typed_data(full_message=typed), key).signature)

    signature = sign(base_chain.maker.private_key)
    await chain_base.VerifyMakerOrder(chain_pb2.VerifyMakerOrderRequest(order=order, signature=signature))

    tampered = chain_pb2.PrepareMakerLockRequest()
    tampered.CopyFrom(order)
    tampered.terms.amount = str(AMOUNT * 2)  # not what the maker signed
    refusals: list[tuple[chain_pb2.PrepareMakerLockRequest, bytes, str]] = [
        (order, signature[:64], "65-byte"),
        (order, b"\x00" * 65, "not a valid ECDSA signature"),
        (order, b"\xff" * 65, "not a valid ECDSA signature"),
        (order, signature[:64] + b"\x05", "not a valid ECDSA signature"),
        (order, sign(base_chain.receiver.private_key), "not made by order.maker"),
        (tampered, signature, "not made by order.maker"),
    ]
    for request, bad, message in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await chain_base.VerifyMakerOrder(chain_pb2.VerifyMakerOrderRequest(order=request, signature=bad))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert field_violation(err.value) == "signature", message
        assert message in (err.value.details() or ""), (message, err.value.details())

    bad_maker = chain_pb2.PrepareMakerLockRequest()
    bad_maker.CopyFrom(order)
    bad_maker.maker = "0xnope"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await chain_base.VerifyMakerOrder(chain_pb2.VerifyMakerOrderRequest(order=bad_maker, signature=signature))
    assert field_violation(err.value) == "order.maker"

    # What VerifyMakerOrder accepted, the escrow accepts: the order locks the maker's tokens.
    maker_before = tusd(w3, base_chain, base_chain.maker.address)
    created = await chain_base.CreateLock(
        chain_pb2.CreateLockRequest(
            terms=order.terms,
            maker_order=chain_pb2.MakerOrder(
                maker=order.maker,
                nonce=order.nonce,
                deadline=order.deadline,
                dst_terms_hash=order.dst_terms_hash,
                signature=signature,
            ),
        )
    )
    assert created.sent and created.lock.lock_id == prepared.lock_id
    assert tusd(w3, base_chain, base_chain.maker.address) == maker_before - AMOUNT
