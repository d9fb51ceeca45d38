"""Sending the resolver's transactions: a pool of access keys, one nonce sequence per key.

NEAR orders transactions per access key by nonce, and a transaction that reaches the node after one
with a higher nonce of the same key is refused. Each send therefore checks a key out of the pool for its
whole lifetime (sign, submit, outcome), so two in-flight transactions never share a key and any number
of concurrent requests land; throughput grows with the number of keys. The extra keys are derived from
the resolver's key, so they are the same after every restart, and added to the account on start.

A transport fault during a send re-submits the same signed bytes (same hash, so the chain executes it
at most once) and, if the node has moved past its nonce meanwhile, looks the transaction up by hash.

A send for a lock step is written to the send journal before it is broadcast (swap_runtime.journal): asked
for the step again, by a retry or after a restart, the sender resumes that transaction (looked up, then
submitted again as the same bytes) and signs a new one only when the old one can never execute: refused for
its nonce without having landed, expired, or refused outright.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import base58
from nacl.signing import SigningKey
from py_near import transactions
from py_near.exceptions.provider import Expired, InvalidNonce, JsonProviderError
from py_near.models import Action
from swap_runtime.errors import FailedPrecondition, Unavailable
from swap_runtime.journal import MemoryJournal, SendJournal, settle

from chain_near.rpc import Rpc, error_cause

log = logging.getLogger(__name__)

_KEY_DERIVATION = b"chain-near signer key"
_SEND_TRIES = 4


def _seed(secret_key: str) -> bytes:
    raw = base58.b58decode(secret_key.removeprefix("ed25519:"))
    if len(raw) not in (32, 64):
        raise ValueError("a NEAR ed25519 secret key has 32 (seed) or 64 (seed + public key) bytes")
    return raw[:32]


def derive_seeds(secret_key: str, count: int) -> list[bytes]:
    """The resolver's key first, then `count - 1` keys derived from it (stable across restarts)."""
    main = _seed(secret_key)
    return [main] + [hashlib.sha256(_KEY_DERIVATION + main + i.to_bytes(4, "big")).digest() for i in range(1, count)]


@dataclass
class _Signer:
    secret: bytes  # seed + public key, the form py-near signs with
    public_key: str
    nonce: int | None = None

    @classmethod
    def from_seed(cls, seed: bytes) -> _Signer:
        verify_key = bytes(SigningKey(seed).verify_key)
        return cls(seed + verify_key, "ed25519:" + base58.b58encode(verify_key).decode())


@dataclass(frozen=True)
class ReceiptOutcome:
    receipt_id: str
    executor: str
    block_hash: str
    logs: list[str]
    failure: str | None


def _failure_text(failure: Any) -> str:
    """The contract's panic message out of a nested ActionError; empty for other failures."""
    if not isinstance(failure, dict):
        return ""
    if isinstance(failure.get("ExecutionError"), str):
        return str(failure["ExecutionError"])
    for value in failure.values():
        if text := _failure_text(value):
            return text
    return ""


def _failure(status: Any) -> str | None:
    if isinstance(status, dict) and "Failure" in status:
        return _failure_text(status["Failure"]) or json.dumps(status["Failure"])
    return None


@dataclass(frozen=True)
class Outcome:
    """What a transaction did: its hash, every receipt's logs and failure, and its return value."""

    tx_hash: str
    block_hash: str  # the block that included the transaction
    receipts: list[ReceiptOutcome]
    status: dict[str, Any]

    @classmethod
    def parse(cls, result: dict[str, Any]) -> Outcome:
        receipts = [
            ReceiptOutcome(
                receipt_id=str(r.get("id", "")),
                executor=str(r["outcome"].get("executor_id", "")),
                block_hash=str(r.get("block_hash", "")),
                logs=list(r["outcome"].get("logs", [])),
                failure=_failure(r["outcome"].get("status")),
            )
            for r in result.get("receipts_outcome", [])
        ]
        tx_outcome = result.get("transaction_outcome", {})
        return cls(
            tx_hash=str(result["transaction"]["hash"]),
            block_hash=str(tx_outcome.get("block_hash", "")),
            receipts=receipts,
            status=result.get("status", {}),
        )

    @property
    def failure(self) -> str | None:
        """The first failure of the transaction or of any of its receipts (a refunded ft_transfer_call
        succeeds at the top while the receiver's ft_on_transfer failed)."""
        top = _failure(self.status)
        if top is not None:
            return top
        return next((r.failure for r in self.receipts if r.failure is not None), None)

    @property
    def value(self) -> Any:
        encoded = self.status.get("SuccessValue") if isinstance(self.status, dict) else None
        if not encoded:
            return None
        try:
            return json.loads(base64.b64decode(encoded))
        except (ValueError, binascii.Error):
            return None

    def receipt_of(self, executor: str) -> ReceiptOutcome | None:
        """The first successful receipt executed by `executor` that logged something (its state change)."""
        for receipt in self.receipts:
            if receipt.executor == executor and receipt.failure is None and receipt.logs:
                return receipt
        return None


