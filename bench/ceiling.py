"""The chain-bound ceiling of the throughput section: the on-chain transactions of N BASE -> NEAR swaps sent
by a bare concurrent client, with only the waits the protocol itself imposes, on the stack's own chains.

Per swap, one coroutine, all N at once:
  1. BASE source lock: `EscrowSrc.createSrcEscrow(order, signature)` with the maker's EIP-712 signature,
     submitted by the resolver with the safety deposit attached (what chain-base submits); then wait until
     the lock has the stack's confirmations (2: the head is one block past the lock's block);
  2. NEAR destination lock: `deposit_native` (safety deposit + the HTLC's storage fee) on the HTLC, then
     `ft_transfer_call` of the TUSD to the HTLC with the lock terms as `msg` (what chain-near sends); then
     wait until the block that made the lock is final;
  3. NEAR withdrawal: wait until the NEAR head's timestamp reaches the lock's `locked_at` plus the
     destination's withdrawal timelock, then `withdraw({lock_id, secret})`;
  4. BASE withdrawal: once the NEAR withdrawal is executed (the receiver is paid first) and the head's
     timestamp reaches the source lock's `lockedAt` plus the source's withdrawal timelock,
     `EscrowSrc.withdraw(id, secret)`; the swap is complete when both withdrawals are final (the BASE one
     at 2 confirmations, the NEAR one in a final block), the same facts the session's `completed` waits for.

The client is small and hand-written, not the services' code:
  - BASE: AsyncWeb3; the resolver's nonce is a local counter, gas an `eth_estimateGas` per transaction with
    chain-base's 1.25 headroom, EIP-1559 fees from the newest block (2 x base fee + the node's tip), signed
    locally and sent raw. One poller follows the head every 0.1 s and reads each new block and its receipts
    (`eth_getBlockReceipts`): that answers every transaction's receipt, every confirmation count and the
    chain time, with no per-transaction polling.
  - NEAR: py-near's transaction encoding and signing, 8 access keys added for the run (chain-near also sends
    with 8), a local nonce per key and one transaction in flight per key (as chain-near), `broadcast_tx_commit`
    over one aiohttp session
    (no connection limit). One poller reads the optimistic and the final head every 0.05 s. A lock's block
    (its height and timestamp: `locked_at`) is the block of the transaction's first receipt on the HTLC.

Accounts: the stack's maker signs every order and the stack's receiver is paid. The ceiling's resolver is an
account no service sends from, so no service's cached nonce is moved under it: on BASE anvil's dev account 5,
on NEAR the devnet's maker account (funded with NEAR and TUSD and registered with the token like the
resolver; chain-near signs with the resolver's key and keys derived from it, so even adding keys to the
resolver's account would move the nonce of one of chain-near's keys). The section checks its own effect:
every swap completed, balances moved by exactly N swaps' amounts and every lock reads withdrawn.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import base58
from eth_account import Account
from eth_account.signers.local import LocalAccount
from py_near import transactions as near_tx
from py_near.account import Account as NearAccount
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_devnet.artifacts import load_artifact
from swap_devnet.evm import DevAccount, EvmDeployment, dev_account, order_digest, sign_order
from swap_devnet.near import KeyPair, NearDeployment, lock_id_for
from swap_devnet.near.process import view_params, view_result
from swap_devnet.stack import LocalStack
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.contract.async_contract import AsyncContractFunction
from web3.types import Nonce, TxParams, TxReceipt, Wei

from bench.stats import percentile, summary
from bench.swap import AMOUNT, _phases

log = logging.getLogger("bench.ceiling")

RESOLVER_INDEX = 5  # anvil dev account signing the ceiling's BASE transactions (the stack uses 0-3)
NEAR_KEYS = 8  # chain-near's default CHAIN_NEAR_SIGNER_KEYS
GAS_HEADROOM = 1.25  # chain-base's, so the blocks pack the same gas limits
BASE_POLL_S = 0.1  # web3.py's receipt poll interval
NEAR_POLL_S = 0.05  # half the devnet's idle block interval
TGAS = 10**12
CALL_GAS = 100 * TGAS  # chain-near's defaults
FT_CALL_GAS = 200 * TGAS
ORDER_DEADLINE_S = 600  # the session service's default order deadline
SWAP_TIMEOUT_S = 600.0
TX_TIMEOUT_S = 120.0
_CHECK_CONCURRENCY = 50


@dataclass(frozen=True)
class Plan:
    """The terms of every ceiling swap, from one quote of the stack's quote service."""

    src_amount: int
    dst_amount: int
    src_timelocks: tuple[int, int, int, int]  # seconds
    dst_timelocks: tuple[int, int, int, int]
    src_deposit: int  # wei
    dst_deposit: int  # yoctoNEAR
    min_received: str


