"""chain-base over gRPC against a real anvil: locks, events at depth, withdrawals, refunds, reorgs,
bad input, concurrency and a dropped transaction, each checked on chain."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap_devnet.evm import EvmDeployment, increase_time, mine, sha256_hashlock, sign_order
from swap_devnet.procs import ServiceProcess
from web3 import Web3
from web3.types import Nonce, RPCEndpoint, TxParams, Wei

from tests.fixtures.services import BASE_CONFIRMATIONS, chain_base_env
from tests.integration.chain_streams import EventStream, next_event
from tests.integration.rich_status import field_violation

pytestmark = pytest.mark.integration

AMOUNT = 25_000_000  # 25 TUSD (6 decimals)
DEPOSIT = 10**15  # 0.001 ETH safety deposit
_salts = itertools.count(int.from_bytes(os.urandom(4), "big") * 1000)


def timelocks(withdrawal: int = 10, public: int = 20, cancel: int = 100, public_cancel: int = 200) -> Any:
    return common_pb2.Timelocks(
        withdrawal_after_s=withdrawal,
        public_withdrawal_after_s=public,
        cancellation_after_s=cancel,
        public_cancellation_after_s=public_cancel,
    )


def dst_request(chain: EvmDeployment, hashlock: bytes, *, token: str | None = None, amount: int = AMOUNT) -> Any:
    return chain_pb2.CreateLockRequest(
        terms=chain_pb2.LockTerms(
            token=token or chain.token,
            amount=str(amount),
            hashlock=hashlock,
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
async def watch(chain_base: chain_pb2_grpc.ChainServiceStub) -> AsyncIterator[Any]:
    streams: list[EventStream] = []

    def open_stream(lock_id: str = "", cursor: str = "") -> EventStream:
        stream = EventStream(chain_base.WatchEvents(chain_pb2.WatchEventsRequest(lock_id=lock_id, cursor=cursor)))
        streams.append(stream)
        return stream

    yield open_stream
    for stream in streams:
        stream.close()


async def test_chain_info(chain_base: chain_pb2_grpc.ChainServiceStub, base_chain: EvmDeployment) -> None:
    info = await chain_base.GetChainInfo(chain_pb2.GetChainInfoRequest())
    assert info.chain == common_pb2.CHAIN_BASE
    assert info.chain_id == "31337"
    assert info.resolver == base_chain.resolver.address
    assert info.escrow_src == base_chain.escrow_src
    assert info.confirmations == BASE_CONFIRMATIONS


async def test_lock_watch_withdraw(
    chain_base: chain_pb2_grpc.ChainServiceStub, base_chain: EvmDeployment, w3: Web3, watch: Any
) -> None:
    secret = os.urandom(32)
    receiver_before = tusd(w3, base_chain, base_chain.receiver.address)
    resolver_before = tusd(w3, base_chain, base_chain.resolver.address)

    created = await chain_base.CreateLock(dst_request(base_chain, sha256_hashlock(secret)))
    lock = created.lock
    assert created.sent
    assert lock.state == chain_pb2.LOCK_STATE_ACTIVE
    assert lock.confirmations == 1 and not lock.final
    assert lock.withdrawal_at == lock.locked_at + 10
    assert tusd(w3, base_chain, base_chain.resolver.address) == resolver_before - AMOUNT

    stream = watch(lock_id=lock.lock_id)
    with pytest.raises(TimeoutError):  # one confirmation is not enough
        await next_event(stream, timeout=0.5)
    mine(w3)
    event = await next_event(stream)
    assert event.kind == chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED
    assert event.confirmations == BASE_CONFIRMATIONS
    assert event.tx.tx_hash == lock.created.tx_hash
    assert event.lock.terms.amount == str(AMOUNT)
    assert event.lock.terms.beneficiary == base_chain.receiver.address
    assert (await chain_base.GetLock(chain_pb2.GetLockRequest(lock_id=lock.lock_id))).lock.final

    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await chain_base.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock.lock_id, secret=os.urandom(32)))
    assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(wrong.value) == "secret"
    assert secret.hex() not in (wrong.value.details() or "")

    with pytest.raises(grpc.aio.AioRpcError) as early:
        await chain_base.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock.lock_id, secret=secret))
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not opened" in (early.value.details() or "")

    increase_time(w3, 10)
    done = await chain_base.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock.lock_id, secret=secret))
    assert done.sent and done.lock.state == chain_pb2.LOCK_STATE_WITHDRAWN
    assert done.lock.secret == secret
    assert tusd(w3, base_chain, base_chain.receiver.address) == receiver_before + AMOUNT

    again = await chain_base.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock.lock_id, secret=secret))
    assert not again.sent and again.tx.tx_hash == done.tx.tx_hash
    assert tusd(w3, base_chain, base_chain.receiver.address) == receiver_before + AMOUNT

    mine(w3)
    withdrawn = await next_event(stream)
    assert withdrawn.kind == chain_pb2.CHAIN_EVENT_KIND_LOCK_WITHDRAWN
    assert withdrawn.secret == secret

    # A stream resumed from the first event's cursor starts right after it.
    resumed = watch(lock_id=lock.lock_id, cursor=event.cursor)
    assert (await next_event(resumed)).cursor == withdrawn.cursor


async def test_native_lock_and_source_order(
    chain_base: chain_pb2_grpc.ChainServiceStub, base_chain: EvmDeployment, w3: Web3
) -> None:
    # Destination lock of native ETH: the escrow holds amount + deposit.
    escrow_eth = w3.eth.get_balance(base_chain.escrow_dst)
    native = await chain_base.CreateLock(
        dst_request(base_chain, sha256_hashlock(os.urandom(32)), token="native", amount=10**16)
    )
    assert native.lock.terms.token == "native"
    assert w3.eth.get_balance(base_chain.escrow_dst) == escrow_eth + 10**16 + DEPOSIT

    # Source lock from the maker's signed EIP-712 order: the maker's TUSD moves into the escrow.
    secret = os.urandom(32)
    now = int(w3.eth.get_block("latest")["timestamp"])
    order: dict[str, Any] = {
        "maker": base_chain.maker.address,
        "resolver": base_chain.resolver.address,
        "token": base_chain.token,
        "amount": AMOUNT,
        "hashlock": sha256_hashlock(secret),
        "timelocks": {"withdrawal": 10, "publicWithdrawal": 20, "cancellation": 100, "publicCancellation": 200},
        "safetyDeposit": DEPOSIT,
        "dstTermsHash": os.urandom(32),
        "nonce": next(_salts),
        "deadline": now + 600,
    }
    signature = sign_order(base_chain, order, base_chain.maker.private_key)
    request = chain_pb2.CreateLockRequest(
        terms=chain_pb2.LockTerms(
            token=base_chain.token,
            amount=str(AMOUNT),
            hashlock=order["hashlock"],
            timelocks=timelocks(),
            beneficiary=base_chain.resolver.address,
            safety_deposit=str(DEPOSIT),
        ),
        maker_order=chain_pb2.MakerOrder(
            maker=base_chain.maker.address,
            nonce=str(order["nonce"]),
            deadline=order["deadline"],
            dst_terms_hash=order["dstTermsHash"],
            signature=signature,
        ),
    )
    maker_before = tusd(w3, base_chain, base_chain.maker.address)
    resolver_before = tusd(w3, base_chain, base_chain.resolver.address)
    src = await chain_base.CreateLock(request)
    assert src.sent and src.lock.depositor == base_chain.maker.address
    assert tusd(w3, base_chain, base_chain.maker.address) == maker_before - AMOUNT

    repeat = await chain_base.CreateLock(request)
    assert not repeat.sent and repeat.lock.lock_id == src.lock.lock_id
    assert tusd(w3, base_chain, base_chain.maker.address) == maker_before - AMOUNT

    increase_time(w3, 10)
    await chain_base.Withdraw(chain_pb2.WithdrawRequest(lock_id=src.lock.lock_id, secret=secret))
    assert tusd(w3, base_chain, base_chain.resolver.address) == resolver_before + AMOUNT

    tampered = chain_pb2.CreateLockRequest()
    tampered.CopyFrom(request)
    tampered.terms.amount = str(AMOUNT * 2)  # not what the maker signed
    tampered.maker_order.nonce = str(next(_salts))
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await chain_base.CreateLock(tampered)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(bad.value) == "maker_order.signature"


def _mutations(chain: EvmDeployment) -> list[tuple[str, Any]]:
    def terms(**changes: Any) -> Any:
        def apply(req: Any) -> None:
            for key, value in changes.items():
                setattr(req.terms, key, value)

        return apply

    def set_timelocks(req: Any) -> None:
        req.terms.timelocks.CopyFrom(timelocks(withdrawal=50, public=20))

    def funding_salt(req: Any) -> None:
        req.resolver.salt = "-1"

    return [
        ("terms.beneficiary", terms(beneficiary="0x1234")),
        ("terms.beneficiary", terms(beneficiary="")),
        ("terms.amount", terms(amount="0")),
        ("terms.amount", terms(amount="-5")),
        ("terms.amount", terms(amount="1e6")),
        ("terms.amount", terms(amount="")),
        ("terms.token", terms(token="0x" + "ab" * 20)),  # no contract there
        ("terms.token", terms(token="USDC")),
        ("terms.hashlock", terms(hashlock=b"\x01" * 31)),
        ("terms.safety_deposit", terms(safety_deposit="0.5")),
        ("terms.public_withdrawal_after_s", set_timelocks),
        ("resolver.salt", funding_salt),
    ]


async def test_bad_input_names_the_field_and_sends_nothing(
    chain_base: chain_pb2_grpc.ChainServiceStub, base_chain: EvmDeployment, w3: Web3
) -> None:
    nonce = w3.eth.get_transaction_count(base_chain.resolver.address)
    for field, mutate in _mutations(base_chain):
        request = dst_request(base_chain, sha256_hashlock(os.urandom(32)))
        mutate(request)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await chain_base.CreateLock(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field_violation(err.value).endswith(field.split(".")[-1]), (field, err.value.details())
    assert w3.eth.get_transaction_count(base_chain.resolver.address) == nonce


async def test_dropped_transaction_is_sent_again(
    chain_base: chain_pb2_grpc.ChainServiceStub, base_chain: EvmDeployment, w3: Web3
) -> None:
    resolver = base_chain.resolver.address
    nonce_before = w3.eth.get_transaction_count(resolver)
    w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [False])
    try:
        pending = asyncio.ensure_future(chain_base.CreateLock(dst_request(base_chain, sha256_hashlock(os.urandom(32)))))
        for _ in range(100):
            if w3.eth.get_transaction_count(resolver, "pending") > nonce_before:
                break
            await asyncio.sleep(0.05)
        w3.provider.make_request(RPCEndpoint("anvil_dropAllTransactions"), [])
        assert w3.eth.get_transaction_count(resolver, "pending") == nonce_before
    finally:
        w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [True])
    for _ in range(200):  # the service signs the same nonce again; mine what arrives
        if pending.done():
            break
        mine(w3)
        await asyncio.sleep(0.05)
    reply = await asyncio.wait_for(pending, 20)
    assert reply.lock.state == chain_pb2.LOCK_STATE_ACTIVE
    assert w3.eth.get_transaction_count(resolver) == nonce_before + 1


async def test_reorg_retracts_replaced_lock(
    chain_base: chain_pb2_grpc.ChainServiceStub, base_chain: EvmDeployment, w3: Web3, watch: Any
) -> None:
    """A lock mined and reported is reorged out: the stream retracts it and emits its replacement once."""
    escrow = base_chain.escrow_dst_contract(w3)
    maker = base_chain.maker.address
    head = w3.eth.block_number
    stream = watch(cursor=f"{head}:{2**32 - 1}:{w3.eth.get_block(head)['hash'].to_0x_hex()}")

    def params(salt: int) -> Any:
        return {
            "beneficiary": base_chain.receiver.address,
            "token": "0x0000000000000000000000000000000000000000",
            "amount": 10**15,
            "hashlock": sha256_hashlock(os.urandom(32)),
            "timelocks": {"withdrawal": 10, "publicWithdrawal": 20, "cancellation": 100, "publicCancellation": 200},
            "safetyDeposit": 0,
            "salt": salt,
        }

    replaced = params(next(_salts))
    tx_hash = escrow.functions.createDstEscrow(replaced).transact({"from": maker, "value": Wei(10**15)})
    w3.eth.wait_for_transaction_receipt(tx_hash)
    replaced_id = "0x" + escrow.functions.dstEscrowId(maker, replaced).call().hex()
    mine(w3)
    first = await next_event(stream)
    assert (first.lock_id, first.removed) == (replaced_id, False)

    replacement = params(next(_salts))
    replacement_id = "0x" + escrow.functions.dstEscrowId(maker, replacement).call().hex()
    sent: TxParams = {
        "from": maker,
        "value": Wei(10**15),
        "nonce": Nonce(w3.eth.get_transaction_count(maker) - 1),
        "gas": 300_000,
    }
    tx = escrow.functions.createDstEscrow(replacement).build_transaction(sent)
    # Replace the lock's block and the one on top with two blocks, the first holding the other lock.
    reorg = w3.provider.make_request(RPCEndpoint("anvil_reorg"), [2, [[tx, 0]]])
    assert "error" not in reorg, reorg
    mine(w3)

    retracted = await next_event(stream)
    assert (retracted.lock_id, retracted.removed) == (replaced_id, True)
    emitted = await next_event(stream)
    assert (emitted.lock_id, emitted.removed) == (replacement_id, False)
    with pytest.raises(TimeoutError):  # emitted once, nothing else
        await next_event(stream, timeout=1.0)
    absent = await chain_base.GetLock(chain_pb2.GetLockRequest(lock_id=replaced_id))
    assert absent.lock.state == chain_pb2.LOCK_STATE_ABSENT


async def test_prepare_maker_lock_returns_the_order_a_wallet_signs(
    chain_base: chain_pb2_grpc.ChainServiceStub, base_chain: EvmDeployment, w3: Web3
) -> None:
    secret = os.urandom(32)
    terms = chain_pb2.LockTerms(
        token=base_chain.token,
        amount=str(AMOUNT),
        hashlock=sha256_hashlock(secret),
        timelocks=timelocks(),
        safety_deposit=str(DEPOSIT),
    )
    deadline = int(w3.eth.get_block("latest")["timestamp"]) + 600
    nonce = str(next(_salts))
    prepared = await chain_base.PrepareMakerLock(
        chain_pb2.PrepareMakerLockRequest(
            terms=terms, maker=base_chain.maker.address, nonce=nonce, deadline=deadline, dst_terms_hash=b"\x07" * 32
        )
    )
    action = prepared.sign_order
    assert (action.spender, action.allowance) == (base_chain.escrow_src, str(AMOUNT))
    typed = json.loads(action.typed_data_json)
    signature = Account.sign_message(encode_typed_data(full_message=typed), base_chain.maker.private_key).signature

    created = await chain_base.CreateLock(
        chain_pb2.CreateLockRequest(
            terms=terms,
            maker_order=chain_pb2.MakerOrder(
                maker=base_chain.maker.address,
                nonce=nonce,
                deadline=deadline,
                dst_terms_hash=b"\x07" * 32,
                signature=bytes(signature),
            ),
        )
    )
    assert created.lock.lock_id == prepared.lock_id
    assert created.lock.terms.beneficiary == base_chain.resolver.address

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await chain_base.PrepareMakerLock(
            chain_pb2.PrepareMakerLockRequest(terms=terms, maker="0xnope", nonce=nonce, deadline=deadline)
        )
    assert field_violation(err.value) == "maker"


async def test_resolver_tx_reorged_out_leaves_no_nonce_gap(
    chain_base: chain_pb2_grpc.ChainServiceStub, base_chain: EvmDeployment, w3: Web3
) -> None:
    """A lock the service already reported is reorged out of the chain: its nonce is free again while the
    service has moved past it. The next lock must still land (the service fills the gap)."""
    resolver = base_chain.resolver.address
    first = await chain_base.CreateLock(dst_request(base_chain, sha256_hashlock(os.urandom(32))))
    assert first.sent
    nonce_after_first = w3.eth.get_transaction_count(resolver)
    reorg = w3.provider.make_request(RPCEndpoint("anvil_reorg"), [1, []])
    assert "error" not in reorg, reorg
    if w3.eth.get_transaction_count(resolver) == nonce_after_first:
        pytest.skip("this anvil re-mined the reorged transaction; no gap to fill")
    gone = await chain_base.GetLock(chain_pb2.GetLockRequest(lock_id=first.lock.lock_id))
    assert gone.lock.state == chain_pb2.LOCK_STATE_ABSENT

    second = await asyncio.wait_for(
        chain_base.CreateLock(dst_request(base_chain, sha256_hashlock(os.urandom(32)))), timeout=30
    )
    assert second.lock.state == chain_pb2.LOCK_STATE_ACTIVE
    assert w3.eth.get_transaction_count(resolver) == w3.eth.get_transaction_count(resolver, "pending")


def withdrawals_sent(w3: Web3, escrow: str, escrow_id: bytes, first: int, last: int) -> int:
    """Transactions calling withdraw(escrow_id, ...) on `escrow` in blocks first..last, reverted ones included."""
    selector = bytes(Web3.keccak(text="withdraw(bytes32,bytes32)")[:4])
    count = 0
    for number in range(first, last + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            assert not isinstance(tx, bytes)
            data = bytes(tx["input"])
            count += tx["to"] == escrow and data[:4] == selector and data[4:36] == escrow_id
    return count


async def test_a_withdrawal_in_flight_when_the_service_is_killed_is_sent_once(
    base_chain: EvmDeployment, w3: Web3, redis_url: str, redis_prefix: str, tmp_path: Any
) -> None:
    """The withdrawal waits in the mempool (no block is mined) when chain-base is killed. Asked again, the
    restarted service finds the transaction in its send journal (Redis) and waits for it instead of signing a
    second one: one withdrawal on chain, one nonce used, the receiver paid once."""
    env = {
        **chain_base_env(base_chain),
        "CHAIN_BASE_REDIS_URL": redis_url,
        "CHAIN_BASE_REDIS_PREFIX": redis_prefix,
    }
    first_life = ServiceProcess("chain-base-journal", "chain_base.main", env, tmp_path)
    env["CHAIN_BASE_PORT"] = str(first_life.port)
    resolver = base_chain.resolver.address
    secret = os.urandom(32)
    with first_life:
        async with first_life.channel() as channel:
            stub = chain_pb2_grpc.ChainServiceStub(channel)
            created = await stub.CreateLock(dst_request(base_chain, sha256_hashlock(secret)))
            escrow_id = bytes.fromhex(created.lock.lock_id.removeprefix("0x"))
            increase_time(w3, 10)
            receiver_before = tusd(w3, base_chain, base_chain.receiver.address)
            first = w3.eth.block_number + 1
            nonce_before = w3.eth.get_transaction_count(resolver)
            w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [False])
            try:
                request = chain_pb2.WithdrawRequest(lock_id=created.lock.lock_id, secret=secret)
                with pytest.raises(grpc.aio.AioRpcError) as gave_up:
                    await stub.Withdraw(request, timeout=1.5)
                assert gave_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert w3.eth.get_transaction_count(resolver, "pending") == nonce_before + 1
                first_life.kill()
                with ServiceProcess(
                    "chain-base-journal-2", "chain_base.main", env, tmp_path, port=first_life.port
                ) as second:
                    async with second.channel() as channel2:
                        retried = asyncio.ensure_future(
                            chain_pb2_grpc.ChainServiceStub(channel2).Withdraw(request, timeout=60)
                        )
                        await asyncio.sleep(2.0)  # it must wait on the pending one, not sign another
                        assert w3.eth.get_transaction_count(resolver, "pending") == nonce_before + 1
                        w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [True])
                        for _ in range(200):
                            if retried.done():
                                break
                            mine(w3)
                            await asyncio.sleep(0.05)
                        reply = await asyncio.wait_for(retried, 20)
            finally:
                w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [True])
    assert reply.lock.state == chain_pb2.LOCK_STATE_WITHDRAWN
    assert w3.eth.get_transaction_count(resolver) == nonce_before + 1
    assert withdrawals_sent(w3, base_chain.escrow_dst, escrow_id, first, w3.eth.block_number) == 1
    assert tusd(w3, base_chain, base_chain.receiver.address) == receiver_before + AMOUNT
