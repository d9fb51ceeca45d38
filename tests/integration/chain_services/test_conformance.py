"""The ChainService contract, the same for every chain: each case runs against chain-base on anvil and
chain-near on the NEAR devnet, as a session replica sees them. Fencing tokens on chain actions, refused input
that names its field and sends nothing, and event streams without head ticks. What only one chain has (an
EIP-712 maker order, a maker's own NEAR lock, reorgs, the NEAR node's finality) stays in its own tests."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap_devnet.evm import EvmDeployment, increase_time, mine
from swap_devnet.faults import TcpProxy
from swap_devnet.near import NEAR, NearDevnetProcess
from swap_devnet.procs import ServiceProcess
from web3 import Web3

from tests.fixtures.services import chain_base_env
from tests.integration.chain_near.helpers import STORAGE_FEE, htlc_storage
from tests.integration.chain_streams import EventStream, next_event, next_item
from tests.integration.rich_status import error_reason, field_violation

pytestmark = pytest.mark.integration

Stub = chain_pb2_grpc.ChainServiceStub
_salts = itertools.count(int.from_bytes(os.urandom(4), "big") * 1000 + 7)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def fence(key: str, epoch: int | str) -> tuple[tuple[str, str], ...]:
    return (("x-fence-key", key), ("x-fence-epoch", str(epoch)))


@dataclass
class ChainUnderTest:
    """One chain service and what a test needs of its chain: a lock it can make, the chain's clock, and every
    effect of the resolver's account (balances, nonces, storage), read beside the service."""

    name: str
    stub: Stub
    token: str
    amount: int
    deposit: int
    receiver: str
    advance: Callable[[int], Awaitable[None]]  # chain time forward, seconds, with a block carrying it
    blocks: Callable[[int], Awaitable[None]]  # new blocks, however the chain makes them
    effects: Callable[[], Awaitable[tuple[Any, ...]]]
    receiver_balance: Callable[[], Awaitable[int]]
    unknown_lock_id: str  # well formed, no lock there
    # The resolver's balance of the lock token, and what `n` locks may take from it: (least, less than).
    resolver_balance: Callable[[], Awaitable[int]]
    lock_cost: Callable[[int], tuple[int, int]]
    # A new process of the service with its chain's RPC at another URL (logs in a folder), and what its
    # GetChainInfo names as the escrow of destination locks.
    rpc_url: str
    another: Callable[[str, Path], ServiceProcess]
    contract: str

    def lock_request(self, hashlock: bytes | None = None) -> chain_pb2.CreateLockRequest:
        return chain_pb2.CreateLockRequest(
            terms=chain_pb2.LockTerms(
                token=self.token,
                amount=str(self.amount),
                hashlock=hashlock or sha256(os.urandom(32)),
                timelocks=common_pb2.Timelocks(
                    withdrawal_after_s=10,
                    public_withdrawal_after_s=20,
                    cancellation_after_s=100,
                    public_cancellation_after_s=200,
                ),
                beneficiary=self.receiver,
                safety_deposit=str(self.deposit),
            ),
            resolver=chain_pb2.ResolverFunding(salt=str(next(_salts))),
        )


def _base(stub: Stub, chain: EvmDeployment) -> ChainUnderTest:
    w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
    token = chain.token_contract(w3)
    resolver, receiver = chain.resolver.address, chain.receiver.address

    async def advance(seconds: int) -> None:
        increase_time(w3, seconds)

    async def blocks(count: int) -> None:
        mine(w3, count)

    async def effects() -> tuple[Any, ...]:
        return (
            w3.eth.get_transaction_count(resolver),
            w3.eth.get_transaction_count(resolver, "pending"),
            token.functions.balanceOf(resolver).call(),
            token.functions.balanceOf(receiver).call(),
        )

    async def receiver_balance() -> int:
        return int(token.functions.balanceOf(receiver).call())

    async def resolver_balance() -> int:
        return int(token.functions.balanceOf(resolver).call())

    return ChainUnderTest(
        "base",
        stub,
        chain.token,
        1_000_000,
        10**15,
        receiver,
        advance,
        blocks,
        effects,
        receiver_balance,
        "0x" + "ab" * 32,
        resolver_balance,
        # ERC-20 locks take exactly their amount (the safety deposit and the gas are ETH).
        lambda n: (n * 1_000_000, n * 1_000_000 + 1),
        chain.rpc_url,
        lambda rpc_url, logs: _process(
            "chain-base-late", "chain_base.main", {**chain_base_env(chain), "CHAIN_BASE_RPC_URL": rpc_url}, logs
        ),
        chain.escrow_dst,
    )