def _timelocks(t: common_pb2.Timelocks) -> tuple[int, int, int, int]:
    return (t.withdrawal_after_s, t.public_withdrawal_after_s, t.cancellation_after_s, t.public_cancellation_after_s)


async def plan_from_quote(stack: LocalStack) -> Plan:
    assert stack.evm is not None and stack.near is not None
    async with stack.channel("quote") as channel:
        reply = await quote_pb2_grpc.QuoteServiceStub(channel).GetQuote(
            quote_pb2.GetQuoteRequest(
                src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
                dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
                src_amount=str(AMOUNT),
            )
        )
    q = reply.quote
    # What the session locks on the destination: the auction's amount now, never below the minimum.
    amount = max(int(q.auction.current_amount or q.auction.end_amount), int(q.min_received))
    return Plan(
        src_amount=AMOUNT,
        dst_amount=amount,
        src_timelocks=_timelocks(q.timelocks.src),
        dst_timelocks=_timelocks(q.timelocks.dst),
        src_deposit=int(q.src_safety_deposit),
        dst_deposit=int(q.dst_safety_deposit),
        min_received=q.min_received,
    )


class _Heads:
    """A chain's newest head as a poller saw it; waiters are woken on every change."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, ready: Callable[[], bool], timeout_s: float = TX_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            changed = self._changed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the chain did not get there in time")
            await asyncio.wait_for(changed.wait(), remaining)


# -- BASE ----------------------------------------------------------------------------------------------------


class BaseClient(_Heads):
    def __init__(self, evm: EvmDeployment, resolver: DevAccount, confirmations: int) -> None:
        super().__init__()
        self.evm = evm
        self.w3 = AsyncWeb3(AsyncHTTPProvider(evm.rpc_url))
        self.account: LocalAccount = Account.from_key(resolver.private_key)
        self.escrow = self.w3.eth.contract(address=evm.escrow_src, abi=load_artifact("EscrowSrc").abi)
        self.token = self.w3.eth.contract(address=evm.token, abi=load_artifact("TestToken").abi)
        self.confirmations = confirmations
        self.head = 0
        self.head_time = 0
        self.timestamps: dict[int, int] = {}
        self._base_fee = 0
        self._tip = 0
        self._nonce = 0
        self._receipts: dict[bytes, asyncio.Future[TxReceipt]] = {}
        self._poller: asyncio.Task[None] | None = None
        self.transactions = 0

    async def start(self) -> BaseClient:
        self._nonce = await self.w3.eth.get_transaction_count(self.account.address, "pending")
        self._tip = int(await self.w3.eth.max_priority_fee)
        await self._read_block(int(await self.w3.eth.block_number))
        self._poller = asyncio.ensure_future(self._poll())
        return self

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        await self.w3.provider.disconnect()

    async def _read_block(self, number: int) -> None:
        block, receipts = await asyncio.gather(self.w3.eth.get_block(number), self.w3.eth.get_block_receipts(number))
        for receipt in receipts:
            waiter = self._receipts.pop(bytes(receipt["transactionHash"]), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(receipt)
        self.timestamps[number] = int(block["timestamp"])
        self._base_fee = int(block.get("baseFeePerGas", 0))
        self.head, self.head_time = number, int(block["timestamp"])

    async def _poll(self) -> None:
        while True:
            try:
                latest = int(await self.w3.eth.block_number)
                if latest > self.head:
                    for number in range(self.head + 1, latest + 1):
                        await self._read_block(number)
                    self.notify()
            except Exception:
                log.exception("BASE head poll failed")
            await asyncio.sleep(BASE_POLL_S)

    async def send(self, fn: AsyncContractFunction, value: int) -> TxReceipt:
        # chainId given, so web3 does not ask the node for it with every estimate.
        estimate: TxParams = {"from": self.account.address, "value": Wei(value), "chainId": self.evm.chain_id}
        gas = await fn.estimate_gas(estimate)
        params: TxParams = {
            "from": self.account.address,
            "value": Wei(value),
            "gas": int(gas * GAS_HEADROOM),
            "nonce": Nonce(0),
            "chainId": self.evm.chain_id,
            "maxPriorityFeePerGas": Wei(self._tip),
            "maxFeePerGas": Wei(2 * self._base_fee + self._tip),
        }
        tx = await fn.build_transaction(params)
        # The nonce is taken with no await before the send starts: a gap could only come from a failed send.
        tx["nonce"] = Nonce(self._nonce)
        self._nonce += 1
        signed = self.account.sign_transaction(cast(dict[str, Any], tx))
        waiter: asyncio.Future[TxReceipt] = asyncio.get_running_loop().create_future()
        self._receipts[bytes(signed.hash)] = waiter
        await self.w3.eth.send_raw_transaction(signed.raw_transaction)
        self.transactions += 1
        receipt = await asyncio.wait_for(waiter, TX_TIMEOUT_S)
        if receipt["status"] != 1:
            raise RuntimeError(f"BASE transaction {signed.hash.to_0x_hex()} reverted")
        return receipt

    async def confirmed(self, block: int) -> None:
        """Until the block has the stack's confirmations (chain-base counts head - block + 1)."""
        await self.wait(lambda: self.head - block + 1 >= self.confirmations)

    async def chain_time(self, at_least: int) -> None:
        await self.wait(lambda: self.head_time >= at_least)


