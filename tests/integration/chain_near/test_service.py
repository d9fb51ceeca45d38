"""chain-near over gRPC against a real NEAR devnet: native and NEP-141 locks, final events, withdrawals,
refunds, bad input, idempotent repeats, the maker's own lock and concurrency, each checked on chain."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from py_near.account import Account
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap_devnet.near import NEAR, NearDevnetProcess, lock_id_for
from swap_devnet.procs import ServiceProcess

from tests.integration.chain_near.helpers import STORAGE_FEE, htlc_storage
from tests.integration.chain_streams import EventStream, next_event
from tests.integration.rich_status import error_reason, field_violation

pytestmark = pytest.mark.integration

NATIVE_AMOUNT = NEAR // 2
TOKEN_AMOUNT = 25_000_000  # 25 TUSD (6 decimals)
DEPOSIT = NEAR // 100  # safety deposit, yoctoNEAR
# More than any one of these transactions burns in gas (a few TGas at 10^8 yoctoNEAR per gas).
GAS_BOUND = NEAR // 100
_salts = itertools.count(int.from_bytes(os.urandom(4), "big") * 1000)

Stub = chain_pb2_grpc.ChainServiceStub


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def timelocks(withdrawal: int = 10, public: int = 20, cancel: int = 100, public_cancel: int = 200) -> Any:
    return common_pb2.Timelocks(
        withdrawal_after_s=withdrawal,
        public_withdrawal_after_s=public,
        cancellation_after_s=cancel,
        public_cancellation_after_s=public_cancel,
    )


def lock_request(
    devnet: NearDevnetProcess, hashlock: bytes, *, token: str = "native", amount: int = NATIVE_AMOUNT
) -> Any:
    return chain_pb2.CreateLockRequest(
        terms=chain_pb2.LockTerms(
            token=token,
            amount=str(amount),
            hashlock=hashlock,
            timelocks=timelocks(),
            beneficiary=devnet.receiver.account_id,
            safety_deposit=str(DEPOSIT),
        ),
        resolver=chain_pb2.ResolverFunding(salt=str(next(_salts))),
    )


@pytest.fixture
async def watch(chain_near: Stub) -> AsyncIterator[Callable[..., EventStream]]:
    streams: list[EventStream] = []

    def open_stream(lock_id: str = "", cursor: str = "") -> EventStream:
        stream = EventStream(chain_near.WatchEvents(chain_pb2.WatchEventsRequest(lock_id=lock_id, cursor=cursor)))
        streams.append(stream)
        return stream

    yield open_stream
    for stream in streams:
        stream.close()


async def test_chain_info(chain_near: Stub, chain_near_devnet: NearDevnetProcess) -> None:
    info = await chain_near.GetChainInfo(chain_pb2.GetChainInfoRequest())
    assert info.chain == common_pb2.CHAIN_NEAR
    assert info.chain_id == chain_near_devnet.chain_id == "localnet"
    assert info.resolver == chain_near_devnet.resolver.account_id
    assert info.escrow_src == info.escrow_dst == chain_near_devnet.htlc.account_id
    assert info.head_block > 0 and info.chain_time > 0
    balance = await chain_near.GetBalance(
        chain_pb2.GetBalanceRequest(
            account=chain_near_devnet.maker.account_id, token=chain_near_devnet.token.account_id
        )
    )
    assert int(balance.balance) == await chain_near_devnet.atoken_balance(chain_near_devnet.maker.account_id)
    native = await chain_near.GetBalance(
        chain_pb2.GetBalanceRequest(account=chain_near_devnet.htlc.account_id, token="native")
    )
    assert int(native.balance) == await chain_near_devnet.abalance(chain_near_devnet.htlc.account_id)


async def test_native_lock_watch_withdraw(
    chain_near: Stub, chain_near_devnet: NearDevnetProcess, watch: Callable[..., EventStream]
) -> None:
    devnet = chain_near_devnet
    resolver, receiver = devnet.resolver.account_id, devnet.receiver.account_id
    secret = os.urandom(32)
    request = lock_request(devnet, sha256(secret))
    resolver_before = await devnet.abalance(resolver)

    created = await chain_near.CreateLock(request)
    lock = created.lock
    assert created.sent and lock.state == chain_pb2.LOCK_STATE_ACTIVE
    assert lock.lock_id == lock_id_for(resolver, request.resolver.salt)
    assert (lock.depositor, lock.operator, lock.terms.beneficiary) == (resolver, resolver, receiver)
    assert lock.terms.token == "native" and lock.terms.amount == str(NATIVE_AMOUNT)
    assert lock.terms.timelocks == request.terms.timelocks
    assert lock.withdrawal_at == lock.locked_at + 10 and lock.public_cancellation_at == lock.locked_at + 200
    assert lock.created.tx_hash and lock.created.block_number and lock.created.block_hash
    spent = resolver_before - await devnet.abalance(resolver)
    # The lock takes amount, safety deposit and the HTLC's storage fee (most of it comes back when it ends).
    assert NATIVE_AMOUNT + DEPOSIT + STORAGE_FEE <= spent < NATIVE_AMOUNT + DEPOSIT + STORAGE_FEE + GAS_BOUND

    # Repeating the request finds the lock and sends nothing.
    resolver_after_lock = await devnet.abalance(resolver)
    again = await chain_near.CreateLock(request)
    assert not again.sent and again.lock.lock_id == lock.lock_id
    assert again.lock.created.tx_hash == lock.created.tx_hash
    assert await devnet.abalance(resolver) == resolver_after_lock

    stream = watch(lock_id=lock.lock_id)
    event = await next_event(stream)
    assert event.kind == chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED and not event.removed
    assert event.tx.tx_hash == lock.created.tx_hash
    assert event.tx.block_number == lock.created.block_number
    assert event.confirmations >= 1
    assert event.lock.terms == lock.terms and event.lock.locked_at == lock.locked_at
    final = await chain_near.GetLock(chain_pb2.GetLockRequest(lock_id=lock.lock_id))
    assert final.lock.final and final.lock.confirmations >= 1

    wrong_secret = os.urandom(32)
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await chain_near.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock.lock_id, secret=wrong_secret))
    assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(wrong.value) == "secret"
    assert wrong_secret.hex() not in (wrong.value.details() or "")
    assert secret.hex() not in (wrong.value.details() or "")

    # A call the HTLC would refuse in the latest block is refused without sending a transaction (no gas spent).
    resolver_before_early = await devnet.abalance(resolver)
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await chain_near.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock.lock_id, secret=secret))
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(early.value) == "WINDOW_NOT_OPEN"
    assert "not opened" in (early.value.details() or "")
    assert secret.hex() not in (early.value.details() or "")
    assert await devnet.abalance(resolver) == resolver_before_early

    receiver_before = await devnet.abalance(receiver)
    await devnet.afast_forward(delta_seconds=10)
    done = await chain_near.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock.lock_id, secret=secret))
    assert done.sent and done.lock.state == chain_pb2.LOCK_STATE_WITHDRAWN
    assert done.lock.secret == secret
    assert done.tx.tx_hash and done.tx.block_number > lock.created.block_number
    assert await devnet.abalance(receiver) == receiver_before + NATIVE_AMOUNT

    again_withdraw = await chain_near.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock.lock_id, secret=secret))
    assert not again_withdraw.sent and again_withdraw.tx.tx_hash == done.tx.tx_hash
    assert await devnet.abalance(receiver) == receiver_before + NATIVE_AMOUNT

    withdrawn = await next_event(stream)
    assert withdrawn.kind == chain_pb2.CHAIN_EVENT_KIND_LOCK_WITHDRAWN
    assert withdrawn.secret == secret and withdrawn.tx.tx_hash == done.tx.tx_hash
    # The reply named the block from the event's block_height; the stream, from the HTLC's storage changes.
    assert (withdrawn.tx.block_number, withdrawn.tx.block_hash) == (done.tx.block_number, done.tx.block_hash)

    # A stream resumed from the first event's cursor starts right after it.
    resumed = watch(lock_id=lock.lock_id, cursor=event.cursor)
    assert (await next_event(resumed)).cursor == withdrawn.cursor

    # Cursors are "<height>:<n>": the n-th HTLC event of that block.
    def position(cursor: str) -> tuple[int, int]:
        height, ordinal = cursor.split(":")
        return int(height), int(ordinal)

    assert position(withdrawn.cursor) > position(event.cursor)
    assert position(event.cursor)[0] == event.tx.block_number


async def test_token_lock_withdraw(
    chain_near: Stub, chain_near_devnet: NearDevnetProcess, watch: Callable[..., EventStream]
) -> None:
    devnet = chain_near_devnet
    token = devnet.token.account_id
    resolver, receiver = devnet.resolver.account_id, devnet.receiver.account_id
    secret = os.urandom(32)
    request = lock_request(devnet, sha256(secret), token=token, amount=TOKEN_AMOUNT)
    resolver_tokens = await devnet.atoken_balance(resolver)
    receiver_tokens = await devnet.atoken_balance(receiver)

    created = await chain_near.CreateLock(request)
    assert created.sent and created.lock.terms.token == token
    assert created.lock.terms.safety_deposit == str(DEPOSIT)
    assert await devnet.atoken_balance(resolver) == resolver_tokens - TOKEN_AMOUNT
    assert await devnet.atoken_balance(devnet.htlc.account_id) >= TOKEN_AMOUNT

    again = await chain_near.CreateLock(request)
    assert not again.sent and again.lock.lock_id == created.lock.lock_id
    assert await devnet.atoken_balance(resolver) == resolver_tokens - TOKEN_AMOUNT

    event = await next_event(watch(lock_id=created.lock.lock_id))
    assert event.kind == chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED
    assert event.lock.terms.token == token and event.tx.tx_hash == created.lock.created.tx_hash

    await devnet.afast_forward(delta_seconds=10)
    done = await chain_near.Withdraw(chain_pb2.WithdrawRequest(lock_id=created.lock.lock_id, secret=secret))
    assert done.sent and done.lock.state == chain_pb2.LOCK_STATE_WITHDRAWN
    assert await devnet.atoken_balance(receiver) == receiver_tokens + TOKEN_AMOUNT

    again_withdraw = await chain_near.Withdraw(chain_pb2.WithdrawRequest(lock_id=created.lock.lock_id, secret=secret))
    assert not again_withdraw.sent and again_withdraw.tx.tx_hash == done.tx.tx_hash
    assert await devnet.atoken_balance(receiver) == receiver_tokens + TOKEN_AMOUNT


@pytest.mark.parametrize("kind", ["native", "token"])
async def test_refund_after_timeout(chain_near: Stub, chain_near_devnet: NearDevnetProcess, kind: str) -> None:
    devnet = chain_near_devnet
    resolver = devnet.resolver.account_id
    token = devnet.token.account_id if kind == "token" else "native"
    amount = TOKEN_AMOUNT if kind == "token" else NATIVE_AMOUNT
    tokens_before = await devnet.atoken_balance(resolver)
    created = await chain_near.CreateLock(lock_request(devnet, sha256(os.urandom(32)), token=token, amount=amount))
    lock_id = created.lock.lock_id

    native_before_early = await devnet.abalance(resolver)
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await chain_near.Cancel(chain_pb2.CancelRequest(lock_id=lock_id))
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(early.value) == "WINDOW_NOT_OPEN"
    assert "not opened" in (early.value.details() or "")
    assert await devnet.abalance(resolver) == native_before_early  # refused before sending: no gas burnt

    await devnet.afast_forward(delta_seconds=100)
    native_before = await devnet.abalance(resolver)
    cancelled = await chain_near.Cancel(chain_pb2.CancelRequest(lock_id=lock_id))
    assert cancelled.sent and cancelled.lock.state == chain_pb2.LOCK_STATE_CANCELLED
    assert cancelled.tx.tx_hash
    native_after = await devnet.abalance(resolver)
    if kind == "token":
        assert await devnet.atoken_balance(resolver) == tokens_before
        # The caller who completes the refund earns the safety deposit.
        assert native_after > native_before + DEPOSIT - GAS_BOUND
    else:
        assert native_after > native_before + NATIVE_AMOUNT + DEPOSIT - GAS_BOUND

    again = await chain_near.Cancel(chain_pb2.CancelRequest(lock_id=lock_id))
    assert not again.sent and again.tx.tx_hash == cancelled.tx.tx_hash
    assert await devnet.abalance(resolver) == native_after

    with pytest.raises(grpc.aio.AioRpcError) as closed:
        await chain_near.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=os.urandom(32)))
    assert closed.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_maker_locks_directly(chain_near: Stub, chain_near_devnet: NearDevnetProcess) -> None:
    """On NEAR the maker makes the source lock from their own account (PrepareMakerLock says how); the
    service reads it back and the resolver withdraws it with the secret."""
    devnet = chain_near_devnet
    maker, resolver = devnet.maker, devnet.resolver.account_id
    secret = os.urandom(32)
    terms = chain_pb2.LockTerms(
        token="native", amount=str(NATIVE_AMOUNT), hashlock=sha256(secret), timelocks=timelocks(withdrawal=0)
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await chain_near.CreateLock(
            chain_pb2.CreateLockRequest(terms=terms, maker_order=chain_pb2.MakerOrder(maker=maker.account_id))
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(refused.value) == "MAKER_LOCKS_DIRECTLY"

    # The order deadline goes into the lock's terms: the HTLC refuses the lock if it lands after it.
    now = (await chain_near.GetChainInfo(chain_pb2.GetChainInfoRequest())).chain_time
    late = chain_pb2.PrepareMakerLockRequest(terms=terms, maker=maker.account_id, nonce=str(next(_salts)))
    late.deadline = now - 1
    refused = await maker_calls(devnet, (await chain_near.PrepareMakerLock(late)).near_call, ok=False)
    assert f"lock deadline passed: {(now - 1) * 10**9}" in str(refused.status)

    nonce = str(next(_salts))
    prepared = await chain_near.PrepareMakerLock(
        chain_pb2.PrepareMakerLockRequest(terms=terms, maker=maker.account_id, nonce=nonce, deadline=now + 600)
    )
    call = prepared.near_call
    assert prepared.lock_id == lock_id_for(maker.account_id, nonce)
    deposit = str(NATIVE_AMOUNT + STORAGE_FEE)  # amount + safety deposit (none) + the HTLC's storage fee
    assert (call.contract, call.method, call.deposit) == (devnet.htlc.account_id, "lock_native", deposit)
    assert json.loads(call.args_json)["deadline"] == str((now + 600) * 10**9)
    absent = await chain_near.GetLock(chain_pb2.GetLockRequest(lock_id=prepared.lock_id))
    assert absent.lock.state == chain_pb2.LOCK_STATE_ABSENT

    result = await maker_calls(devnet, call)
    adopted = await final_lock(chain_near, prepared.lock_id)
    assert adopted.state == chain_pb2.LOCK_STATE_ACTIVE
    assert (adopted.depositor, adopted.operator, adopted.terms.beneficiary) == (maker.account_id, resolver, resolver)
    assert adopted.created.tx_hash == result.transaction.hash

    resolver_before = await devnet.abalance(resolver)
    done = await chain_near.Withdraw(chain_pb2.WithdrawRequest(lock_id=prepared.lock_id, secret=secret))
    assert done.sent and done.lock.state == chain_pb2.LOCK_STATE_WITHDRAWN
    assert await devnet.abalance(resolver) > resolver_before + NATIVE_AMOUNT - GAS_BOUND


async def test_maker_token_lock_prepays_the_deposit(chain_near: Stub, chain_near_devnet: NearDevnetProcess) -> None:
    """A NEP-141 source lock: PrepareMakerLock gives the ft_transfer_call that makes the lock and, while the
    maker's prepaid NEAR on the HTLC falls short of the storage fee and safety deposit, the deposit_native
    top-up to make first."""
    devnet = chain_near_devnet
    maker, token = devnet.maker, devnet.token.account_id
    request = chain_pb2.PrepareMakerLockRequest(
        terms=chain_pb2.LockTerms(
            token=token,
            amount=str(TOKEN_AMOUNT),
            hashlock=sha256(os.urandom(32)),
            timelocks=timelocks(),
            safety_deposit=str(DEPOSIT),
        ),
        maker=maker.account_id,
        nonce=str(next(_salts)),
    )
    prepared = await chain_near.PrepareMakerLock(request)
    # The storage fee and the safety deposit come from NEAR prepaid on the HTLC: the top-up comes first.
    top_up = prepared.near_prepay
    assert (top_up.contract, top_up.method) == (devnet.htlc.account_id, "deposit_native")
    assert int(top_up.deposit) == DEPOSIT + STORAGE_FEE
    assert (prepared.near_call.contract, prepared.near_call.method) == (token, "ft_transfer_call")
    await maker_calls(devnet, top_up)
    again = await chain_near.PrepareMakerLock(request)
    assert again.lock_id == prepared.lock_id and not again.HasField("near_prepay")
    assert again.near_call == prepared.near_call
    tokens_before = await devnet.atoken_balance(maker.account_id)
    await maker_calls(devnet, prepared.near_call)
    assert await devnet.atoken_balance(maker.account_id) == tokens_before - TOKEN_AMOUNT
    lock = await final_lock(chain_near, prepared.lock_id)
    assert (lock.depositor, lock.terms.token, lock.terms.safety_deposit) == (maker.account_id, token, str(DEPOSIT))


async def maker_calls(devnet: NearDevnetProcess, call: chain_pb2.NearCall, *, ok: bool = True) -> Any:
    """The maker makes the call PrepareMakerLock described, with py-near from their own account."""
    account = Account(devnet.maker.account_id, devnet.maker.private_key, devnet.rpc_url)
    await account.startup()
    try:
        result = await account.function_call(
            call.contract, call.method, json.loads(call.args_json), gas=call.gas, amount=int(call.deposit)
        )
    finally:
        await account.shutdown()
    assert ("SuccessValue" in result.status) is ok, result.status
    return result


async def final_lock(chain_near: Stub, lock_id: str) -> chain_pb2.Lock:
    """The lock once final (the service names a lock's transaction from the final event log)."""
    for _ in range(100):
        lock: chain_pb2.Lock = (await chain_near.GetLock(chain_pb2.GetLockRequest(lock_id=lock_id))).lock
        if lock.final:
            return lock
        await asyncio.sleep(0.05)
    raise AssertionError(f"lock {lock_id} not final")


def _mutations(devnet: NearDevnetProcess) -> list[tuple[str, Callable[[Any], None]]]:
    def terms(**changes: Any) -> Callable[[Any], None]:
        def apply(req: Any) -> None:
            for key, value in changes.items():
                setattr(req.terms, key, value)

        return apply

    def unordered_timelocks(req: Any) -> None:
        req.terms.timelocks.CopyFrom(timelocks(withdrawal=50, public=20))

    def no_timelocks(req: Any) -> None:
        req.terms.ClearField("timelocks")

    def salt(value: str) -> Callable[[Any], None]:
        def apply(req: Any) -> None:
            req.resolver.salt = value

        return apply

    return [
        ("terms.beneficiary", terms(beneficiary="Receiver!")),
        ("terms.beneficiary", terms(beneficiary="")),
        ("terms.beneficiary", terms(beneficiary="a")),
        ("terms.beneficiary", terms(beneficiary="nobody-here.test.near")),  # valid id, no such account
        ("terms.amount", terms(amount="0")),
        ("terms.amount", terms(amount="-5")),
        ("terms.amount", terms(amount="1e6")),
        ("terms.amount", terms(amount="")),
        ("terms.amount", terms(amount=str(2**128))),
        ("terms.token", terms(token="USDC")),
        ("terms.token", terms(token="nobody-here.test.near")),  # no such account
        ("terms.token", terms(token=devnet.receiver.account_id)),  # an account without a token contract
        ("terms.hashlock", terms(hashlock=b"\x01" * 31)),
        ("terms.safety_deposit", terms(safety_deposit="0.5")),
        ("terms.timelocks.public_withdrawal_after_s", unordered_timelocks),
        ("terms.timelocks", no_timelocks),
        ("resolver.salt", salt("-1")),
        ("resolver.salt", salt("9" * 65)),
    ]


async def test_bad_input_names_the_field_and_sends_nothing(
    chain_near: Stub, chain_near_devnet: NearDevnetProcess
) -> None:
    devnet = chain_near_devnet
    resolver = devnet.resolver.account_id
    balance = await devnet.abalance(resolver)
    stored = await htlc_storage(devnet)
    for field, mutate in _mutations(devnet):
        request = lock_request(devnet, sha256(os.urandom(32)))
        mutate(request)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await chain_near.CreateLock(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.value.details())
        assert field_violation(err.value) == field, (field, err.value.details())
    # A BASE-shaped lock id is not a NEAR one (the refusals every chain shares: the conformance suite).
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await chain_near.GetLock(chain_pb2.GetLockRequest(lock_id="0x" + "ab" * 32))
    assert field_violation(err.value) == "lock_id"
    assert await devnet.abalance(resolver) == balance
    assert await htlc_storage(devnet) == stored


async def test_rpc_outage_is_unavailable(tmp_path: Path) -> None:
    """With the node gone, calls retry and then answer UNAVAILABLE; the service itself stays up."""
    with NearDevnetProcess(out=tmp_path / "near.json", log_dir=tmp_path) as devnet:
        env = {
            **devnet.deployment.chain_near_settings(),
            "CHAIN_NEAR_RPC_ATTEMPTS": "2",
            "CHAIN_NEAR_SIGNER_KEYS": "1",
        }
        proc = ServiceProcess("chain-near-outage", "chain_near.main", env, tmp_path)
        env["CHAIN_NEAR_PORT"] = str(proc.port)
        with proc:
            async with grpc.aio.insecure_channel(proc.address) as channel:
                stub = chain_pb2_grpc.ChainServiceStub(channel)
                assert (await stub.GetChainInfo(chain_pb2.GetChainInfoRequest())).chain_id == "localnet"
                devnet.stop()
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.GetChainInfo(chain_pb2.GetChainInfoRequest())
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
                assert error_reason(err.value) == "CHAIN_RPC_UNAVAILABLE"
                assert proc.returncode is None


def withdrawals_sent(devnet: NearDevnetProcess, lock_id: str, first: int, last: int) -> int:
    """Withdraw calls for `lock_id` in the transactions of blocks first..last."""
    count = 0
    for height in range(first, last + 1):
        try:
            chunk = devnet.rpc("chunk", {"block_id": height, "shard_id": 0})
        except Exception:  # a height skipped by a fast-forward has no block
            continue
        for tx in chunk["transactions"]:
            for action in tx["actions"]:
                call = action.get("FunctionCall") if isinstance(action, dict) else None
                if call and call["method_name"] == "withdraw":
                    count += json.loads(base64.b64decode(call["args"]))["lock_id"] == lock_id
    return count


async def test_a_withdrawal_retried_while_in_flight_is_sent_once(
    chain_near: Stub, chain_near_devnet: NearDevnetProcess
) -> None:
    """The saga's deadline passes while the withdrawal waits for a block (a stalled chain) and it asks again:
    the second request joins the transaction in flight instead of sending another, which would fail on chain
    and burn the resolver's gas."""
    devnet = chain_near_devnet
    secret = os.urandom(32)
    created = await chain_near.CreateLock(lock_request(devnet, sha256(secret)))
    await devnet.afast_forward(delta_seconds=10)
    first = int(devnet.block()["header"]["height"])
    devnet.stall_blocks(4)
    request = chain_pb2.WithdrawRequest(lock_id=created.lock.lock_id, secret=secret)
    with pytest.raises(grpc.aio.AioRpcError) as gave_up:
        await chain_near.Withdraw(request, timeout=1.0)
    assert gave_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    retried = await chain_near.Withdraw(request, timeout=30)
    assert retried.sent and retried.lock.state == chain_pb2.LOCK_STATE_WITHDRAWN
    await devnet.afast_forward(delta_height=1)
    last = int(devnet.block()["header"]["height"])
    assert withdrawals_sent(devnet, created.lock.lock_id, first, last) == 1


async def test_a_withdrawal_in_flight_when_the_service_is_killed_is_sent_once(
    chain_near_devnet: NearDevnetProcess, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """The withdrawal waits for a block (a stalled chain) when chain-near is killed. Asked again, the restarted
    service finds the transaction in its send journal (Redis) and waits for it instead of signing a second
    one: one withdrawal on chain, and the lock is withdrawn."""
    devnet = chain_near_devnet
    env = {
        **devnet.deployment.chain_near_settings(),
        "CHAIN_NEAR_POLL_INTERVAL_S": "0.05",
        "CHAIN_NEAR_SIGNER_KEYS": "2",
        "CHAIN_NEAR_REDIS_URL": redis_url,
        "CHAIN_NEAR_REDIS_PREFIX": redis_prefix,
    }
    first_life = ServiceProcess("chain-near-journal", "chain_near.main", env, tmp_path)
    env["CHAIN_NEAR_PORT"] = str(first_life.port)
    secret = os.urandom(32)
    with first_life:
        async with first_life.channel() as channel:
            stub = chain_pb2_grpc.ChainServiceStub(channel)
            created = await stub.CreateLock(lock_request(devnet, sha256(secret)))
            lock_id = created.lock.lock_id
            await devnet.afast_forward(delta_seconds=10)
            first = int(devnet.block()["header"]["height"])
            devnet.stall_blocks(6)
            request = chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret)
            with pytest.raises(grpc.aio.AioRpcError) as gave_up:
                await stub.Withdraw(request, timeout=1.5)
            assert gave_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        first_life.kill()
    with ServiceProcess("chain-near-journal-2", "chain_near.main", env, tmp_path, port=first_life.port) as second_life:
        async with second_life.channel() as channel:
            stub = chain_pb2_grpc.ChainServiceStub(channel)
            retried = await stub.Withdraw(request, timeout=60)
    assert retried.lock.state == chain_pb2.LOCK_STATE_WITHDRAWN
    await devnet.afast_forward(delta_height=1)
    last = int(devnet.block()["header"]["height"])
    assert withdrawals_sent(devnet, lock_id, first, last) == 1
    lock = await devnet.aview(devnet.htlc.account_id, "get_lock", {"lock_id": lock_id})
    assert lock["state"] == "withdrawn"


def _first_life(devnet: NearDevnetProcess, tmp_path: Path, name: str) -> tuple[ServiceProcess, dict[str, str]]:
    """A chain-near process to restart, and the settings a second life on the same port starts with."""
    env = {**devnet.deployment.chain_near_settings(), "CHAIN_NEAR_POLL_INTERVAL_S": "0.05"}
    first_life = ServiceProcess(name, "chain_near.main", env, tmp_path)
    env["CHAIN_NEAR_PORT"] = str(first_life.port)
    return first_life, env


async def test_a_restarted_service_reads_what_came_before_it_from_the_chain(
    chain_near_devnet: NearDevnetProcess, tmp_path: Path
) -> None:
    """chain-near follows the HTLC from when it starts; what came before it is read from the chain on demand.
    After a restart: GetLock still names the transaction that made a lock, a stream of that lock without a
    cursor starts at its creation, and a stream resumed from a cursor of the first life misses and repeats
    nothing (a lock made in between, and one made after the restart, each come once)."""
    devnet = chain_near_devnet
    first_life, env = _first_life(devnet, tmp_path, "chain-near-history")
    with first_life:
        async with first_life.channel() as channel:
            stub = chain_pb2_grpc.ChainServiceStub(channel)
            before = (await stub.CreateLock(lock_request(devnet, sha256(os.urandom(32))))).lock
            stream = EventStream(stub.WatchEvents(chain_pb2.WatchEventsRequest(lock_id=before.lock_id)))
            try:
                seen = await next_event(stream)
            finally:
                stream.close()
            between = (await stub.CreateLock(lock_request(devnet, sha256(os.urandom(32))))).lock
    await devnet.afast_forward(delta_height=1)
    with ServiceProcess("chain-near-history-2", "chain_near.main", env, tmp_path, port=first_life.port) as second_life:
        async with second_life.channel() as channel:
            stub = chain_pb2_grpc.ChainServiceStub(channel)
            after = (await stub.CreateLock(lock_request(devnet, sha256(os.urandom(32))))).lock
            read = (await stub.GetLock(chain_pb2.GetLockRequest(lock_id=before.lock_id))).lock
            assert read.created.tx_hash == before.created.tx_hash
            assert read.created.block_number == before.created.block_number

            own = EventStream(stub.WatchEvents(chain_pb2.WatchEventsRequest(lock_id=before.lock_id)))
            resumed = EventStream(stub.WatchEvents(chain_pb2.WatchEventsRequest(cursor=seen.cursor)))
            try:
                again = await next_event(own)
                assert (again.cursor, again.tx.tx_hash) == (seen.cursor, before.created.tx_hash)
                assert again.lock.terms == before.terms
                got = [await next_event(resumed), await next_event(resumed)]
            finally:
                own.close()
                resumed.close()
    assert [(e.kind, e.lock_id) for e in got] == [
        (chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED, between.lock_id),
        (chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED, after.lock_id),
    ]
    assert got[0].tx.tx_hash == between.created.tx_hash


async def test_a_lock_that_ended_before_a_restart_reads_as_final(
    chain_near_devnet: NearDevnetProcess, tmp_path: Path
) -> None:
    """A lock withdrawn before chain-near restarted: the new life saw no event of the withdrawal, yet GetLock
    says the withdrawal is final (the final state shows it), so a session waiting for it can end."""
    devnet = chain_near_devnet
    first_life, env = _first_life(devnet, tmp_path, "chain-near-ended")
    secret = os.urandom(32)
    with first_life:
        async with first_life.channel() as channel:
            stub = chain_pb2_grpc.ChainServiceStub(channel)
            lock_id = (await stub.CreateLock(lock_request(devnet, sha256(secret)))).lock.lock_id
            await devnet.afast_forward(delta_seconds=10)
            await stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret))
        first_life.kill()
    await devnet.afast_forward(delta_height=2)
    with ServiceProcess("chain-near-ended-2", "chain_near.main", env, tmp_path, port=first_life.port) as second_life:
        async with second_life.channel() as channel:
            stub = chain_pb2_grpc.ChainServiceStub(channel)
            read = (await stub.GetLock(chain_pb2.GetLockRequest(lock_id=lock_id))).lock
    assert read.state == chain_pb2.LOCK_STATE_WITHDRAWN and read.secret == secret
    assert read.closed_confirmations >= 1, "the withdrawal is final"


