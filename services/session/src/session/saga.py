"""The saga that drives one swap from the maker's lock to two withdrawals, or to refunds.

One pass (`advance`) reads the record, asks the chains (chain state is the truth, never memory),
takes at most one step and persists the transition before the next pass. Every step is idempotent:
locks have ids derived from their terms, withdrawals and cancellations check chain state first, so a
pass repeated after a crash or on another replica sends nothing twice.

Timelock rules (Fusion+):
- the destination lock is made only while dst cancellation + margin < src cancellation still holds;
- the secret is revealed only after both locks are read back and match every term, and only while
  the destination withdrawal window has more than the margin left;
- once the secret is on chain the source is withdrawn, never refunded;
- after any lock a session ends only in completed or refunded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from swap.chain.v1 import chain_pb2
from swap.common.v1 import common_pb2
from swap_runtime import context
from swap_runtime.errors import DomainError
from swap_runtime.tracing import resumed

from session.chains import Chain
from session.metrics import SESSIONS_ENDED, STEP_DURATION, SWAP_DURATION
from session.model import SessionRecord, Step
from session.secrets import SecretBox
from session.states import TERMINAL, State, check
from session.store import SessionStore
from session.views import quote_of, snapshot

log = logging.getLogger(__name__)
S = State
ACTIVE = chain_pb2.LOCK_STATE_ACTIVE
ABSENT = chain_pb2.LOCK_STATE_ABSENT
WITHDRAWN = chain_pb2.LOCK_STATE_WITHDRAWN
CANCELLED = chain_pb2.LOCK_STATE_CANCELLED


@dataclass(frozen=True)
class SagaSettings:
    poll_interval_s: float
    # Seconds allowed for the destination lock to land, on top of its timelocks, when deciding whether
    # there is still time to lock it safely.
    lock_allowance_s: int


def auction_amount(auction_start: int, duration_s: int, start_amount: int, end_amount: int, now: int) -> int:
    """The Dutch auction's destination amount at `now`: linear from start to end over the duration,
    rounded down like the quote service rounds it (what the receiver gets never rounds up)."""
    if duration_s <= 0 or now >= auction_start + duration_s:
        return end_amount
    remaining = min(auction_start + duration_s - now, duration_s)
    return end_amount + (start_amount - end_amount) * remaining // duration_s


def dst_salt(session_id: str) -> str:
    """The destination lock's salt: 24 bytes of a hash, so its decimal form fits NEAR's 64-char nonces."""
    return str(int.from_bytes(hashlib.sha256(f"dst:{session_id}".encode()).digest()[:24], "big"))


class Retry(Exception):
    """Nothing to do yet (a window not open, a lock not final): try again next pass."""


class Saga:
    def __init__(
        self, store: SessionStore, chains: Mapping[str, Chain], box: SecretBox, settings: SagaSettings
    ) -> None:
        self._store = store
        self._chains = chains
        self._box = box
        self._settings = settings
        self._clock: Callable[[], float] = time.time

    # -- persistence ---------------------------------------------------------------------------------

    async def move(self, record: SessionRecord, to: State, note: str = "", chain: str = "", tx: str = "") -> None:
        check(record.state, to)
        now = self._clock()
        leaving = record.state
        since = record.steps[-1].at if record.steps else record.created_at
        record.version += 1
        record.state = to
        record.updated_at = now
        record.steps.append(Step(state=to, at=now, chain=chain, tx_hash=tx, note=note))
        if to in TERMINAL:
            # An ended session never needs its secret again: it is public (completed) or must never be.
            record.sealed_secret = ""
        await self._store.save(record, snapshot(record))
        STEP_DURATION.labels(leaving.value).observe(max(now - since, 0))
        if to in TERMINAL:
            SESSIONS_ENDED.labels(to.value, record.error_reason).inc()
            SWAP_DURATION.labels(to.value).observe(max(now - record.created_at, 0))
        log.info("session moved", extra={"state": to.value, "note": note, "tx_hash": tx})

    async def touch(self, record: SessionRecord) -> None:
        """Persists field changes without a transition (lock ids, amounts) before acting on them."""
        record.version += 1
        record.updated_at = self._clock()
        await self._store.save(record, snapshot(record))

    # -- the loop ------------------------------------------------------------------------------------

    async def run(self, session_id: str, still_mine: Callable[[], Awaitable[bool]] | None = None) -> None:
        """Drives one session until it is terminal, or until `still_mine` says another replica took it."""
        context.session_id.set(session_id)
        while True:
            if still_mine is not None and not await still_mine():
                log.warning("lease lost; another replica drives this session")
                return
            record = await self._store.get(session_id)
            if record is None or record.state in TERMINAL:
                return
            try:
                await self.advance(record)
                continue
            except Retry:
                pass
            except DomainError as err:
                log.warning("step failed, will retry", extra={"state": record.state.value, "reason": err.reason})
            await asyncio.sleep(self._settings.poll_interval_s)

    async def advance(self, record: SessionRecord) -> None:
        if record.state in TERMINAL:
            return
        handler = {
            S.INITIALIZED: self._initialized,
            S.EXECUTING: self._executing,
            S.SOURCE_LOCKING: self._source_locking,
            S.SOURCE_LOCKED: self._source_locked,
            S.DESTINATION_LOCKING: self._destination_locking,
            S.BOTH_LOCKED: self._both_locked,
            S.REVEALING_SECRET: self._revealing,
            S.CANCELLING: self._cancelling,
            S.REFUNDING: self._refunding,
        }[record.state]
        with resumed(record.trace_parent, f"saga {record.state.value}"):
            await handler(record)

    # -- helpers -------------------------------------------------------------------------------------

    def _src(self, record: SessionRecord) -> Chain:
        return self._chains[record.src.chain]

    def _dst(self, record: SessionRecord) -> Chain:
        return self._chains[record.dst.chain]

    async def _now(self, chain: Chain) -> int:
        return int((await chain.info()).chain_time)

    async def _fail(self, record: SessionRecord, to: State, reason: str, message: str) -> None:
        record.error_reason, record.error_message = reason, message
        await self.move(record, to, note=message)

    # -- states --------------------------------------------------------------------------------------

    async def _initialized(self, record: SessionRecord) -> None:
        if record.cancel_requested:
            await self.move(record, S.CANCELLED, note="cancelled by the maker")
        elif await self._now(self._src(record)) > record.order_deadline:
            await self._fail(record, S.TIMEOUT, "ORDER_EXPIRED", "the order deadline passed before execution")
        else:
            raise Retry

    async def _executing(self, record: SessionRecord) -> None:
        src = self._src(record)
        if record.src.chain == "near":
            lock = await src.get_lock(record.src.lock_id)
            if lock.state != ABSENT:
                await self.move(
                    record, S.SOURCE_LOCKING, note="the maker's lock appeared", chain="near", tx=lock.created.tx_hash
                )
            elif record.cancel_requested:
                await self.move(record, S.CANCELLED, note="cancelled before the maker locked")
            elif await self._now(src) > record.order_deadline:
                await self._fail(record, S.TIMEOUT, "MAKER_LOCK_MISSING", "the maker did not lock before the deadline")
            else:
                raise Retry
            return
        if record.cancel_requested:
            await self.move(record, S.CANCELLED, note="cancelled before the source lock")
        else:
            await self.move(record, S.SOURCE_LOCKING, note="submitting the maker's order")

    async def _source_locking(self, record: SessionRecord) -> None:
        if record.cancel_requested:
            await self.move(record, S.CANCELLING, note="cancel requested while the source lock may be in flight")
            return
        src = self._src(record)
        if record.src.chain == "base" and (await src.get_lock(record.src.lock_id)).state == ABSENT:
            try:
                await src.create_lock(self._maker_order(record))
            except DomainError as err:
                if err.reason == "CHAIN_UNAVAILABLE":
                    raise
                if (await src.get_lock(record.src.lock_id)).state == ABSENT:
                    await self._fail(record, S.FAILED, "SOURCE_LOCK_REJECTED", err.message)
                    return
        lock = await src.get_lock(record.src.lock_id)
        if lock.state == ABSENT:
            raise Retry
        if not lock.final:
            raise Retry
        problem = await self._check_src(record, lock)
        if problem:
            await self._fail(record, S.REFUNDING, "SOURCE_LOCK_MISMATCH", problem)
            return
        await self.move(
            record, S.SOURCE_LOCKED, note="source lock final", chain=record.src.chain, tx=lock.created.tx_hash
        )

    def _maker_order(self, record: SessionRecord) -> chain_pb2.CreateLockRequest:
        plan = quote_of(record).timelocks
        quote = quote_of(record)
        return chain_pb2.CreateLockRequest(
            terms=chain_pb2.LockTerms(
                token=record.src.token,
                amount=record.src.amount,
                hashlock=bytes.fromhex(record.hashlock),
                timelocks=plan.src,
                safety_deposit=quote.src_safety_deposit,
            ),
            maker_order=chain_pb2.MakerOrder(
                maker=record.maker,
                nonce=record.order_nonce,
                deadline=record.order_deadline,
                dst_terms_hash=bytes.fromhex(record.dst_terms_hash),
                signature=bytes.fromhex(record.signature),
            ),
        )

    async def _check_src(self, record: SessionRecord, lock: chain_pb2.Lock) -> str:
        """The maker's lock must pay the resolver of that chain, in full, under the agreed plan."""
        resolver = (await self._src(record).info()).resolver
        problem = _mismatch(
            lock,
            hashlock=record.hashlock,
            token=record.src.token,
            amount=record.src.amount,
            depositor=record.maker,
            beneficiary=resolver,
            timelocks=quote_of(record).timelocks.src,
        )
        if not problem and lock.operator.lower() != resolver.lower():
            problem = f"lock {lock.lock_id}: operator is not the resolver"
        return problem

    async def _source_locked(self, record: SessionRecord) -> None:
        if record.cancel_requested:
            await self.move(record, S.REFUNDING, note="cancelled by the maker after the source lock")
            return
        quote = quote_of(record)
        plan = quote.timelocks
        src_lock = await self._src(record).get_lock(record.src.lock_id)
        dst_now = await self._now(self._dst(record))
        latest_dst_cancel = dst_now + self._settings.lock_allowance_s + plan.dst.cancellation_after_s
        src_now = await self._now(self._src(record))
        # Compare in remaining seconds on each chain's own clock: the clocks of two chains need not agree.
        src_left = src_lock.cancellation_at - src_now
        dst_needs = latest_dst_cancel - dst_now + plan.reveal_margin_s
        if dst_needs >= src_left:
            await self._fail(
                record,
                S.REFUNDING,
                "NO_TIME_FOR_DESTINATION",
                "too little time left on the source lock to lock the destination safely",
            )
            return
        a = quote.auction
        amount = auction_amount(a.start_time, a.duration_s, int(a.start_amount), int(a.end_amount), int(self._clock()))
        record.dst.amount = str(max(amount, int(quote.min_received)))
        record.dst.salt = dst_salt(record.session_id)
        await self.move(record, S.DESTINATION_LOCKING, note=f"locking {record.dst.amount} on {record.dst.chain}")

    def _dst_request(self, record: SessionRecord) -> chain_pb2.CreateLockRequest:
        quote = quote_of(record)
        return chain_pb2.CreateLockRequest(
            terms=chain_pb2.LockTerms(
                token=record.dst.token,
                amount=record.dst.amount,
                hashlock=bytes.fromhex(record.hashlock),
                timelocks=quote.timelocks.dst,
                beneficiary=record.receiver,
                safety_deposit=quote.dst_safety_deposit,
            ),
            resolver=chain_pb2.ResolverFunding(salt=record.dst.salt),
        )

    async def _destination_locking(self, record: SessionRecord) -> None:
        dst = self._dst(record)
        if not record.dst.lock_id:
            try:
                created = await dst.create_lock(self._dst_request(record))
            except DomainError as err:
                if err.reason == "CHAIN_UNAVAILABLE":
                    raise
                await self._fail(record, S.REFUNDING, "DESTINATION_LOCK_REJECTED", err.message)
                return
            record.dst.lock_id = created.lock.lock_id
            await self.touch(record)
        lock = await dst.get_lock(record.dst.lock_id)
        if lock.state != ACTIVE or not lock.final:
            raise Retry
        await self.move(
            record, S.BOTH_LOCKED, note="destination lock final", chain=record.dst.chain, tx=lock.created.tx_hash
        )

    async def _both_locked(self, record: SessionRecord) -> None:
        if record.cancel_requested:
            await self.move(record, S.REFUNDING, note="cancelled by the maker before the reveal")
            return
        plan = quote_of(record).timelocks
        src, dst = self._src(record), self._dst(record)
        src_lock, dst_lock = await asyncio.gather(src.get_lock(record.src.lock_id), dst.get_lock(record.dst.lock_id))
        problem = await self._check_src(record, src_lock) or _mismatch(
            dst_lock,
            hashlock=record.hashlock,
            token=record.dst.token,
            amount=record.dst.amount,
            beneficiary=record.receiver,
            timelocks=plan.dst,
        )
        if not problem and not (src_lock.final and dst_lock.final):
            problem = "a lock is no longer final"
        if problem:
            log.error("lock verification failed; halting the reveal", extra={"problem": problem})
            await self._fail(record, S.REFUNDING, "LOCK_VERIFICATION_FAILED", problem)
            return
        dst_now = await self._now(dst)
        if dst_now >= dst_lock.cancellation_at - plan.reveal_margin_s:
            await self._fail(record, S.REFUNDING, "NO_TIME_TO_REVEAL", "too little time left to reveal safely")
            return
        # Chain times are whole seconds rounded down: wait until the window is open past any rounding, so
        # no withdrawal is sent a fraction of a second early (a failed transaction still burns gas).
        if dst_now <= dst_lock.withdrawal_at:
            raise Retry
        await self.move(record, S.REVEALING_SECRET, note="both locks verified")

    async def _revealing(self, record: SessionRecord) -> None:
        src, dst = self._src(record), self._dst(record)
        secret = self._box.open(record.session_id, record.sealed_secret)
        if not record.secret_public:
            dst_lock = await dst.get_lock(record.dst.lock_id)
            if dst_lock.state == CANCELLED:
                await self._fail(
                    record, S.REFUNDING, "DESTINATION_CANCELLED", "the destination lock was cancelled before the reveal"
                )
                return
            try:
                done = await dst.withdraw(record.dst.lock_id, secret)
            except DomainError as err:
                if err.reason == "CHAIN_UNAVAILABLE" or (await dst.get_lock(record.dst.lock_id)).state != CANCELLED:
                    raise
                await self._fail(record, S.REFUNDING, "DESTINATION_CANCELLED", err.message)
                return
            record.secret_public = secret.hex()
            record.steps.append(
                Step(
                    state=record.state,
                    at=self._clock(),
                    chain=record.dst.chain,
                    tx_hash=done.tx.tx_hash,
                    note="destination withdrawn to the receiver",
                )
            )
            await self.touch(record)
        src_lock = await src.get_lock(record.src.lock_id)
        if src_lock.state == ACTIVE:
            if await self._now(src) <= src_lock.withdrawal_at:
                raise Retry
            done_src = await src.withdraw(record.src.lock_id, secret)
            record.steps.append(
                Step(
                    state=record.state,
                    at=self._clock(),
                    chain=record.src.chain,
                    tx_hash=done_src.tx.tx_hash,
                    note="source withdrawn to the resolver",
                )
            )
            await self.touch(record)
            raise Retry
        if src_lock.state != WITHDRAWN:
            # Only a reorg deeper than the confirmation depth can do this: halt here and let the stuck-session
            # alert bring an operator; nothing automatic can make the resolver whole.
            log.error("source lock gone after the reveal", extra={"lock_state": int(src_lock.state)})
            raise Retry
        dst_lock = await dst.get_lock(record.dst.lock_id)
        if dst_lock.state == ACTIVE:  # a reorg undid the destination withdrawal: the secret is public, redo it
            await dst.withdraw(record.dst.lock_id, secret)
            raise Retry
        (src_info, dst_info) = await asyncio.gather(src.info(), dst.info())
        if (
            src_lock.closed_confirmations < src_info.confirmations
            or dst_lock.closed_confirmations < dst_info.confirmations
        ):
            raise Retry
        await self.move(
            record, S.COMPLETED, note="both withdrawals final", chain=record.src.chain, tx=src_lock.closed.tx_hash
        )

    async def _cancelling(self, record: SessionRecord) -> None:
        if (await self._src(record).get_lock(record.src.lock_id)).state == ABSENT:
            await self.move(record, S.CANCELLED, note="nothing was locked")
        else:
            await self.move(record, S.REFUNDING, note="the source lock waits for its cancellation window")

    async def _refunding(self, record: SessionRecord) -> None:
        pending = False
        for leg, chain in ((record.dst, self._dst(record)), (record.src, self._src(record))):
            if not leg.lock_id:
                continue
            lock = await chain.get_lock(leg.lock_id)
            if lock.state != ACTIVE:
                continue
            if await self._now(chain) < lock.cancellation_at:
                pending = True
                continue
            done = await chain.cancel(leg.lock_id)
            record.steps.append(
                Step(
                    state=record.state,
                    at=self._clock(),
                    chain=leg.chain,
                    tx_hash=done.tx.tx_hash,
                    note=f"{leg.chain} lock refunded",
                )
            )
            await self.touch(record)
        if pending:
            raise Retry
        await self.move(record, S.REFUNDED, note="every lock refunded")


def _mismatch(
    lock: chain_pb2.Lock,
    *,
    hashlock: str,
    token: str,
    amount: str,
    timelocks: common_pb2.Timelocks,
    depositor: str | None = None,
    beneficiary: str | None = None,
) -> str:
    """The first term of `lock` that differs from what the session agreed, or "" when all match."""
    t = lock.terms
    checks = [
        ("state", lock.state == ACTIVE),
        ("hashlock", t.hashlock.hex() == hashlock),
        ("token", t.token.lower() == token.lower()),
        ("amount", t.amount == amount),
        ("timelocks", t.timelocks == timelocks),
        ("depositor", depositor is None or lock.depositor.lower() == depositor.lower()),
        ("beneficiary", beneficiary is None or t.beneficiary.lower() == beneficiary.lower()),
    ]
    for name, ok in checks:
        if not ok:
            return f"lock {lock.lock_id}: {name} differs from the agreed terms"
    return ""