def _near(stub: Stub, devnet: NearDevnetProcess) -> ChainUnderTest:
    receiver = devnet.receiver.account_id

    async def advance(seconds: int) -> None:
        await devnet.afast_forward(delta_seconds=seconds)

    async def blocks(count: int) -> None:
        await devnet.afast_forward(delta_height=count)

    async def effects() -> tuple[Any, ...]:
        return (
            await devnet.abalance(devnet.resolver.account_id),
            await devnet.abalance(receiver),
            await htlc_storage(devnet),
        )

    async def receiver_balance() -> int:
        return await devnet.abalance(receiver)

    async def resolver_balance() -> int:
        return await devnet.abalance(devnet.resolver.account_id)

    amount, deposit = NEAR // 1000, NEAR // 100

    def lock_cost(n: int) -> tuple[int, int]:
        # A native lock takes its amount, the safety deposit and the HTLC's storage fee, plus gas.
        least = n * (amount + deposit + STORAGE_FEE)
        return least, least + n * NEAR // 100

    return ChainUnderTest(
        "near",
        stub,
        "native",
        amount,
        deposit,
        receiver,
        advance,
        blocks,
        effects,
        receiver_balance,
        "ab" * 32,
        resolver_balance,
        lock_cost,
        devnet.rpc_url,
        lambda rpc_url, logs: _process(
            "chain-near-late", "chain_near.main", devnet.deployment.chain_near_settings(rpc_url), logs
        ),
        devnet.htlc.account_id,
    )


def _process(name: str, module: str, env: dict[str, str], logs: Path) -> ServiceProcess:
    proc = ServiceProcess(name, module, env, logs, startup_timeout=60)
    env[f"{proc.prefix}PORT"] = str(proc.port)
    return proc


@pytest.fixture(params=["base", "near"])
def chain(request: pytest.FixtureRequest) -> ChainUnderTest:
    if request.param == "base":
        return _base(request.getfixturevalue("chain_base"), request.getfixturevalue("base_chain"))
    return _near(request.getfixturevalue("chain_near"), request.getfixturevalue("chain_near_devnet"))


@pytest.fixture
async def watch(chain: ChainUnderTest) -> AsyncIterator[Callable[..., EventStream]]:
    streams: list[EventStream] = []

    def open_stream(lock_id: str = "", heads: bool = False) -> EventStream:
        stream = EventStream(chain.stub.WatchEvents(chain_pb2.WatchEventsRequest(lock_id=lock_id, heads=heads)))
        streams.append(stream)
        return stream

    yield open_stream
    for stream in streams:
        stream.close()


# -- fencing -----------------------------------------------------------------------------------------------


async def test_stale_epoch_is_refused_before_anything_is_sent(chain: ChainUnderTest) -> None:
    key = f"session-{uuid.uuid4().hex}"
    secret = os.urandom(32)
    created = await chain.stub.CreateLock(chain.lock_request(sha256(secret)), metadata=fence(key, 2))
    assert created.sent
    lock_id = created.lock.lock_id
    await chain.advance(10)  # the withdrawal window is open: only the fence refuses the stale withdrawal

    before = await chain.effects()
    receiver_before = await chain.receiver_balance()
    stale = fence(key, 1)
    calls = {
        "CreateLock": chain.stub.CreateLock(chain.lock_request(), metadata=stale),
        "Withdraw": chain.stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret), metadata=stale),
        "Cancel": chain.stub.Cancel(chain_pb2.CancelRequest(lock_id=lock_id), metadata=stale),
    }
    for name, call in calls.items():
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, name
        assert error_reason(err.value) == "STALE_FENCE", name

    assert await chain.effects() == before, "nothing was sent"
    # Reads are never fenced.
    read = await chain.stub.GetLock(chain_pb2.GetLockRequest(lock_id=lock_id), metadata=stale)
    assert read.lock.state == chain_pb2.LOCK_STATE_ACTIVE

    # The holder of epoch 2 still acts (equal passes).
    done = await chain.stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret), metadata=fence(key, 2))
    assert done.sent and done.lock.state == chain_pb2.LOCK_STATE_WITHDRAWN
    assert await chain.receiver_balance() == receiver_before + chain.amount


async def test_rising_epochs_pass_and_keys_are_independent(chain: ChainUnderTest) -> None:
    key, other = f"session-{uuid.uuid4().hex}", f"session-{uuid.uuid4().hex}"
    first = await chain.stub.CreateLock(chain.lock_request(), metadata=fence(key, 1))
    assert first.sent
    await chain.advance(100)
    cancelled = await chain.stub.Cancel(chain_pb2.CancelRequest(lock_id=first.lock.lock_id), metadata=fence(key, 2))
    assert cancelled.sent and cancelled.lock.state == chain_pb2.LOCK_STATE_CANCELLED

    # Another session's fence starts from nothing, whatever this one's stands at.
    independent = await chain.stub.CreateLock(chain.lock_request(), metadata=fence(other, 1))
    assert independent.sent
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await chain.stub.CreateLock(chain.lock_request(), metadata=fence(key, 1))
    assert error_reason(err.value) == "STALE_FENCE"
    # Without the metadata a call is not fenced at all.
    assert (await chain.stub.CreateLock(chain.lock_request())).sent


