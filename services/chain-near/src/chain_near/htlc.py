"""The NEAR HTLC contract as domain operations: read, lock, withdraw, refund, balances.

Every write reads chain state first, so repeating a step that already happened sends nothing (the saga
may retry any step after a crash). The lock id is derived from the depositor and the nonce
(hex(sha256("<depositor>:<nonce>"))), so a lock is found again before anything is sent.

Native locks are one `lock_native` call carrying amount + safety deposit. NEP-141 locks are an
`ft_transfer_call` to the HTLC whose message holds the terms; their safety deposit comes from a native
balance the resolver prepays on the HTLC with `deposit_native` (topped up only by what the locks in
flight need beyond what is already there). The beneficiary and the HTLC are registered with the token
(NEP-145 storage) before the first lock, since a payout to an unregistered account bounces.

A withdrawal or refund is a payout promise and an `on_payout` callback: the call returns false when the
payout bounced and the lock is active again, which is reported as PAYOUT_FAILED.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

from py_near import transactions
from py_near.models import Action
from swap_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from swap_runtime.singleflight import SingleFlight

from chain_near.feed import CREATED, REFUNDED, WITHDRAWN, LockFeed, Position
from chain_near.model import (
    NATIVE,
    STATES,
    HtlcEvent,
    Lock,
    LockRequest,
    LockView,
    MakerCall,
    State,
    Timelocks,
    TxRef,
    lock_id_for,
)
from chain_near.panics import payout_failed, to_domain_error
from chain_near.rpc import Rpc, UnknownBlockError, ViewError
from chain_near.tx import Outcome, TxSender

log = logging.getLogger(__name__)

EVENT_PREFIX = "EVENT_JSON:"
HTLC_STANDARD = "swap_htlc"
TGAS = 10**12
_STORAGE_GAS = 30 * TGAS
# Blocks searched back from an event for the transaction behind it (a transaction's receipts run within a
# few blocks of it: the call, the payout, the callback).
_ATTRIBUTION_DEPTH = 6
_REMEMBERED = 100_000

K = TypeVar("K")
V = TypeVar("V")
_ONE_YOCTO = 1


@dataclass(frozen=True)
class Gas:
    call: int
    ft_call: int


def _lock_from_json(data: dict[str, Any]) -> Lock:
    secret = data.get("secret")
    return Lock(
        lock_id=str(data["lock_id"]),
        state=STATES[str(data["state"])],
        depositor=str(data["depositor"]),
        operator=str(data["operator"]),
        beneficiary=str(data["beneficiary"]),
        token=str(data["token"]),
        amount=int(data["amount"]),
        safety_deposit=int(data["safety_deposit"]),
        hashlock=bytes.fromhex(str(data["hashlock"])),
        timelocks=Timelocks.from_json(data["timelocks"]),
        locked_at=int(data["locked_at"]),
        locked_height=int(data["locked_height"]),
        secret=bytes.fromhex(secret) if secret else None,
    )


def lock_from_event(data: dict[str, Any]) -> Lock:
    """The lock as an event recorded it (every term, and the secret for a withdrawal)."""
    return _lock_from_json(data)


def _function_call(method: str, args: dict[str, Any], gas: int, deposit: int) -> Action:
    return transactions.create_function_call_action(method, json.dumps(args).encode(), gas, deposit)


# How old the feed's head may be for a window check it passes.
_HEAD_AGE_S = 0.5


class _Recent(OrderedDict[K, V]):
    """A mapping that forgets its oldest entries beyond `limit`. The service runs for months; the
    references it keeps only name transactions and blocks, and a lock whose entries were forgotten is
    still described from its own state."""

    def __init__(self, limit: int = _REMEMBERED) -> None:
        super().__init__()
        self._limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        if len(self) > self._limit:
            self.popitem(last=False)


class Htlc:
    def __init__(
        self,
        rpc: Rpc,
        sender: TxSender,
        contract: str,
        gas: Gas,
        start_height: int = 0,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._rpc = rpc
        self._sender = sender
        self.contract = contract
        self._gas = gas
        # Final blocks never change, so their hashes are kept.
        self._block_hashes: _Recent[int, str] = _Recent()
        # Where the steps of each lock landed, by (lock id, event): this service's sends, resolved
        # references, and the events read from the HTLC.
        self._sent: _Recent[tuple[str, str], TxRef] = _Recent()
        self._seen: _Recent[tuple[str, str], HtlcEvent] = _Recent()
        self._receipt_tx: _Recent[str, str] = _Recent()
        self._ended: _Recent[str, dict[str, Any]] = _Recent()
        self._fee: int | None = None
        # Each lock as this service's own last transaction on it left it (from that receipt's event), and the
        # highest final height read so far: the reply to the call that sent the transaction comes from these.
        self._own: _Recent[str, Lock] = _Recent()
        self._final_seen = 0
        self._accounts: _Recent[str, float] = _Recent()
        self._tokens: _Recent[str, None] = _Recent(limit=1_000)  # accounts that answered as NEP-141 tokens
        self.feed = LockFeed(rpc, contract, start_height, poll_interval_s, on_event=self.remember)
        self._registered: set[tuple[str, str]] = set()
        self._registration_lock = asyncio.Lock()
        self._prepaid_lock = asyncio.Lock()
        self._prepaid_in_flight = 0
        # One transaction per step of a lock at a time (a retried or second request joins the one in flight).
        self._creates: SingleFlight[str, tuple[str, bool]] = SingleFlight()
        self._closes: SingleFlight[tuple[str, str], TxRef | None] = SingleFlight()

    @property
    def resolver(self) -> str:
        return self._sender.account_id

    # -- reads -------------------------------------------------------------------------------------

    async def head(self) -> tuple[int, int]:
        """(latest block height, its timestamp in ns)."""
        header = await self._rpc.block(finality="optimistic")
        return int(header["height"]), int(header["timestamp_nanosec"])

    async def final_head(self) -> tuple[int, str, int]:
        """(final block height, its hash, its timestamp in ns)."""
        header = await self._rpc.block(finality="final")
        height = int(header["height"])
        self._block_hashes[height] = str(header["hash"])
        self._final_seen = max(self._final_seen, height)
        return height, str(header["hash"]), int(header["timestamp_nanosec"])

    async def block_hash(self, height: int, final_height: int | None = None) -> str:
        if (known := self._block_hashes.get(height)) is not None:
            return known
        header = await self._rpc.block(block_id=height)
        block_hash = str(header["hash"])
        if final_height is not None and height <= final_height:
            self._block_hashes[height] = block_hash
        return block_hash

    async def read(self, lock_id: str, finality: str = "optimistic") -> Lock | None:
        """The lock, terms included. An ended lock's record is gone from the HTLC (a tombstone keeps its state,
        secret and the height it was made at): its terms come from its lock_created event, or from the
        get_lock view at the block it was made in."""
        data, _ = await self._rpc.view(self.contract, "get_lock", {"lock_id": lock_id}, finality)
        if data is None:
            return None
        if data.get("ended"):
            terms = self._ended.get(lock_id)
            if terms is None:
                created = self._seen.get((lock_id, CREATED))
                if created is not None:
                    terms = dict(created.data)
                else:
                    terms = await self.feed.terms(lock_id, int(data["locked_height"]))
                self._ended[lock_id] = terms
            data = {**terms, "state": data["state"], "secret": data.get("secret")}
        return _lock_from_json(data)

    async def storage_fee(self) -> int:
        """What the HTLC charges for a lock's storage, on top of amount and safety deposit (its storage_fee
        view, read once: it is a constant of the contract)."""
        if self._fee is None:
            value, _ = await self._rpc.view(self.contract, "storage_fee", {})
            self._fee = int(value)
        return self._fee

    async def view(self, lock_id: str) -> LockView | None:
        lock, (final_height, _, _) = await asyncio.gather(self.read(lock_id), self.final_head())
        if lock is None:
            return None
        final = lock.locked_height <= final_height
        closing = {State.WITHDRAWN: WITHDRAWN, State.REFUNDED: REFUNDED}.get(lock.state)
        kinds = [CREATED] if closing is None else [CREATED, closing]
        if any(self._step(lock_id, kind) is None for kind in kinds):
            await self.feed.sync()
        if self._step(lock_id, CREATED) is None and not self.feed.keeps(Position(lock.locked_height, -1)):
            # Made before this service started following the HTLC: its block says where.
            for event in await self.feed.scan([lock.locked_height], {}):
                self.remember(event)
        created = await self.step_ref(lock_id, CREATED, final_height)
        closed = await self.step_ref(lock_id, closing, final_height) if closing else None
        if created is None:  # not final yet: where the lock's state says it was made
            block_hash = await self.block_hash(lock.locked_height, final_height)
            created = TxRef(tx_hash="", block_height=lock.locked_height, block_hash=block_hash)
        confirmations = final_height - lock.locked_height + 1 if final else 0
        closed_final = closed is not None
        if closing is not None and not closed_final:
            # Ended where this service saw no event (before it started, or while it was down): the end is
            # final when the final state says so, even if the transaction that made it is not known here.
            settled = await self.read(lock_id, finality="final")
            closed_final = settled is not None and settled.state is lock.state
        return LockView(lock, created, confirmations, final, closed, closed_final)

    def receipt_view(self, lock_id: str, kind: str) -> LockView | None:
        """The lock as this service's own transaction (`kind`: its creation, withdrawal or refund) just left it,
        from that receipt's event and without a read: the reply to the call that sent it. Its depth is judged
        against the highest final height read so far, so it may read less final than it is, never more. None
        when the event or the creation's place is not known here."""
        lock = self._own.get(lock_id)
        created = self._sent.get((lock_id, CREATED))
        closed = self._sent.get((lock_id, kind)) if kind != CREATED else None
        if lock is None or created is None or (kind != CREATED and closed is None):
            return None
        final = lock.locked_height <= self._final_seen
        confirmations = self._final_seen - lock.locked_height + 1 if final else 0
        return LockView(lock, created, confirmations, final, closed, closed_final=False)

    def remember(self, event: HtlcEvent) -> None:
        key = (event.lock_id, event.name)
        if key not in self._seen:
            self._seen[key] = event

    def _step(self, lock_id: str, kind: str) -> TxRef | HtlcEvent | None:
        return self._sent.get((lock_id, kind)) or self._seen.get((lock_id, kind))

    async def step_ref(self, lock_id: str, kind: str, final_height: int) -> TxRef | None:
        """Where a step of a lock landed: from this service's own send, or from the event it recorded."""
        if (sent := self._sent.get((lock_id, kind))) is not None:
            return sent
        event = self._seen.get((lock_id, kind))
        if event is None:
            return None
        ref = await self.event_ref(event, final_height)
        if ref.tx_hash:
            self._sent[(lock_id, kind)] = ref
        return ref

    async def event_ref(self, event: HtlcEvent, final_height: int) -> TxRef:
        block_hash = await self.block_hash(event.block_height, final_height)
        tx_hash = event.tx_hash or await self._attribute(event)
        return TxRef(tx_hash=tx_hash, block_height=event.block_height, block_hash=block_hash)

    async def _attribute(self, event: HtlcEvent) -> str:
        """The transaction behind an event. Receipts do not name their transaction, so unless this
        service sent it, the blocks up to the event's are searched (newest first) for a transaction of the
        account that signed the event's receipt (the depositor of a lock; for a withdrawal or refund, the
        signer its payout callback names) whose outcome contains that receipt. Empty when none is found within
        the search depth."""
        if event.receipt_id in self._receipt_tx:
            return self._receipt_tx[event.receipt_id]
        if not event.receipt_id:
            return ""
        if event.name == CREATED:
            signer = str(event.data.get("depositor") or "")
        else:
            receipt = await self._rpc.receipt(event.receipt_id)
            signer = str(((receipt.get("receipt") or {}).get("Action") or {}).get("signer_id") or "")
        if not signer:
            return ""
        for height in range(event.block_height, max(event.block_height - _ATTRIBUTION_DEPTH, 0), -1):
            try:
                block = await self._rpc.request("block", "block", {"block_id": height})
            except UnknownBlockError:
                continue  # heights can be skipped
            for header in block.get("chunks", []):
                chunk = await self._rpc.request("chunk", "chunk", {"chunk_id": header["chunk_hash"]})
                for tx in chunk.get("transactions", []):
                    if tx.get("signer_id") != signer:
                        continue
                    tx_hash = str(tx["hash"])
                    result = await self._rpc.tx_status(tx_hash, signer)
                    for outcome in (result or {}).get("receipts_outcome", []):
                        self._receipt_tx[str(outcome.get("id"))] = tx_hash
                    if self._receipt_tx.get(event.receipt_id) == tx_hash:
                        return tx_hash
        # Searched once: a final event's transaction does not appear later.
        self._receipt_tx[event.receipt_id] = ""
        return ""

    async def account_exists(self, account_id: str, max_age_s: float = 0.0) -> bool:
        """Whether the account exists; with `max_age_s`, a yes read that recently is answered from memory."""
        seen = self._accounts.get(account_id)
        if max_age_s > 0 and seen is not None and time.monotonic() - seen <= max_age_s:
            return True
        exists = await self._rpc.account(account_id) is not None
        if exists:
            self._accounts[account_id] = time.monotonic()
        return exists

    async def is_token(self, account_id: str) -> bool:
        """The account runs a NEP-141 contract (answers ft_balance_of). A yes is remembered: a lock of a token
        whose contract was replaced since fails in its transfer (refunded by the token), not silently."""
        if account_id in self._tokens:
            return True
        try:
            await self._rpc.view(account_id, "ft_balance_of", {"account_id": self.contract})
        except ViewError:
            return False
        self._tokens[account_id] = None
        return True

    async def balance(self, account_id: str, token: str) -> int:
        if token == NATIVE:
            account = await self._rpc.account(account_id)
            return 0 if account is None else int(account["amount"])
        value, _ = await self._rpc.view(token, "ft_balance_of", {"account_id": account_id})
        return int(value or 0)

    # -- writes ------------------------------------------------------------------------------------

    def lock_id(self, nonce: str) -> str:
        return lock_id_for(self.resolver, nonce)

    async def create(self, request: LockRequest) -> tuple[str, bool]:
        """Locks the resolver's funds for a beneficiary. Returns (lock id, whether a tx was sent). A request for
        a lock already being made joins it."""
        lock_id = self.lock_id(request.nonce)
        return await self._creates.run(lock_id, lambda: self._create(lock_id, request))

    async def _create(self, lock_id: str, request: LockRequest) -> tuple[str, bool]:
        # A lock this service made or saw is not made again. Otherwise no read first: a lock id is new but for a
        # retry after a restart, and the HTLC refuses a lock that exists (LOCK_EXISTS, below), for some gas.
        if self._step(lock_id, CREATED) is not None:
            return lock_id, False
        if request.token == NATIVE:
            deposit = request.amount + request.safety_deposit + await self.storage_fee()
            outcome = await self._sender.send(
                self.contract,
                [_function_call("lock_native", request.message(self.resolver), self._gas.call, deposit)],
                step=f"{lock_id}:create",
            )
        else:
            outcome = await self._create_ft(lock_id, request)
        failure = outcome.failure
        if failure is not None:
            error = to_domain_error(failure, "create lock")
            if getattr(error, "reason", "") == "LOCK_EXISTS":
                # A concurrent request with the same nonce won the race: the lock is there, nothing to do.
                return lock_id, False
            raise error
        await self._record(lock_id, CREATED, outcome)
        return lock_id, True

    async def maker_call(self, maker: str, request: LockRequest) -> MakerCall:
        """The call with which `maker` locks the source leg for this resolver (the lock's operator).

        Every lock pays the HTLC's storage fee in NEAR: a native lock in its deposit, a NEP-141 lock (whose
        ft_transfer_call carries 1 yoctoNEAR) from a native balance prepaid on the HTLC, with its safety
        deposit. While the maker's prepaid balance falls short, the call comes with `prepay`: the
        deposit_native top-up of the shortfall, to make first.
        """
        lock_id = lock_id_for(maker, request.nonce)
        message = request.message(self.resolver)
        fee = await self.storage_fee()
        if request.token == NATIVE:
            deposit = request.amount + request.safety_deposit + fee
            return MakerCall(lock_id, self.contract, "lock_native", message, deposit, self._gas.call)
        await self._ensure_registered(request.token, self.contract)
        await self._ensure_registered(request.token, request.beneficiary)
        value, _ = await self._rpc.view(self.contract, "native_balance_of", {"account_id": maker})
        shortfall = request.safety_deposit + fee - int(value or 0)
        prepay = None
        if shortfall > 0:
            prepay = MakerCall(lock_id, self.contract, "deposit_native", {}, shortfall, self._gas.call)
        if not request.safety_deposit:
            message.pop("safety_deposit")
        args: dict[str, object] = {
            "receiver_id": self.contract,
            "amount": str(request.amount),
            "msg": json.dumps(message),
        }
        return MakerCall(lock_id, request.token, "ft_transfer_call", args, _ONE_YOCTO, self._gas.ft_call, prepay)

    async def _create_ft(self, lock_id: str, request: LockRequest) -> Outcome:
        await self._ensure_registered(request.token, self.contract)
        await self._ensure_registered(request.token, request.beneficiary)
        async with self._prepaid(request.safety_deposit + await self.storage_fee()):
            message = request.message(self.resolver)
            if not request.safety_deposit:
                message.pop("safety_deposit")
            return await self._sender.send(
                request.token,
                [
                    _function_call(
                        "ft_transfer_call",
                        {"receiver_id": self.contract, "amount": str(request.amount), "msg": json.dumps(message)},
                        self._gas.ft_call,
                        _ONE_YOCTO,
                    )
                ],
                step=f"{lock_id}:create",
            )

    @contextlib.asynccontextmanager
    async def _prepaid(self, deposit: int) -> AsyncIterator[None]:
        """Holds the prepaid safety deposit and storage fee of one token lock for as long as the lock is in
        flight."""
        if not deposit:
            yield
            return
        self._prepaid_in_flight += deposit
        try:
            await self._top_up()
            yield
        finally:
            self._prepaid_in_flight -= deposit

    async def _top_up(self) -> None:
        """Tops up the resolver's native balance on the HTLC to cover every token lock in flight. A lock reserves
        its share before it waits for the top-up in progress, so the next top-up covers every lock that arrived
        meanwhile: under load, one deposit_native serves many locks instead of one each, one after the other.
        The reservations of locks whose transfer already consumed theirs are still counted, so a top-up errs on
        the high side and later locks use what is left over."""
        async with self._prepaid_lock:
            value, _ = await self._rpc.view(self.contract, "native_balance_of", {"account_id": self.resolver})
            needed = self._prepaid_in_flight - int(value or 0)
            if needed > 0:
                outcome = await self._sender.send(
                    self.contract, [_function_call("deposit_native", {}, self._gas.call, needed)]
                )
                if outcome.failure is not None:
                    raise to_domain_error(outcome.failure, "prepay safety deposit")

    async def _ensure_registered(self, token: str, account_id: str) -> None:
        if (token, account_id) in self._registered:
            return
        async with self._registration_lock:
            if (token, account_id) in self._registered:
                return
            try:
                storage, _ = await self._rpc.view(token, "storage_balance_of", {"account_id": account_id})
            except ViewError:
                storage = {}  # no NEP-145 on this token: nothing to register
            if storage is None:
                bounds, _ = await self._rpc.view(token, "storage_balance_bounds", {})
                minimum = int(bounds["min"])
                log.info("registering account with token", extra={"token": token, "account": account_id})
                outcome = await self._sender.send(
                    token, [_function_call("storage_deposit", {"account_id": account_id}, _STORAGE_GAS, minimum)]
                )
                if outcome.failure is not None:
                    raise to_domain_error(outcome.failure, "token storage registration")
            self._registered.add((token, account_id))

    async def withdraw(self, lock_id: str, secret: bytes) -> TxRef | None:
        """Withdraws with the secret; None when it was withdrawn already (nothing sent). A withdrawal of the
        same lock already in flight is joined, not sent again."""
        return await self._closes.run(("withdraw", lock_id), lambda: self._withdraw(lock_id, secret))

    async def _withdraw(self, lock_id: str, secret: bytes) -> TxRef | None:
        own = self._own.get(lock_id)
        if own is not None and own.state is State.ACTIVE and hashlib.sha256(secret).digest() == own.hashlock:
            # Active as this service's own transaction left it: no read first. If it ended meanwhile the
            # HTLC refuses ("not active", some gas spent) and the read below says how it ended.
            try:
                return await self._send_withdraw(lock_id, own, secret)
            except FailedPrecondition as exc:
                if exc.reason != "LOCK_NOT_ACTIVE":
                    raise
        lock = await self._active_or_done(lock_id, State.WITHDRAWN)
        if hashlib.sha256(secret).digest() != lock.hashlock:
            raise InvalidArgument("secret", "does not match the lock's hashlock")
        if lock.state is State.WITHDRAWN:
            return None
        return await self._send_withdraw(lock_id, lock, secret)

    async def _send_withdraw(self, lock_id: str, lock: Lock, secret: bytes) -> TxRef:
        await self._in_window(lock, "withdraw", hide=secret)
        args = {"lock_id": lock_id, "secret": secret.hex()}
        outcome = await self._sender.send(
            self.contract, [_function_call("withdraw", args, self._gas.call, 0)], step=f"{lock_id}:withdraw"
        )
        return await self._closed(lock_id, WITHDRAWN, outcome, "withdraw", hide=secret)

    async def refund(self, lock_id: str) -> TxRef | None:
        """Refunds the depositor; None when it was refunded already (nothing sent). A refund of the same lock
        already in flight is joined, not sent again."""
        return await self._closes.run(("refund", lock_id), lambda: self._refund(lock_id))

    async def _refund(self, lock_id: str) -> TxRef | None:
        lock = await self._active_or_done(lock_id, State.REFUNDED)
        if lock.state is State.REFUNDED:
            return None
        await self._in_window(lock, "refund")
        args = {"lock_id": lock_id}
        outcome = await self._sender.send(
            self.contract, [_function_call("refund", args, self._gas.call, 0)], step=f"{lock_id}:refund"
        )
        return await self._closed(lock_id, REFUNDED, outcome, "refund")

    async def _in_window(self, lock: Lock, action: str, hide: bytes | None = None) -> None:
        """Refuses, without sending, a call the HTLC would refuse in the latest block: the transaction lands in
        that block or a later one, whose time is no earlier, so a window still closed now costs a failed
        transaction. (A withdrawal may still find its window closed by the time it lands.) The feed's head,
        read at most half a second ago, answers when it finds the window open: chain time only grows, so an
        open window it saw is open now (one that closed since costs a refused transaction, as it would anyway)."""
        seen = self.feed.head
        fresh = seen is not None and time.monotonic() - self.feed.head_read_at <= _HEAD_AGE_S
        if seen is not None and fresh and lock.window_panic(action, self.resolver, seen.chain_time_ns) is None:
            return
        _, now_ns = await self.head()
        panic = lock.window_panic(action, self.resolver, now_ns)
        if panic is not None:
            raise to_domain_error(panic, action, hide=hide)

    async def _closed(self, lock_id: str, kind: str, outcome: Outcome, action: str, hide: bytes | None = None) -> TxRef:
        if outcome.value is False:  # on_payout's answer: the payout failed and the lock is active again
            raise payout_failed(outcome.failure, action, hide=hide)
        if outcome.failure is not None:
            raise to_domain_error(outcome.failure, action, hide=hide)
        return await self._record(lock_id, kind, outcome)

    async def _record(self, lock_id: str, kind: str, outcome: Outcome) -> TxRef:
        """Remembers where a step this service sent landed: the block of the HTLC receipt that logged it."""
        for each in outcome.receipts:
            self._receipt_tx[each.receipt_id] = outcome.tx_hash
        receipt = next(
            (
                r
                for r in outcome.receipts
                if r.executor == self.contract and any(_is_event(line, kind) for line in r.logs)
            ),
            None,
        )
        block_hash = receipt.block_hash if receipt is not None else outcome.block_hash
        data = _event_data(receipt.logs, kind) if receipt is not None else None
        if data is not None:
            self._own[lock_id] = lock_from_event(data)
        # The event names its block's height: lock_created as locked_height, lock_withdrawn / lock_refunded
        # as block_height. A contract without it costs a read of the block.
        named = None if data is None else data.get("locked_height" if kind == CREATED else "block_height")
        if named is None:
            named = (await self._rpc.block(block_id=block_hash))["height"]
        height = int(named)
        ref = TxRef(tx_hash=outcome.tx_hash, block_height=height, block_hash=block_hash)
        self._sent[(lock_id, kind)] = ref
        return ref

    async def _active_or_done(self, lock_id: str, done: State) -> Lock:
        lock = await self.read(lock_id)
        if lock is None:
            raise NotFound(f"no lock {lock_id}", reason="LOCK_NOT_FOUND")
        if lock.state not in (State.ACTIVE, done):
            raise FailedPrecondition(
                f"the lock is {lock.state.name.lower()}",
                reason="LOCK_NOT_ACTIVE",
                metadata={"state": lock.state.name},
            )
        return lock


def _payload(line: str) -> dict[str, Any] | None:
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        payload = json.loads(line[len(EVENT_PREFIX) :])
    except ValueError:
        return None
    return payload if isinstance(payload, dict) and payload.get("standard") == HTLC_STANDARD else None


def _is_event(line: str, kind: str) -> bool:
    payload = _payload(line)
    return payload is not None and payload.get("event") == kind


def _event_data(logs: list[str], kind: str) -> dict[str, Any] | None:
    """The lock a `kind` event in these log lines describes (its one data element)."""
    for line in logs:
        payload = _payload(line)
        if payload is not None and payload.get("event") == kind:
            data = payload.get("data")
            if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
                return data[0]
    return None