# -- NEAR ----------------------------------------------------------------------------------------------------


class NearError(RuntimeError):
    def __init__(self, method: str, error: Any) -> None:
        super().__init__(f"NEAR {method}: {json.dumps(error)[:400]}")
        self.error = error


def _cause(err: NearError) -> str:
    return str(err.error.get("cause", {}).get("name", "")) if isinstance(err.error, dict) else ""


def _failure(result: dict[str, Any]) -> str | None:
    """The first failure of a transaction or of any of its receipts."""
    statuses = [result["status"], *(o["outcome"]["status"] for o in result["receipts_outcome"])]
    for status in statuses:
        if isinstance(status, dict) and "Failure" in status:
            return json.dumps(status["Failure"])[:300]
    return None


class NearClient(_Heads):
    def __init__(self, near: NearDeployment, signer: str, keys: list[KeyPair]) -> None:
        super().__init__()
        self.near = near
        self.signer = signer  # the account that funds the destination locks and signs on `keys`
        self._keys = [(key, _key_bytes(key)) for key in keys]
        self._nonces = [0] * len(keys)
        # One transaction in flight per key, as chain-near sends: a key's transactions reach the node in nonce
        # order, and none waits on a nonce gap the node might give up on.
        self._free: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(keys)):
            self._free.put_nowait(index)
        self._session: aiohttp.ClientSession | None = None
        self._block_hash = b""
        self.head = 0
        self.head_time = 0
        self.final_height = 0
        self._poller: asyncio.Task[None] | None = None
        self.transactions = 0
        self.timeouts = 0  # commits the node stopped waiting for, waited for again with `tx`

    async def start(self) -> NearClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=TX_TIMEOUT_S)
        )
        for i, (key, _) in enumerate(self._keys):
            view = await self.rpc(
                "query",
                {
                    "request_type": "view_access_key",
                    "finality": "optimistic",
                    "account_id": self.signer,
                    "public_key": key.public_key_text,
                },
            )
            self._nonces[i] = int(view["nonce"])
        await self._read_heads()
        self._poller = asyncio.ensure_future(self._poll())
        return self

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        if self._session is not None:
            await self._session.close()

    async def rpc(self, method: str, params: Any) -> Any:
        assert self._session is not None
        body = {"jsonrpc": "2.0", "id": "ceiling", "method": method, "params": params}
        async with self._session.post(self.near.rpc_url, json=body) as response:
            payload = await response.json(content_type=None)
        if "error" in payload:
            raise NearError(method, payload["error"])
        return payload["result"]

    async def _read_heads(self) -> None:
        head, final = await asyncio.gather(
            self.rpc("block", {"finality": "optimistic"}), self.rpc("block", {"finality": "final"})
        )
        self.head, self.head_time = int(head["header"]["height"]), int(head["header"]["timestamp"])
        self.final_height = int(final["header"]["height"])
        self._block_hash = bytes(base58.b58decode(final["header"]["hash"]))

    async def _poll(self) -> None:
        while True:
            try:
                before = (self.head, self.final_height)
                await self._read_heads()
                if (self.head, self.final_height) != before:
                    self.notify()
            except Exception:
                log.exception("NEAR head poll failed")
            await asyncio.sleep(NEAR_POLL_S)

    async def call(self, receiver: str, method: str, args: dict[str, Any], gas: int, deposit: int) -> dict[str, Any]:
        """One function call from the resolver, waited for until executed (all receipts, optimistic)."""
        index = await self._free.get()
        try:
            return await self._call_on(index, receiver, method, args, gas, deposit)
        finally:
            self._free.put_nowait(index)

    async def _call_on(
        self, index: int, receiver: str, method: str, args: dict[str, Any], gas: int, deposit: int
    ) -> dict[str, Any]:
        self._nonces[index] += 1
        nonce = self._nonces[index]
        actions = [near_tx.create_function_call_action(method, json.dumps(args).encode(), gas, deposit)]
        account = self.signer
        secret = self._keys[index][1]
        signed = near_tx.sign_and_serialize_transaction(account, secret, receiver, nonce, actions, self._block_hash)
        self.transactions += 1
        try:
            result: dict[str, Any] = await self.rpc("broadcast_tx_commit", [signed])
        except NearError as err:
            if _cause(err) != "TIMEOUT_ERROR":
                raise
            self.timeouts += 1
            # The node stopped waiting (after 10 s on the devnet), not the transaction: wait on the same one.
            tx_hash = near_tx.calc_trx_hash(account, secret, receiver, nonce, actions, self._block_hash)
            result = await self._wait_tx(tx_hash)
        if (failure := _failure(result)) is not None:
            raise RuntimeError(f"NEAR {receiver}.{method} failed: {failure}")
        return result

    async def _wait_tx(self, tx_hash: str) -> dict[str, Any]:
        deadline = time.monotonic() + TX_TIMEOUT_S
        while True:
            try:
                result: dict[str, Any] = await self.rpc(
                    "tx",
                    {
                        "tx_hash": tx_hash,
                        "sender_account_id": self.signer,
                        "wait_until": "EXECUTED_OPTIMISTIC",
                    },
                )
                return result
            except NearError as err:
                if _cause(err) not in {"TIMEOUT_ERROR", "UNKNOWN_TRANSACTION"} or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(NEAR_POLL_S)

    async def htlc_block(self, result: dict[str, Any]) -> tuple[int, int]:
        """(height, timestamp ns) of the block of the transaction's first receipt on the HTLC: where a lock was
        made (its `locked_at`) or withdrawn."""
        htlc = self.near.htlc.account_id
        outcome = next(o for o in result["receipts_outcome"] if o["outcome"]["executor_id"] == htlc)
        block = await self.rpc("block", {"block_id": outcome["block_hash"]})
        return int(block["header"]["height"]), int(block["header"]["timestamp"])

    async def final(self, height: int) -> None:
        await self.wait(lambda: self.final_height >= height)

    async def chain_time(self, at_least_ns: int) -> None:
        await self.wait(lambda: self.head_time >= at_least_ns)

    async def view(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        return view_result(contract, method, await self.rpc("query", view_params(contract, method, args)))


def _key_bytes(key: KeyPair) -> bytes:
    return bytes(base58.b58decode(key.secret_key_text.removeprefix("ed25519:")))


async def _add_keys(near: NearDeployment, keys: list[KeyPair]) -> None:
    """The ceiling's signing keys on the NEAR maker's account (no service sends from it in this section)."""
    owner = NearAccount(near.maker.account_id, near.maker.private_key, near.rpc_url)
    await owner.startup()
    try:
        for key in keys:
            await owner.add_full_access_public_key(key.public_key_text)
    finally:
        await owner.shutdown()


# -- one swap ------------------------------------------------------------------------------------------------


@dataclass
class Ceiling:
    base: BaseClient
    near: NearClient
    evm: EvmDeployment
    plan: Plan
    storage_fee: int
    escrow_ids: list[bytes]
    lock_ids: list[str]


async def one_swap(c: Ceiling) -> dict[str, Any]:
    """The four transactions of one BASE -> NEAR swap and the protocol's waits; the times are ms from the start."""
    base, near, plan, evm = c.base, c.near, c.plan, c.evm
    start = time.perf_counter()
    marks: list[tuple[str, float]] = [("started", 0.0)]

    def mark(name: str) -> None:
        marks.append((name, round((time.perf_counter() - start) * 1000, 1)))

    secret = os.urandom(32)
    hashlock = hashlib.sha256(secret).digest()
    receiver = near.near.receiver.account_id
    token_id = near.near.token.account_id
    terms = f"near|{token_id}|{plan.min_received}|{receiver}|{hashlock.hex()}"
    w, pw, cn, pc = plan.src_timelocks
    order = {
        "maker": evm.maker.address,
        "resolver": base.account.address,
        "token": evm.token,
        "amount": plan.src_amount,
        "hashlock": hashlock,
        "timelocks": {"withdrawal": w, "publicWithdrawal": pw, "cancellation": cn, "publicCancellation": pc},
        "safetyDeposit": plan.src_deposit,
        "dstTermsHash": hashlib.sha256(terms.encode()).digest(),
        "nonce": int.from_bytes(os.urandom(16), "big"),
        "deadline": base.head_time + ORDER_DEADLINE_S,
    }
    escrow_id = order_digest(evm.chain_id, evm.escrow_src, order)
    signature = sign_order(evm, order, evm.maker.private_key)
    c.escrow_ids.append(escrow_id)
    as_tuple = (*(order[k] for k in ("maker", "resolver", "token", "amount", "hashlock")), (w, pw, cn, pc))
    as_tuple += (order["safetyDeposit"], order["dstTermsHash"], order["nonce"], order["deadline"])

    # 1. The source lock, then its confirmations.
    lock = await base.send(base.escrow.functions.createSrcEscrow(as_tuple, signature), plan.src_deposit)
    src_block = int(lock["blockNumber"])
    src_locked_at = base.timestamps[src_block]  # the escrow's lockedAt: its block's timestamp
    mark("source_locked")
    await base.confirmed(src_block)
    mark("source_confirmed")

    # 2. The destination lock (prepaid safety deposit and storage fee, then the tokens with the terms).
    nonce = str(int.from_bytes(os.urandom(12), "big"))
    lock_id = lock_id_for(near.signer, nonce)
    c.lock_ids.append(lock_id)
    htlc = near.near.htlc.account_id
    dw, dpw, dc, dpc = (str(s * 10**9) for s in plan.dst_timelocks)
    message = {
        "nonce": nonce,
        "beneficiary": receiver,
        "operator": near.signer,
        "hashlock": hashlock.hex(),
        "timelocks": {"withdrawal": dw, "public_withdrawal": dpw, "cancellation": dc, "public_cancellation": dpc},
        "safety_deposit": str(plan.dst_deposit),
    }
    await near.call(htlc, "deposit_native", {}, CALL_GAS, plan.dst_deposit + c.storage_fee)
    args = {"receiver_id": htlc, "amount": str(plan.dst_amount), "msg": json.dumps(message)}
    created = await near.call(token_id, "ft_transfer_call", args, FT_CALL_GAS, 1)
    lock_height, locked_at_ns = await near.htlc_block(created)
    mark("destination_locked")
    await near.final(lock_height)
    mark("destination_final")

    # 3. The NEAR withdrawal, from the moment its window is open on chain.
    await near.chain_time(locked_at_ns + plan.dst_timelocks[0] * 10**9)
    mark("destination_window_open")
    withdrawn = await near.call(htlc, "withdraw", {"lock_id": lock_id, "secret": secret.hex()}, CALL_GAS, 0)
    paid = json.loads(base64.b64decode(withdrawn["status"].get("SuccessValue") or "bnVsbA=="))
    if paid is not True:
        raise RuntimeError(f"NEAR withdraw of {lock_id} returned {paid!r}")
    withdraw_height, _ = await near.htlc_block(withdrawn)
    mark("destination_withdrawn")

    # 4. The BASE withdrawal once its window is open; then both withdrawals final.
    await base.chain_time(src_locked_at + plan.src_timelocks[0])
    collected = await base.send(base.escrow.functions.withdraw(escrow_id, secret), 0)
    mark("source_withdrawn")
    await asyncio.gather(base.confirmed(int(collected["blockNumber"])), near.final(withdraw_height))
    mark("withdrawals_final")
    return {"wall_ms": marks[-1][1], "states_ms": marks}


async def _guarded(c: Ceiling) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(one_swap(c), SWAP_TIMEOUT_S)
    except Exception as err:
        return {"error": f"{type(err).__name__}: {err}"[:300]}


# -- the batch -----------------------------------------------------------------------------------------------


async def _balances(c: Ceiling) -> dict[str, int]:
    async def ft(account: str) -> int:
        return int(await c.near.view(c.near.near.token.account_id, "ft_balance_of", {"account_id": account}))

    maker, resolver, receiver, near_resolver = await asyncio.gather(
        c.base.token.functions.balanceOf(c.evm.maker.address).call(),
        c.base.token.functions.balanceOf(c.base.account.address).call(),
        ft(c.near.near.receiver.account_id),
        ft(c.near.signer),
    )
    return {
        "base_maker": int(maker),
        "base_ceiling_resolver": int(resolver),
        "near_receiver": receiver,
        "near_ceiling_resolver": near_resolver,
    }


async def _all_withdrawn(c: Ceiling) -> None:
    """Every source escrow and destination lock the batch made reads withdrawn."""
    gate = asyncio.Semaphore(_CHECK_CONCURRENCY)

    async def src(escrow_id: bytes) -> int:
        async with gate:
            return int((await c.base.escrow.functions.getEscrow(escrow_id).call())[9])

    async def dst(lock_id: str) -> str:
        async with gate:
            return str((await c.near.view(c.near.near.htlc.account_id, "get_lock", {"lock_id": lock_id}))["state"])

    src_states = set(await asyncio.gather(*(src(i) for i in c.escrow_ids)))
    dst_states = set(await asyncio.gather(*(dst(i) for i in c.lock_ids)))
    if src_states != {2} or dst_states != {"withdrawn"}:  # EscrowBase.State.Withdrawn
        raise RuntimeError(f"ceiling locks ended as BASE {src_states} / NEAR {dst_states}, not all withdrawn")


async def _batch(c: Ceiling, swaps: int) -> tuple[list[dict[str, Any]], float, dict[str, int]]:
    c.escrow_ids.clear()
    c.lock_ids.clear()
    before = await _balances(c)
    start = time.perf_counter()
    results = await asyncio.gather(*(_guarded(c) for _ in range(swaps)))
    elapsed = time.perf_counter() - start
    failed = [r["error"] for r in results if "error" in r]
    if failed:
        raise RuntimeError(f"{len(failed)} of {swaps} ceiling swaps failed, e.g. {failed[:3]}")
    after = await _balances(c)
    moved = {name: after[name] - before[name] for name in before}
    expected = {
        "base_maker": -swaps * c.plan.src_amount,
        "base_ceiling_resolver": swaps * c.plan.src_amount,
        "near_receiver": swaps * c.plan.dst_amount,
        "near_ceiling_resolver": -swaps * c.plan.dst_amount,
    }
    mismatched = {k: {"moved": moved[k], "expected": v} for k, v in expected.items() if moved[k] != v}
    if mismatched:
        raise RuntimeError(f"the ceiling's balances moved other than {swaps} swaps say: {mismatched}")
    await _all_withdrawn(c)
    return results, elapsed, moved


async def _run(stack: LocalStack, swaps: int, warmup: int) -> dict[str, Any]:
    assert stack.evm is not None and stack.near is not None
    plan = await plan_from_quote(stack)
    keys = [KeyPair.generate() for _ in range(NEAR_KEYS)]
    await _add_keys(stack.near, keys)
    base = await BaseClient(stack.evm, dev_account(RESOLVER_INDEX), stack.options.base_confirmations).start()
    near = await NearClient(stack.near, stack.near.maker.account_id, keys).start()
    try:
        storage_fee = int(await near.view(stack.near.htlc.account_id, "storage_fee", {}))
        c = Ceiling(base, near, stack.evm, plan, storage_fee, [], [])
        if warmup:
            await _batch(c, warmup)
        sent = (base.transactions, near.transactions)
        results, elapsed, moved = await _batch(c, swaps)
        transactions = {"base": base.transactions - sent[0], "near": near.transactions - sent[1]}
        timeouts = near.timeouts
    finally:
        await near.stop()
        await base.stop()
    walls = [r["wall_ms"] for r in results]
    return {
        "swaps": swaps,
        "completed": len(results),
        "completed_per_s": round(len(results) / elapsed, 2) if elapsed > 0 else None,
        "batch_s": round(elapsed, 2),
        "swap_ms": {**summary(walls), "p99_ms": round(percentile(walls, 0.99), 2) if walls else None},
        "phases_ms": _phases(results),
        "transactions": transactions,
        "near_commit_timeouts": timeouts,
        "terms": {
            "src_amount": plan.src_amount,
            "dst_amount": plan.dst_amount,
            "src_timelocks_s": list(plan.src_timelocks),
            "dst_timelocks_s": list(plan.dst_timelocks),
            "src_safety_deposit_wei": plan.src_deposit,
            "dst_safety_deposit_yocto": plan.dst_deposit,
        },
        "accounts": {
            "base_maker": stack.evm.maker.address,
            "base_resolver": f"anvil dev account {RESOLVER_INDEX} ({base.account.address}), not chain-base's",
            "near_resolver": f"{stack.near.maker.account_id} on {NEAR_KEYS} access keys of its own, not chain-near's",
            "near_receiver": stack.near.receiver.account_id,
        },
        "warmup_swaps": warmup,
        "balances_moved": moved,
        "checked": f"balances moved by exactly {swaps} swaps' amounts; all {swaps} locks on each chain read withdrawn",
    }


def run(stack: LocalStack, swaps: int, warmup: int = 1) -> dict[str, Any]:
    """The ceiling batch of `swaps` swaps on the stack's chains (after `warmup` unmeasured ones)."""
    return asyncio.run(_run(stack, swaps, warmup))