async def test_malformed_fence_names_the_entry(chain: ChainUnderTest) -> None:
    before = await chain.effects()
    key = f"session-{uuid.uuid4().hex}"
    cases: list[tuple[tuple[tuple[str, str], ...], str]] = [
        *((fence(key, bad), "x-fence-epoch") for bad in ("", "abc", "-1", "1.5", "+3", "0x10", str(2**64))),
        ((("x-fence-key", key),), "x-fence-epoch"),
        ((("x-fence-epoch", "3"),), "x-fence-key"),
    ]
    for metadata, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await chain.stub.CreateLock(chain.lock_request(), metadata=metadata)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, metadata
        assert field_violation(err.value) == field, metadata
    assert await chain.effects() == before


# -- locks, withdrawals, refunds ---------------------------------------------------------------------------


async def test_a_lock_pays_its_receiver_once_with_the_secret_in_its_window(chain: ChainUnderTest) -> None:
    secret = os.urandom(32)
    receiver_before = await chain.receiver_balance()
    created = await chain.stub.CreateLock(chain.lock_request(sha256(secret)))
    assert created.sent and created.lock.state == chain_pb2.LOCK_STATE_ACTIVE
    assert created.lock.withdrawal_at == created.lock.locked_at + 10
    lock_id = created.lock.lock_id

    before = await chain.effects()
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await chain.stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=os.urandom(32)))
    assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violation(wrong.value) == "secret"
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await chain.stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret))
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(early.value) == "WINDOW_NOT_OPEN"
    for err in (wrong.value, early.value):
        assert secret.hex() not in (err.details() or "")
    assert await chain.effects() == before, "refused before anything was sent"

    await chain.advance(10)
    done = await chain.stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret))
    assert done.sent and done.lock.state == chain_pb2.LOCK_STATE_WITHDRAWN and done.lock.secret == secret
    assert await chain.receiver_balance() == receiver_before + chain.amount
    again = await chain.stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret))
    assert not again.sent and again.tx.tx_hash == done.tx.tx_hash
    assert await chain.receiver_balance() == receiver_before + chain.amount
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await chain.stub.Cancel(chain_pb2.CancelRequest(lock_id=lock_id))
    assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_lock_goes_back_once_after_its_cancellation_time(chain: ChainUnderTest) -> None:
    before_lock = await chain.resolver_balance()
    receiver_before = await chain.receiver_balance()
    created = await chain.stub.CreateLock(chain.lock_request())
    lock_id = created.lock.lock_id
    before = await chain.effects()
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await chain.stub.Cancel(chain_pb2.CancelRequest(lock_id=lock_id))
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(early.value) == "WINDOW_NOT_OPEN"
    assert await chain.effects() == before, "refused before anything was sent"

    await chain.advance(100)
    cancelled = await chain.stub.Cancel(chain_pb2.CancelRequest(lock_id=lock_id))
    assert cancelled.sent and cancelled.lock.state == chain_pb2.LOCK_STATE_CANCELLED and cancelled.tx.tx_hash
    # The resolver has its lock back (less the gas and the storage a lock costs on its chain).
    least, below = chain.lock_cost(1)
    assert 0 <= before_lock - await chain.resolver_balance() < below - least + chain.deposit
    again = await chain.stub.Cancel(chain_pb2.CancelRequest(lock_id=lock_id))
    assert not again.sent and again.tx.tx_hash == cancelled.tx.tx_hash
    with pytest.raises(grpc.aio.AioRpcError) as closed:
        await chain.stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=os.urandom(32)))
    assert closed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await chain.receiver_balance() == receiver_before


async def test_fifty_concurrent_locks_all_land(chain: ChainUnderTest) -> None:
    before = await chain.resolver_balance()
    replies = await asyncio.gather(*(chain.stub.CreateLock(chain.lock_request()) for _ in range(50)))
    assert all(r.sent and r.lock.state == chain_pb2.LOCK_STATE_ACTIVE for r in replies)
    assert len({r.lock.lock_id for r in replies}) == 50
    assert len({r.lock.created.tx_hash for r in replies}) == 50
    for reply in replies:
        read = await chain.stub.GetLock(chain_pb2.GetLockRequest(lock_id=reply.lock.lock_id))
        assert (read.lock.state, read.lock.terms.amount) == (chain_pb2.LOCK_STATE_ACTIVE, str(chain.amount))
    least, below = chain.lock_cost(50)
    assert least <= before - await chain.resolver_balance() < below