async def test_streams_resume_across_a_restart_of_the_node(tmp_path: Path) -> None:
    """The NEAR node restarts on its data (as a node does for an upgrade) while chain-near runs: a stream
    that stays open and a stream resumed from a cursor taken before the restart each get every later event
    once: none missed, none repeated."""
    with NearDevnetProcess(out=tmp_path / "node.json", log_dir=tmp_path, data=tmp_path / "near-data") as devnet:
        first_life, _ = _first_life(devnet, tmp_path, "chain-near-node-restart")
        with first_life:
            async with first_life.channel() as channel:
                stub = chain_pb2_grpc.ChainServiceStub(channel)
                secret = os.urandom(32)
                request = lock_request(devnet, sha256(secret))
                request.terms.timelocks.withdrawal_after_s = 0
                a = (await stub.CreateLock(request)).lock
                live = EventStream(stub.WatchEvents(chain_pb2.WatchEventsRequest()))
                resumed: EventStream | None = None
                try:
                    seen = await next_event(live)
                    assert (seen.kind, seen.lock_id) == (chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED, a.lock_id)
                    height = int(devnet.block()["header"]["height"])

                    await asyncio.to_thread(devnet.restart)
                    assert int(devnet.block()["header"]["height"]) >= height, "the chain goes on from its head"

                    b = (await stub.CreateLock(lock_request(devnet, sha256(os.urandom(32))))).lock
                    await stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=a.lock_id, secret=secret))
                    resumed = EventStream(stub.WatchEvents(chain_pb2.WatchEventsRequest(cursor=seen.cursor)))
                    after = [(e.kind, e.lock_id) for e in [await next_event(live), await next_event(live)]]
                    again = [(e.kind, e.lock_id) for e in [await next_event(resumed), await next_event(resumed)]]
                    with pytest.raises(TimeoutError):
                        await next_event(live, timeout=1.0)  # nothing more: no event came twice
                finally:
                    live.close()
                    if resumed is not None:
                        resumed.close()
    expected = [
        (chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED, b.lock_id),
        (chain_pb2.CHAIN_EVENT_KIND_LOCK_WITHDRAWN, a.lock_id),
    ]
    assert after == expected and again == expected
