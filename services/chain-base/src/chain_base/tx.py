"""Sending the resolver's transactions: one nonce sequence, EIP-1559 fees, dropped-tx recovery.

Nonces come from a local sequence, assigned under a lock held only while a transaction is signed and handed to
the node, so any number of transactions are in flight at once without a gap or a collision. Fees come from a
latest block read at most a second before (shared by every send of that second). Receipts are followed from
new blocks: one reader (BlockFollower) looks at each new block's transactions and wakes the senders whose hash
is in it, instead of every sender polling for its receipt. A transaction that vanishes from the node (dropped
from the mempool) is signed again with the same nonce and a higher fee, so later nonces never wait on a hole.

A send for a lock step is written to the send journal before it is broadcast (swap_runtime.journal), with its
nonce and every hash signed for it: asked for the step again, by a retry or after a restart, the sender waits
on that nonce (signing it again if the node dropped it) and signs a new transaction only when the nonce went
to another one and none of the step's hashes has a receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from eth_account import Account
from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from swap_runtime.errors import FailedPrecondition, Unavailable
from swap_runtime.journal import MemoryJournal, SendJournal, settle
from web3.exceptions import TransactionNotFound, Web3RPCError
from web3.types import TxParams, TxReceipt, Wei

from chain_base.rpc import Rpc

log = logging.getLogger(__name__)

_NONCE_ERRORS = ("nonce too low", "nonce too high", "already known", "replacement transaction underpriced")
# How many blocks the follower reads back after a pause; a sender older than that finds its receipt itself.
_CATCH_UP_BLOCKS = 32
# A sender waiting for its block checks its receipt itself at least this often (the follower may have missed it).
_RECHECK_S = 2.0


@dataclass(frozen=True)
class FeePolicy:
    priority_fee_wei: int
    max_fee_multiplier: float
    # The base fee may come from a block read this long ago. A first send only; a resend reads afresh.
    block_max_age_s: float = 1.0


class BlockFollower:
    """Wakes transactions waiting for a receipt when a new block includes them: one reader of new blocks for
    every waiter, running only while some wait. A block's transaction hashes come with the block itself, so
    each new block costs one read, however many transactions are in flight."""

    def __init__(self, rpc: Rpc, poll_interval_s: float) -> None:
        self._rpc = rpc
        self._poll = poll_interval_s
        self._waiting: dict[bytes, asyncio.Event] = {}
        self._seen: int | None = None
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watching(self, hashes: Sequence[bytes]) -> Iterator[asyncio.Event]:
        """An event set when a block that includes one of `hashes` is seen after this call."""
        included = asyncio.Event()
        keys = [bytes(h) for h in hashes]
        for key in keys:
            self._waiting[key] = included
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow(), name="chain-base block follower")
        try:
            yield included
        finally:
            for key in keys:
                if self._waiting.get(key) is included:
                    del self._waiting[key]

    async def _follow(self) -> None:
        while self._waiting:
            try:
                await self._read_new_blocks()
            except Exception as exc:  # the waiters check their receipts themselves meanwhile
                log.warning("block follower: read failed", extra={"error": repr(exc)})
            await asyncio.sleep(self._poll)

    async def _read_new_blocks(self) -> None:
        w3 = self._rpc.w3
        head = await self._rpc.latest_block()
        number = int(head["number"])
        first = number if self._seen is None else max(self._seen + 1, number - _CATCH_UP_BLOCKS)
        between = await asyncio.gather(
            *(self._rpc.call("get_block", partial(w3.eth.get_block, n)) for n in range(first, number))
        )
        for block in [*between, head]:
            for tx_hash in block.get("transactions", []):
                included = self._waiting.get(bytes(tx_hash))  # type: ignore[arg-type]
                if included is not None:
                    included.set()
        self._seen = number


class TxSender:
    def __init__(
        self,
        rpc: Rpc,
        key: str,
        chain_id: int,
        fees: FeePolicy,
        poll_interval_s: float,
        resend_after_s: float,
        timeout_s: float,
        journal: SendJournal | None = None,
    ) -> None:
        self._rpc = rpc
        self._blocks = BlockFollower(rpc, poll_interval_s)
        self.account: LocalAccount = Account.from_key(key)
        self._chain_id = chain_id
        self._fees = fees
        self._poll = poll_interval_s
        self._resend_after = resend_after_s
        self._timeout = timeout_s
        self._nonce_lock = asyncio.Lock()
        self._next_nonce: int | None = None
        self._journal: SendJournal = journal if journal is not None else MemoryJournal()

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def chain_id(self) -> int:
        return self._chain_id

    async def _fees_now(self, bump: int = 0) -> tuple[int, int]:
        block = await self._rpc.latest_block(max_age_s=0.0 if bump else self._fees.block_max_age_s)
        base_fee = int(block.get("baseFeePerGas", 0))
        tip = self._fees.priority_fee_wei
        # Each resend must beat the previous fees by >= 10% or nodes refuse the replacement.
        factor = 1.25**bump
        tip = int(tip * factor) + bump
        max_fee = int(base_fee * self._fees.max_fee_multiplier * factor) + tip
        return max_fee, tip

    async def _sync_nonce(self) -> int:
        w3 = self._rpc.w3
        return await self._rpc.call(
            "get_transaction_count", lambda: w3.eth.get_transaction_count(self.account.address, "pending")
        )

    async def _sign(self, tx: TxParams, nonce: int, bump: int) -> SignedTransaction:
        max_fee, tip = await self._fees_now(bump)
        full: dict[str, Any] = {
            **tx,
            "from": self.account.address,
            "nonce": nonce,
            "chainId": self._chain_id,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
            "type": 2,
        }
        return self.account.sign_transaction(full)

    async def _broadcast(self, signed: SignedTransaction) -> HexBytes:
        w3 = self._rpc.w3
        return await self._rpc.call("send_raw_transaction", lambda: w3.eth.send_raw_transaction(signed.raw_transaction))

    async def _journal_put(self, step: str | None, tx: TxParams, nonce: int, hashes: list[HexBytes]) -> None:
        if step is not None:
            entry = {"tx": dict(tx), "nonce": nonce, "hashes": [h.to_0x_hex() for h in hashes]}
            await self._journal.put(step, entry)

    async def resume(self, step: str) -> TxReceipt | None:
        """The receipt of the transaction already sent for `step`, waiting for it while its nonce is open; None
        when nothing was sent for the step or what was sent can never execute."""
        entry = await self._journal.get(step)
        if entry is None:
            return None
        return await settle(self._journal, step, self._resume(entry, step))

    async def send(self, tx: TxParams, step: str | None = None) -> TxReceipt:
        """Sends `tx` (to, data, value, gas) from the resolver and waits for its receipt. With a `step` (one per
        lock step) the transaction is journaled until its receipt is known; call `resume` first."""
        return await settle(self._journal, step, self._send_new(tx, step))

    async def _send_new(self, tx: TxParams, step: str | None) -> TxReceipt:
        async with self._nonce_lock:
            for _ in range(3):
                if self._next_nonce is None:
                    self._next_nonce = await self._sync_nonce()
                nonce = self._next_nonce
                signed = await self._sign(tx, nonce, bump=0)
                await self._journal_put(step, tx, nonce, [signed.hash])
                try:
                    tx_hash = await self._broadcast(signed)
                except Web3RPCError as exc:
                    if any(marker in str(exc).lower() for marker in _NONCE_ERRORS):
                        log.warning("nonce out of step, resyncing", extra={"nonce": nonce, "error": str(exc)})
                        self._next_nonce = None
                        continue
                    raise
                self._next_nonce = nonce + 1
                break
            else:
                raise Unavailable("could not agree a nonce with the node", reason="NONCE_UNSYNCED")
        log.info("tx sent", extra={"tx_hash": tx_hash.to_0x_hex(), "nonce": nonce})
        return await self._wait(tx, [tx_hash], nonce, step)

    async def _resume(self, entry: dict[str, Any], step: str) -> TxReceipt | None:
        """The receipt of a journaled step, waiting for it if its nonce is still open; None when the nonce
        went to another transaction (the step's never executes)."""
        tx: TxParams = entry["tx"]
        nonce = int(entry["nonce"])
        hashes = [HexBytes(h) for h in entry["hashes"]]
        w3 = self._rpc.w3
        address = self.account.address
        # The count first: a receipt that appears after it is still found below.
        mined = await self._rpc.call("get_transaction_count", lambda: w3.eth.get_transaction_count(address))
        receipt = await self._receipt(hashes)
        if receipt is not None:
            return receipt
        if mined > nonce:
            return None
        log.warning("resuming a transaction sent before", extra={"nonce": nonce, "tx_hash": hashes[-1].to_0x_hex()})
        return await self._wait(tx, hashes, nonce, step)

    async def _receipt(self, hashes: list[HexBytes]) -> TxReceipt | None:
        w3 = self._rpc.w3
        for h in hashes:
            try:
                receipt = await self._rpc.call("get_receipt", partial(w3.eth.get_transaction_receipt, h))
            except TransactionNotFound:
                continue
            if receipt["status"] != 1:
                raise FailedPrecondition(f"transaction {h.to_0x_hex()} reverted on chain", reason="TX_REVERTED")
            return receipt
        return None

    async def _wait(self, tx: TxParams, hashes: list[HexBytes], nonce: int, step: str | None = None) -> TxReceipt:
        hashes = list(hashes)
        started = last_sent = time.monotonic()
        bump = 0
        while True:
            with self._blocks.watching(hashes) as included:
                receipt = await self._receipt(hashes)
                if receipt is not None:
                    return receipt
                now = time.monotonic()
                if now - started > self._timeout:
                    waited = f"{self._timeout:.0f}s"
                    raise Unavailable(f"no receipt for {hashes[0].to_0x_hex()} in {waited}", reason="TX_TIMEOUT")
                if now - last_sent > self._resend_after:
                    if not await self._known(hashes[-1]):
                        bump += 1
                        log.warning("tx dropped, signing again", extra={"nonce": nonce, "bump": bump})
                        signed = await self._sign(tx, nonce, bump)
                        hashes.append(signed.hash)
                        await self._journal_put(step, tx, nonce, hashes)
                        try:
                            await self._broadcast(signed)
                        except Web3RPCError as exc:
                            # "nonce too low": one of our versions was mined meanwhile; the loop finds its receipt.
                            log.info("resend refused", extra={"nonce": nonce, "error": str(exc)})
                    else:
                        await self._fill_gap_below(nonce)
                    last_sent = now
                    await asyncio.sleep(self._poll)
                    continue
                # Until a block includes it, or until it is time to look again on our own.
                until_resend = self._resend_after - (now - last_sent)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(included.wait(), max(self._poll, min(until_resend, _RECHECK_S)))

    async def _fill_gap_below(self, nonce: int) -> None:
        """A known tx that does not get mined may wait on a lower nonce whose tx vanished (dropped, or
        reorged out after its sender returned). Nobody waits on that nonce any more, so fill it with a
        zero-value transfer to ourselves; the real transaction is then mined in order."""
        w3 = self._rpc.w3
        address = self.account.address
        async with self._nonce_lock:
            mined = await self._rpc.call("get_transaction_count", lambda: w3.eth.get_transaction_count(address))
            pending = await self._sync_nonce()
            if mined >= nonce or pending > mined:
                return  # nothing missing below us, or the lower nonces are pending and will be mined
            for missing in range(mined, nonce):
                log.warning("filling a nonce gap", extra={"nonce": missing})
                filler: TxParams = {"to": address, "value": Wei(0), "gas": 21_000}
                try:
                    await self._broadcast(await self._sign(filler, missing, bump=1))
                except Web3RPCError as exc:
                    log.info("gap filler refused", extra={"nonce": missing, "error": str(exc)})
            self._next_nonce = max(self._next_nonce or 0, nonce + 1)

    async def _known(self, tx_hash: HexBytes) -> bool:
        w3 = self._rpc.w3
        try:
            await self._rpc.call("get_transaction", lambda: w3.eth.get_transaction(tx_hash))
        except TransactionNotFound:
            return False
        return True