async def test_a_lock_asked_for_again_after_a_restart_is_not_paid_twice(chain: ChainUnderTest, tmp_path: Path) -> None:
    """A retry that reaches a new process of the service (the first stopped after the lock landed, before its
    reply) gets the same lock back, not a second one: the new process knows nothing of it, and the chain
    refuses to make it again (BASE: the simulation; NEAR: the HTLC, for some gas)."""
    request = chain.lock_request()
    made = await chain.stub.CreateLock(request)
    assert made.sent
    before = await chain.resolver_balance()
    proc = chain.another(chain.rpc_url, tmp_path)
    await asyncio.to_thread(proc.start)
    try:
        async with proc.channel() as channel:
            again = await Stub(channel).CreateLock(request)
    finally:
        proc.stop()
    assert not again.sent and again.lock.lock_id == made.lock.lock_id
    assert again.lock.state == chain_pb2.LOCK_STATE_ACTIVE
    assert again.lock.created.tx_hash in ("", made.lock.created.tx_hash)
    least, _ = chain.lock_cost(1)
    assert before - await chain.resolver_balance() < least, "a second lock was paid for"


# -- start -------------------------------------------------------------------------------------------------


async def test_started_while_its_chain_is_cut_off_it_waits_and_serves_once_the_chain_answers(
    chain: ChainUnderTest, tmp_path: Path
) -> None:
    """A chain service started while its RPC refuses every connection stays up, says what it waits for, and
    serves as soon as the chain answers again (a supervisor need not restart it)."""
    port = urlsplit(chain.rpc_url).port
    assert port is not None
    with TcpProxy(port) as proxy:
        proxy.cut()
        proc = chain.another(proxy.url(), tmp_path)
        starting = asyncio.ensure_future(asyncio.to_thread(proc.start))
        try:
            for _ in range(300):  # the RPC client's own retries come first
                if "waiting for a dependency before starting" in proc.tail():
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(2)  # and a wait or two more
            assert not starting.done() and proc.child.running, proc.tail()
            assert "waiting for a dependency before starting" in proc.tail(), proc.tail()
            proxy.restore()
            await asyncio.wait_for(starting, 30)
            async with proc.channel() as channel:
                info = await Stub(channel).GetChainInfo(chain_pb2.GetChainInfoRequest())
            assert info.escrow_dst == chain.contract
        finally:
            proc.stop()
            await asyncio.gather(starting, return_exceptions=True)


# -- refusals ----------------------------------------------------------------------------------------------


async def test_bad_input_names_the_field_and_sends_nothing(chain: ChainUnderTest) -> None:
    """What every chain service refuses the same way (each chain's own lock terms are refused in its tests)."""
    before = await chain.effects()
    for bad_id in ("", "0x12", "zz" * 32):
        for call in (
            chain.stub.GetLock(chain_pb2.GetLockRequest(lock_id=bad_id)),
            chain.stub.Cancel(chain_pb2.CancelRequest(lock_id=bad_id)),
            chain.stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=bad_id, secret=os.urandom(32))),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad_id
            assert field_violation(err.value) == "lock_id", bad_id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await chain.stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=chain.unknown_lock_id, secret=b"short"))
    assert field_violation(err.value) == "secret"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await chain.stub.GetBalance(chain_pb2.GetBalanceRequest(account="Bad Account", token=chain.token))
    assert field_violation(err.value) == "account"
    for call in (
        chain.stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=chain.unknown_lock_id, secret=os.urandom(32))),
        chain.stub.Cancel(chain_pb2.CancelRequest(lock_id=chain.unknown_lock_id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await call
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    absent = await chain.stub.GetLock(chain_pb2.GetLockRequest(lock_id=chain.unknown_lock_id))
    assert absent.lock.state == chain_pb2.LOCK_STATE_ABSENT
    stream = EventStream(chain.stub.WatchEvents(chain_pb2.WatchEventsRequest(cursor="not-a-cursor")))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await next_event(stream)
        assert field_violation(err.value) == "cursor"
    finally:
        stream.close()
    assert await chain.effects() == before


# -- streams -----------------------------------------------------------------------------------------------


async def test_no_ticks_without_heads(chain: ChainUnderTest, watch: Callable[..., EventStream]) -> None:
    created = await chain.stub.CreateLock(chain.lock_request())
    stream = watch(lock_id=created.lock.lock_id)
    await chain.blocks(1)
    assert (await next_event(stream)).lock_id == created.lock.lock_id
    await chain.blocks(3)  # a heads stream would have ticks now
    with pytest.raises(TimeoutError):
        await next_item(stream, timeout=1.0)
