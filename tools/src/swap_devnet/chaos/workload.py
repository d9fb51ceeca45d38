"""The chaos workload: accounts of its own on both chains, and a steady stream of swaps kept in flight.

Each swap has a kind, drawn from the run's random generator:
- `complete`: the maker does their step and the swap should complete (or refund, if the faults say so);
- `cancel`: the maker executes, then cancels a moment later;
- `abandon`: the maker creates the session and never signs or locks;
- `refused`: a whale's swap larger than the resolver holds on the destination chain, so the destination lock
  is refused and the source must come back.

A swap is created and driven through one of the session replicas over gRPC or through the gateway over REST;
every call is retried with the same request id while the faults last (the API makes that safe). The maker's
step is done with the maker's own key: an EIP-712 signature (BASE) or the NEAR lock call (NEAR). Swaps in
secret mode maker release their secret when the session waits for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import httpx
from eth_account import Account
from eth_account.messages import encode_typed_data
from py_near.account import Account as NearClient
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2, session_pb2_grpc

from swap_devnet.evm import MAX_UINT256, send_transaction
from swap_devnet.faucet import Grant, fund_base, fund_near
from swap_devnet.near.keys import KeyPair
from swap_devnet.stack import LocalStack

log = logging.getLogger(__name__)
T = TypeVar("T")

TUSD = 10**6
NEAR = 10**24
KINDS = ("complete", "cancel", "abandon", "refused")
KIND_WEIGHTS = (70, 12, 10, 8)
WHALE_AMOUNT = 1_500_000 * TUSD  # more than the resolver holds on either chain (1 000 000 TUSD)
St = session_pb2.SessionState
ENDED = {
    St.SESSION_STATE_COMPLETED,
    St.SESSION_STATE_REFUNDED,
    St.SESSION_STATE_CANCELLED,
    St.SESSION_STATE_FAILED,
    St.SESSION_STATE_TIMEOUT,
}
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL}


@dataclass(frozen=True)
class EvmParty:
    address: str
    private_key: str


@dataclass(frozen=True)
class NearParty:
    account_id: str
    private_key: str


@dataclass
class Parties:
    base_makers: list[EvmParty]
    near_makers: list[NearParty]
    base_receivers: list[str]
    near_receivers: list[str]
    base_whale: EvmParty
    near_whale: NearParty

    def accounts(self) -> dict[str, list[str]]:
        """Every account the checker balances, per chain (the resolver's are added by the checker)."""
        return {
            "base": [p.address for p in [*self.base_makers, self.base_whale]] + self.base_receivers,
            "near": [p.account_id for p in [*self.near_makers, self.near_whale]] + self.near_receivers,
        }


async def make_parties(stack: LocalStack, rng: random.Random, makers: int, receivers: int) -> Parties:
    """Fresh accounts with their own keys, funded by the devnet faucet; BASE makers approve EscrowSrc once,
    before the run's balances are read, so a maker's only costs during the run are the swaps."""
    assert stack.evm is not None and stack.near is not None
    evm, near = stack.evm, stack.near
    w3 = evm.web3()
    token = evm.token_contract(w3)

    def base_maker(tusd: int) -> EvmParty:
        key = "0x" + rng.randbytes(32).hex()
        party = EvmParty(Account.from_key(key).address, key)
        fund_base(evm, party.address, Grant(native=10**18, tusd=tusd))
        send_transaction(w3, key, token.functions.approve(evm.escrow_src, MAX_UINT256))
        return party

    async def near_account(label: str, native: int, tusd: int) -> NearParty:
        key = KeyPair.from_phrase(f"chaos:{label}:{rng.randbytes(8).hex()}")
        account_id = f"{label}-{rng.randbytes(4).hex()}.{near.root.account_id}"
        await fund_near(near, account_id, key.public_key_text, Grant(native=native, tusd=tusd))
        return NearParty(account_id, key.secret_key_text)

    base_makers = [await asyncio.to_thread(base_maker, 100_000 * TUSD) for _ in range(makers)]
    base_whale = await asyncio.to_thread(base_maker, 2 * WHALE_AMOUNT)
    near_makers = [await near_account(f"maker{i}", 20 * NEAR, 100_000 * TUSD) for i in range(makers)]
    near_whale = await near_account("whale", 20 * NEAR, 2 * WHALE_AMOUNT)
    near_receivers = [(await near_account(f"recv{i}", NEAR, 0)).account_id for i in range(receivers)]
    base_receivers = [Account.from_key("0x" + rng.randbytes(32).hex()).address for _ in range(receivers)]
    return Parties(base_makers, near_makers, base_receivers, near_receivers, base_whale, near_whale)


@dataclass
class Swap:
    """One swap of the workload, as the checker needs it."""

    index: int
    kind: str
    direction: str  # "base-near" / "near-base"
    via: str  # "grpc" / "rest"
    maker: str
    receiver: str
    amount: int
    secret_mode: str  # "service" / "maker"
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    session_id: str = ""
    secret: bytes = b""
    near_txs: list[str] = field(default_factory=list)  # the maker's NEAR transactions
    errors: list[str] = field(default_factory=list)  # calls that were refused for good
    ended: bool = False


class Driver:
    """Calls the session service over gRPC (either replica) or the gateway over REST, retrying while the
    nemesis keeps them down."""

    def __init__(self, stack: LocalStack, api_key: str, retry_for_s: float) -> None:
        self.stack = stack
        self.retry_for_s = retry_for_s
        replicas = [name for name in stack.services if name.startswith("session")]
        self._stubs = [session_pb2_grpc.SessionServiceStub(stack.channel(name)) for name in replicas]
        assert stack.gateway is not None
        self._http = httpx.AsyncClient(
            base_url=stack.gateway.url, headers={"X-API-Key": api_key}, timeout=httpx.Timeout(15.0)
        )
        self._next = 0

    async def close(self) -> None:
        await self._http.aclose()

    async def _retry(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self.retry_for_s
        delay = 0.2
        while True:
            try:
                return await call()
            except grpc.aio.AioRpcError as err:
                if err.code() not in _RETRYABLE or time.monotonic() > deadline:
                    raise
            except (httpx.TransportError, _Retry):
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
            log.debug("retrying %s", what)

    def _stub(self) -> session_pb2_grpc.SessionServiceStub:
        self._next = (self._next + 1) % len(self._stubs)
        return self._stubs[self._next]

    async def _rest(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await self._http.request(method, path, json=body)
        if reply.status_code in (502, 503, 504):
            raise _Retry(reply.text)
        data: dict[str, Any] = reply.json()
        if reply.status_code >= 400:
            raise Refused(f"{reply.status_code} {data.get('error', {}).get('reason')}: {reply.text[:200]}")
        return data

    async def create(self, swap: Swap, request: session_pb2.CreateSessionRequest) -> session_pb2.Session:
        if swap.via == "rest":
            body = _rest_create(request)
            data = await self._retry("create", lambda: self._rest("POST", "/api/v1/sessions", body))
            return await self.get(str(data["session_id"]))
        reply = await self._retry("create", lambda: self._stub().CreateSession(request, timeout=20))
        session: session_pb2.Session = reply.session
        return session

    async def execute(self, swap: Swap, signature: bytes) -> None:
        if swap.via == "rest":
            body: dict[str, Any] = {"request_id": swap.request_id}
            if signature:
                body["signature"] = "0x" + signature.hex()
            await self._retry(
                "execute", lambda: self._rest("POST", f"/api/v1/sessions/{swap.session_id}/execute", body)
            )
            return
        request = session_pb2.ExecuteSessionRequest(
            session_id=swap.session_id, request_id=swap.request_id, signature=signature
        )
        await self._retry("execute", lambda: self._stub().ExecuteSession(request, timeout=20))

    async def cancel(self, swap: Swap) -> None:
        if swap.via == "rest":
            await self._retry("cancel", lambda: self._rest("POST", f"/api/v1/sessions/{swap.session_id}/cancel", {}))
            return
        request = session_pb2.CancelSessionRequest(session_id=swap.session_id)
        await self._retry("cancel", lambda: self._stub().CancelSession(request, timeout=20))

    async def reveal(self, swap: Swap) -> None:
        request = session_pb2.RevealSecretRequest(session_id=swap.session_id, secret=swap.secret.hex())
        await self._retry("reveal", lambda: self._stub().RevealSecret(request, timeout=20))

    async def get(self, session_id: str) -> session_pb2.Session:
        request = session_pb2.GetSessionRequest(session_id=session_id)
        reply = await self._retry("get", lambda: self._stub().GetSession(request, timeout=20))
        session: session_pb2.Session = reply.session
        return session


class _Retry(Exception):
    """A 5xx of the edge: the gateway or the session replica behind it is down for now."""


class Refused(Exception):
    """A 4xx: the call is refused for good."""


def _rest_create(request: session_pb2.CreateSessionRequest) -> dict[str, Any]:
    chain = {common_pb2.CHAIN_BASE: "base", common_pb2.CHAIN_NEAR: "near"}
    body: dict[str, Any] = {
        "src": {"chain": chain[request.src.chain], "token": request.src.token},
        "dst": {"chain": chain[request.dst.chain], "token": request.dst.token},
        "src_amount": request.src_amount,
        "maker": request.maker,
        "receiver": request.receiver,
        "request_id": request.request_id,
    }
    if request.secret_mode == session_pb2.SECRET_MODE_MAKER:
        body["secret_mode"] = "maker"  # noqa: S105 - a mode's name
        body["hashlock"] = request.hashlock
    return body


class Workload:
    """Keeps `in_flight` swaps open until stopped; every swap it started is in `swaps`."""

    def __init__(
        self, stack: LocalStack, parties: Parties, rng: random.Random, in_flight: int, retry_for_s: float = 120.0
    ) -> None:
        assert stack.evm is not None and stack.near is not None
        self.stack = stack
        self.parties = parties
        self.rng = rng
        self.in_flight = in_flight
        self.swaps: list[Swap] = []
        self.driver = Driver(stack, stack.options.api_key, retry_for_s)
        self._near_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._closed = asyncio.Event()

    def _draw(self) -> Swap:
        rng, p = self.rng, self.parties
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        direction = rng.choice(("base-near", "near-base"))
        amount = rng.randint(1 * TUSD, 20 * TUSD)
        if direction == "base-near":
            maker = p.base_whale.address if kind == "refused" else rng.choice(p.base_makers).address
            receiver = rng.choice(p.near_receivers)
        else:
            maker = p.near_whale.account_id if kind == "refused" else rng.choice(p.near_makers).account_id
            receiver = rng.choice(p.base_receivers)
        if kind == "refused":
            amount = WHALE_AMOUNT
        return Swap(
            index=len(self.swaps),
            kind=kind,
            direction=direction,
            via=rng.choice(("grpc", "grpc", "rest")),
            maker=maker,
            receiver=receiver,
            amount=amount,
            secret_mode="maker" if rng.random() < 0.25 else "service",
        )

    async def run(self) -> None:
        """Starts swaps while fewer than `in_flight` are open, until stop(); then, until close(), goes on
        following the open ones (a maker in secret mode maker still releases their secret while the run drains)."""
        while not self._closed.is_set():
            open_swaps = sum(1 for s in self.swaps if not s.ended)
            if open_swaps < self.in_flight and not self._stopping.is_set():
                swap = self._draw()
                self.swaps.append(swap)
                task = asyncio.create_task(self._drive(swap))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                await asyncio.sleep(self.rng.uniform(0.05, 0.3))
                continue
            await self._poll_open()
            await asyncio.sleep(0.5)

    def stop(self) -> None:
        """No new swaps from now on."""
        self._stopping.set()

    async def finish(self) -> None:
        """Waits for every swap's driver (their maker steps and calls), not for the swaps to end."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        self._closed.set()
        await self.driver.close()

    async def _poll_open(self) -> None:
        """Marks ended swaps, and releases the secrets that sessions in secret mode maker wait for."""
        for swap in [s for s in self.swaps if not s.ended and s.session_id]:
            try:
                session = await self.driver.get(swap.session_id)
            except (grpc.aio.AioRpcError, httpx.HTTPError):
                continue
            if session.state in ENDED:
                swap.ended = True
            elif session.state == St.SESSION_STATE_AWAITING_SECRET and swap.secret:
                await self._guard(swap, "reveal", self.driver.reveal(swap))

    async def _guard(self, swap: Swap, what: str, call: Awaitable[Any]) -> None:
        try:
            await call
        except (grpc.aio.AioRpcError, httpx.HTTPError, Refused, _Retry) as err:
            detail = err.details() if isinstance(err, grpc.aio.AioRpcError) else str(err)
            swap.errors.append(f"{what}: {detail}"[:300])

    async def _drive(self, swap: Swap) -> None:
        try:
            await self._drive_steps(swap)
        except Exception as err:  # a swap's driver never takes the run down; the checker reads the chains
            swap.errors.append(f"driver: {err!r}"[:300])
            log.warning("swap %d: %r", swap.index, err)
        if not swap.session_id:
            swap.ended = True

    async def _drive_steps(self, swap: Swap) -> None:
        assert self.stack.evm is not None and self.stack.near is not None
        evm, near = self.stack.evm, self.stack.near
        base_side = quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=evm.token)
        near_side = quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=near.token_id)
        src, dst = (base_side, near_side) if swap.direction == "base-near" else (near_side, base_side)
        request = session_pb2.CreateSessionRequest(
            request_id=swap.request_id,
            src=src,
            dst=dst,
            src_amount=str(swap.amount),
            maker=swap.maker,
            receiver=swap.receiver,
        )
        if swap.secret_mode == "maker":  # noqa: S105 - a mode's name
            swap.secret = secrets.token_bytes(32)
            request.secret_mode = session_pb2.SECRET_MODE_MAKER
            request.hashlock = hashlib.sha256(swap.secret).hexdigest()
        try:
            session = await self.driver.create(swap, request)
        except (grpc.aio.AioRpcError, Refused) as err:
            detail = err.details() if isinstance(err, grpc.aio.AioRpcError) else str(err)
            swap.errors.append(f"create: {detail}"[:300])
            return
        swap.session_id = session.session_id
        if swap.kind == "abandon":
            return
        signature = b""
        if swap.direction == "base-near":
            maker = next(p for p in [*self.parties.base_makers, self.parties.base_whale] if p.address == swap.maker)
            typed = json.loads(session.maker_action.sign_order.typed_data_json)
            signature = bytes(Account.sign_message(encode_typed_data(full_message=typed), maker.private_key).signature)
        else:
            await self._near_lock(swap, session.maker_action)
        await self._guard(swap, "execute", self.driver.execute(swap, signature))
        if swap.kind == "cancel":
            await asyncio.sleep(self.rng.uniform(0.0, 6.0))
            await self._guard(swap, "cancel", self.driver.cancel(swap))

    async def _near_lock(self, swap: Swap, action: Any) -> None:
        """The maker's NEAR calls (the prepaid top-up first when there is one, then the lock), one maker
        account at a time (its nonces stay in order)."""
        assert self.stack.near is not None
        maker = next(p for p in [*self.parties.near_makers, self.parties.near_whale] if p.account_id == swap.maker)
        lock = self._near_locks.setdefault(maker.account_id, asyncio.Lock())
        calls = [action.near_prepay, action.near_call] if action.HasField("near_prepay") else [action.near_call]
        async with lock:
            client = NearClient(maker.account_id, maker.private_key, self.stack.near.rpc_url)
            try:
                await client.startup()
                for call in calls:
                    result = await asyncio.wait_for(
                        client.function_call(
                            call.contract, call.method, json.loads(call.args_json), call.gas, int(call.deposit)
                        ),
                        timeout=90,
                    )
                    swap.near_txs.append(result.transaction.hash)
            except Exception as err:  # the RPC may be cut: the session times out or refunds what landed
                swap.errors.append(f"near lock: {err!r}"[:300])
            finally:
                await client.shutdown()