class TxSender:
    def __init__(
        self,
        rpc: Rpc,
        account_id: str,
        seeds: Sequence[bytes],
        tx_timeout_s: float,
        poll_interval_s: float,
        block_hash_ttl_s: float = 10.0,
        journal: SendJournal | None = None,
    ) -> None:
        if not seeds:
            raise ValueError("at least one signing key is required")
        self._rpc = rpc
        self.account_id = account_id
        self._signers = [_Signer.from_seed(seed) for seed in seeds]
        self._free: asyncio.Queue[_Signer] = asyncio.Queue()
        for signer in self._signers:
            self._free.put_nowait(signer)
        self._timeout = tx_timeout_s
        self._poll = poll_interval_s
        self._hash_ttl = block_hash_ttl_s
        self._block_hash: tuple[bytes, float] | None = None
        self._journal: SendJournal = journal if journal is not None else MemoryJournal()

    @property
    def key_count(self) -> int:
        return len(self._signers)

    async def ensure_keys(self) -> None:
        """Adds the derived keys the account lacks, in one transaction signed with the resolver's key."""
        main = self._signers[0]
        present = await self._present_keys()
        if main.public_key not in present:
            raise RuntimeError(f"the resolver key {main.public_key} is not an access key of {self.account_id}")
        missing = [s for s in self._signers[1:] if s.public_key not in present]
        if not missing:
            return
        actions = [transactions.create_full_access_key_action(s.public_key) for s in missing]
        outcome = await self._send_with(main, self.account_id, actions)
        if outcome.failure is not None:
            # Another instance starting at the same time may have added them first.
            present = await self._present_keys()
            if any(s.public_key not in present for s in missing):
                raise RuntimeError(f"adding signer keys failed: {outcome.failure}")
        log.info("signer keys added", extra={"account": self.account_id, "added": len(missing)})

    async def _present_keys(self) -> set[str]:
        return {str(k["public_key"]) for k in await self._rpc.access_keys(self.account_id)}

    async def send(self, receiver_id: str, actions: list[Action], step: str | None = None) -> Outcome:
        """Signs and submits `actions` to `receiver_id` with a free key; returns once executed. With a `step`
        (one per lock step), a transaction already sent for it is resumed instead of signing another."""
        if step is not None and (entry := await self._journal.get(step)) is not None:
            resumed = await settle(self._journal, step, self._resume(entry))
            if resumed is not None:
                return resumed
        signer = await self._free.get()
        try:
            return await settle(self._journal, step, self._send_with(signer, receiver_id, actions, step))
        finally:
            self._free.put_nowait(signer)

    async def _resume(self, entry: dict[str, Any]) -> Outcome | None:
        """The outcome of a journaled transaction, submitting it again if the node does not know it; None
        when it can never execute."""
        tx_hash = str(entry["tx_hash"])
        log.warning("resuming a transaction sent before", extra={"tx_hash": tx_hash})
        landed = await self._rpc.tx_status(tx_hash, self.account_id)
        if landed is not None:
            return Outcome.parse(landed)
        try:
            result = await self._submit(str(entry["signed"]), tx_hash)
        except InvalidNonce:  # its nonce is used: by itself (landed meanwhile) or by another transaction
            landed = await self._rpc.tx_status(tx_hash, self.account_id)
            return None if landed is None else Outcome.parse(landed)
        except (Expired, FailedPrecondition):
            return None
        return Outcome.parse(result)

    async def _recent_block_hash(self, refresh: bool = False) -> bytes:
        now = time.monotonic()
        if refresh or self._block_hash is None or now - self._block_hash[1] > self._hash_ttl:
            header = await self._rpc.block(finality="final")
            self._block_hash = (base58.b58decode(header["hash"]), now)
        return self._block_hash[0]

    async def _send_with(
        self, signer: _Signer, receiver_id: str, actions: list[Action], step: str | None = None
    ) -> Outcome:
        refresh = False
        for _ in range(_SEND_TRIES):
            if signer.nonce is None:
                signer.nonce = await self._rpc.access_key_nonce(self.account_id, signer.public_key)
            nonce = signer.nonce + 1
            block_hash = await self._recent_block_hash(refresh)
            args = (self.account_id, signer.secret, receiver_id, nonce, actions, block_hash)
            signed = transactions.sign_and_serialize_transaction(*args)
            tx_hash = transactions.calc_trx_hash(*args)
            if step is not None:
                await self._journal.put(step, {"tx_hash": tx_hash, "signed": signed, "nonce": nonce})
            try:
                result = await self._submit(signed, tx_hash)
            except InvalidNonce:
                signer.nonce = None
                landed = await self._rpc.tx_status(tx_hash, self.account_id)
                if landed is not None:  # our own copy, executed before a re-submission
                    signer.nonce = nonce
                    return Outcome.parse(landed)
                log.warning("nonce out of step, resyncing", extra={"key": signer.public_key, "nonce": nonce})
                continue
            except Expired:
                refresh = True
                continue
            except Unavailable:
                signer.nonce = None
                raise
            signer.nonce = nonce
            log.info("tx executed", extra={"tx_hash": tx_hash, "receiver": receiver_id})
            return Outcome.parse(result)
        raise Unavailable("could not agree a nonce with the node", reason="NONCE_UNSYNCED")

    async def _submit(self, signed: str, tx_hash: str) -> dict[str, Any]:
        try:
            return await self._rpc.send_tx(signed)
        except JsonProviderError as exc:
            if error_cause(exc) != "TIMEOUT_ERROR":
                if isinstance(exc, (InvalidNonce, Expired)):
                    raise
                raise FailedPrecondition(
                    f"transaction {tx_hash} refused: {type(exc).__name__}", reason="TX_REFUSED"
                ) from None
        except Unavailable:
            landed = await self._rpc.tx_status(tx_hash, self.account_id)
            if landed is not None:
                return landed
            raise
        return await self._await_outcome(tx_hash)

    async def _await_outcome(self, tx_hash: str) -> dict[str, Any]:
        """The node gave up waiting for execution; the transaction may still land, so poll by hash."""
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            landed = await self._rpc.tx_status(tx_hash, self.account_id)
            if landed is not None:
                return landed
            await asyncio.sleep(self._poll)
        raise Unavailable(f"no outcome for {tx_hash} in {self._timeout:.0f}s", reason="TX_TIMEOUT")
