"""The swap.chain.v1.ChainService RPC edge for NEAR: validates input (naming the field), converts
between protobuf and the domain, and nothing else."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator

import grpc
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap_runtime.errors import FailedPrecondition, InvalidArgument
from swap_runtime.fencing import FenceTable
from swap_runtime.validation import check_timelocks, parse_amount, require_bytes32

from chain_near.feed import CREATED, REFUNDED, WITHDRAWN
from chain_near.htlc import Htlc, lock_from_event
from chain_near.model import NATIVE, Lock, LockRequest, LockView, MakerCall, State, Timelocks, TxRef
from chain_near.watcher import EventWatcher, Head, RawEvent

_STATE = {
    State.ABSENT: chain_pb2.LOCK_STATE_ABSENT,
    State.ACTIVE: chain_pb2.LOCK_STATE_ACTIVE,
    State.WITHDRAWN: chain_pb2.LOCK_STATE_WITHDRAWN,
    State.REFUNDED: chain_pb2.LOCK_STATE_CANCELLED,
}
_KIND = {
    CREATED: chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED,
    WITHDRAWN: chain_pb2.CHAIN_EVENT_KIND_LOCK_WITHDRAWN,
    REFUNDED: chain_pb2.CHAIN_EVENT_KIND_LOCK_CANCELLED,
}

# NEAR account ids: 2..64 characters, lower-case alphanumerics separated by single - _ or . characters
# (64-hex implicit accounts match too).
_ACCOUNT_ID = re.compile(r"(([a-z\d]+[-_])*[a-z\d]+\.)*([a-z\d]+[-_])*[a-z\d]+")
_IMPLICIT = re.compile(r"[0-9a-f]{64}")
_LOCK_ID = re.compile(r"[0-9a-fA-F]{64}")
_MAX_NONCE_LEN = 64
# How long a beneficiary account seen to exist is taken to exist without asking the node again.
_ACCOUNT_AGE_S = 300.0
U128_MAX = 2**128 - 1
_U32_MAX = 2**32 - 1


def account_id(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "required: a NEAR account id")
    if not 2 <= len(value) <= 64 or not _ACCOUNT_ID.fullmatch(value):
        raise InvalidArgument(field, f"is not a valid NEAR account id: {value!r}")
    return value


def is_implicit(account: str) -> bool:
    """Implicit accounts come into existence with the first transfer to them."""
    return _IMPLICIT.fullmatch(account) is not None


def _lock_id(value: str) -> str:
    if not _LOCK_ID.fullmatch(value):
        raise InvalidArgument("lock_id", "must be the 64-hex lock id of the NEAR HTLC")
    return value.lower()


def _u128(field: str, value: str, *, allow_zero: bool = False) -> int:
    amount = parse_amount(field, value, allow_zero=allow_zero)
    if amount > U128_MAX:
        raise InvalidArgument(field, "exceeds 2^128-1, the largest NEAR amount")
    return amount


def _tx(ref: TxRef | None) -> chain_pb2.TxRef | None:
    if ref is None:
        return None
    return chain_pb2.TxRef(tx_hash=ref.tx_hash, block_number=ref.block_height, block_hash=ref.block_hash)


def _seconds(value: int) -> int:
    """Timelock offsets are uint32 seconds in the proto; a lock made by someone else can name more."""
    return min(value, _U32_MAX)


def lock_to_pb(lock: Lock) -> chain_pb2.Lock:
    t = lock.timelocks
    withdrawal, public_withdrawal, cancellation, public_cancellation = t.seconds()
    pb = chain_pb2.Lock(
        lock_id=lock.lock_id,
        state=_STATE[lock.state],
        depositor=lock.depositor,
        operator=lock.operator,
        terms=chain_pb2.LockTerms(
            token=lock.token,
            amount=str(lock.amount),
            hashlock=lock.hashlock,
            timelocks=common_pb2.Timelocks(
                withdrawal_after_s=_seconds(withdrawal),
                public_withdrawal_after_s=_seconds(public_withdrawal),
                cancellation_after_s=_seconds(cancellation),
                public_cancellation_after_s=_seconds(public_cancellation),
            ),
            beneficiary=lock.beneficiary,
            safety_deposit=str(lock.safety_deposit),
        ),
        locked_at=lock.locked_at_s,
        withdrawal_at=lock.opens(t.withdrawal),
        public_withdrawal_at=lock.opens(t.public_withdrawal),
        cancellation_at=lock.opens(t.cancellation),
        public_cancellation_at=lock.opens(t.public_cancellation),
    )
    if lock.secret is not None:
        pb.secret = lock.secret
    return pb


class ChainNearServicer(chain_pb2_grpc.ChainServiceServicer):
    def __init__(
        self,
        htlc: Htlc,
        watcher: EventWatcher,
        network_id: str,
        inclusion_bound_s: int,
        fences: FenceTable | None = None,
    ) -> None:
        self._htlc = htlc
        self._watcher = watcher
        self._network_id = network_id
        self._inclusion_bound_s = inclusion_bound_s
        self._fences = fences or FenceTable()

    @staticmethod
    def _lock(lock_id: str, view: LockView | None) -> chain_pb2.Lock:
        if view is None:
            return chain_pb2.Lock(lock_id=lock_id, state=chain_pb2.LOCK_STATE_ABSENT)
        lock = lock_to_pb(view.lock)
        if (created := _tx(view.created)) is not None:
            lock.created.CopyFrom(created)
        lock.confirmations = view.confirmations
        lock.final = view.final
        if (closed := _tx(view.closed)) is not None:
            lock.closed.CopyFrom(closed)
        if view.closed_final:
            # Final, which on NEAR is one block from the final head.
            lock.closed_confirmations = 1
        return lock

    async def GetChainInfo(
        self, request: chain_pb2.GetChainInfoRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.GetChainInfoResponse:
        head, now_ns = await self._htlc.head()
        return chain_pb2.GetChainInfoResponse(
            chain=common_pb2.CHAIN_NEAR,
            chain_id=self._network_id,
            head_block=head,
            chain_time=now_ns // 10**9,
            # A lock is final once its block is final: one block counted from the final head.
            confirmations=1,
            resolver=self._htlc.resolver,
            escrow_src=self._htlc.contract,
            escrow_dst=self._htlc.contract,
            inclusion_bound_s=self._inclusion_bound_s,
            # The maker makes the HTLC call from their own account (PrepareMakerLock's near_call).
            maker_submits_source_lock=True,
        )

    async def _token(self, field: str, value: str) -> str:
        if value == NATIVE:
            return NATIVE
        token = account_id(field, value)
        if not await self._htlc.is_token(token):
            raise InvalidArgument(field, f"unknown token: {token} is not a NEP-141 contract")
        return token

    async def _beneficiary(self, value: str) -> str:
        beneficiary = account_id("terms.beneficiary", value)
        # A payout to a named account that does not exist bounces; implicit ones are created by it.
        # A yes is good for a while: an account deleted since bounces the payout, and the lock stays refundable.
        exists = is_implicit(beneficiary) or await self._htlc.account_exists(beneficiary, max_age_s=_ACCOUNT_AGE_S)
        if not exists:
            raise InvalidArgument("terms.beneficiary", f"account {beneficiary} does not exist")
        return beneficiary

    async def _lock_request(
        self, t: chain_pb2.LockTerms, nonce_field: str, nonce_value: str, beneficiary: str
    ) -> LockRequest:
        """Validated terms, every field checked (naming it) before any chain lookup."""
        amount = _u128("terms.amount", t.amount)
        hashlock = require_bytes32("terms.hashlock", t.hashlock)
        if not t.HasField("timelocks"):
            raise InvalidArgument("terms.timelocks", "required")
        check_timelocks("terms.timelocks", t.timelocks)
        deposit = _u128("terms.safety_deposit", t.safety_deposit or "0", allow_zero=True)
        nonce = str(parse_amount(nonce_field, nonce_value or "0", allow_zero=True))
        if len(nonce) > _MAX_NONCE_LEN:
            raise InvalidArgument(nonce_field, f"at most {_MAX_NONCE_LEN} decimal digits on NEAR")
        account_id("terms.beneficiary", beneficiary)
        token = await self._token("terms.token", t.token)
        tl = t.timelocks
        return LockRequest(
            nonce=nonce,
            beneficiary=await self._beneficiary(beneficiary),
            token=token,
            amount=amount,
            hashlock=hashlock,
            timelocks=Timelocks.from_seconds(
                tl.withdrawal_after_s,
                tl.public_withdrawal_after_s,
                tl.cancellation_after_s,
                tl.public_cancellation_after_s,
            ),
            safety_deposit=deposit,
        )

    async def CreateLock(
        self, request: chain_pb2.CreateLockRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.CreateLockResponse:
        self._fences.check(context.invocation_metadata())
        funding = request.WhichOneof("funding")
        if funding == "maker_order":
            raise FailedPrecondition(
                "on NEAR the maker locks directly (PrepareMakerLock); the session adopts that lock through "
                "GetLock / WatchEvents",
                reason="MAKER_LOCKS_DIRECTLY",
            )
        if funding != "resolver":
            raise InvalidArgument("funding", "set resolver (NEAR destination locks are funded by the resolver)")
        t = request.terms
        lock_request = await self._lock_request(t, "resolver.salt", request.resolver.salt, t.beneficiary)
        if request.dry_run:
            lock_id, sent = self._htlc.lock_id(lock_request.nonce), False
        else:
            lock_id, sent = await self._htlc.create(lock_request)
        view = await self._view(lock_id, CREATED if sent else None)
        return chain_pb2.CreateLockResponse(lock=self._lock(lock_id, view), sent=sent)

    async def PrepareMakerLock(
        self, request: chain_pb2.PrepareMakerLockRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.PrepareMakerLockResponse:
        t = request.terms
        resolver = self._htlc.resolver
        if t.beneficiary and account_id("terms.beneficiary", t.beneficiary) != resolver:
            raise InvalidArgument("terms.beneficiary", f"a source lock pays the resolver {resolver}")
        maker = account_id("maker", request.maker)
        if not request.nonce:
            raise InvalidArgument("nonce", "required: the lock nonce, a decimal string")
        lock_request = await self._lock_request(t, "nonce", request.nonce, resolver)
        # The HTLC refuses the lock after the order deadline: once that has passed on a final block with no
        # lock, none can appear (a lock the maker sent but that landed late goes back to them).
        lock_request = dataclasses.replace(lock_request, deadline_s=request.deadline)
        call = await self._htlc.maker_call(maker, lock_request)
        reply = chain_pb2.PrepareMakerLockResponse(lock_id=call.lock_id, near_call=_near_call(call))
        if call.prepay is not None:
            reply.near_prepay.CopyFrom(_near_call(call.prepay))
        return reply

    async def VerifyMakerOrder(
        self, request: chain_pb2.VerifyMakerOrderRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.VerifyMakerOrderResponse:
        # Nothing to verify: the maker authorises the source lock by making it from their own account, and
        # the saga adopts only a lock whose terms it reads back from chain.
        return chain_pb2.VerifyMakerOrderResponse()

    async def CheckAccount(
        self, request: chain_pb2.CheckAccountRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.CheckAccountResponse:
        account = account_id("account", request.account)
        return chain_pb2.CheckAccountResponse(account=account, exists=await self._htlc.account_exists(account))

    async def Withdraw(
        self, request: chain_pb2.WithdrawRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.WithdrawResponse:
        self._fences.check(context.invocation_metadata())
        lock_id = _lock_id(request.lock_id)
        secret = require_bytes32("secret", request.secret)
        ref = await self._htlc.withdraw(lock_id, secret)
        view = await self._view(lock_id, WITHDRAWN if ref else None)
        closed = ref or (view.closed if view else None)
        return chain_pb2.WithdrawResponse(lock=self._lock(lock_id, view), tx=_tx(closed), sent=ref is not None)

    async def Cancel(
        self, request: chain_pb2.CancelRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.CancelResponse:
        self._fences.check(context.invocation_metadata())
        lock_id = _lock_id(request.lock_id)
        ref = await self._htlc.refund(lock_id)
        view = await self._view(lock_id, REFUNDED if ref else None)
        closed = ref or (view.closed if view else None)
        return chain_pb2.CancelResponse(lock=self._lock(lock_id, view), tx=_tx(closed), sent=ref is not None)

    async def _view(self, lock_id: str, sent: str | None) -> LockView | None:
        """The lock for a reply: as this call's own transaction (`sent`, its event) left it, else read."""
        view = self._htlc.receipt_view(lock_id, sent) if sent else None
        return view if view is not None else await self._htlc.view(lock_id)

    async def GetLock(
        self, request: chain_pb2.GetLockRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.GetLockResponse:
        lock_id = _lock_id(request.lock_id)
        return chain_pb2.GetLockResponse(lock=self._lock(lock_id, await self._htlc.view(lock_id)))

    async def GetBalance(
        self, request: chain_pb2.GetBalanceRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.GetBalanceResponse:
        account = account_id("account", request.account)
        token = await self._token("token", request.token)
        return chain_pb2.GetBalanceResponse(balance=str(await self._htlc.balance(account, token)))

    async def WatchEvents(
        self, request: chain_pb2.WatchEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chain_pb2.WatchEventsResponse]:
        lock_id = _lock_id(request.lock_id) if request.lock_id else None
        async for item in self._watcher.stream(request.cursor, lock_id, heads=request.heads):
            if isinstance(item, Head):
                tick = chain_pb2.HeadTick(
                    height=item.height, chain_time=item.chain_time, final_height=item.final_height
                )
                yield chain_pb2.WatchEventsResponse(head=tick)
            else:
                yield chain_pb2.WatchEventsResponse(event=self._event(item))

    @staticmethod
    def _event(raw: RawEvent) -> chain_pb2.ChainEvent:
        event = chain_pb2.ChainEvent(
            cursor=raw.cursor,
            kind=_KIND[raw.name],
            lock_id=raw.lock_id,
            tx=_tx(raw.tx),
            log_index=raw.log_index,
            confirmations=raw.confirmations,
            block_time=raw.block_time,
        )
        lock = lock_from_event(raw.data)
        event.lock.CopyFrom(lock_to_pb(lock))
        if raw.name == CREATED:
            event.lock.created.CopyFrom(event.tx)
        if raw.name == WITHDRAWN and lock.secret is not None:
            event.secret = lock.secret
        return event


def _near_call(call: MakerCall) -> chain_pb2.NearCall:
    return chain_pb2.NearCall(
        contract=call.contract,
        method=call.method,
        args_json=json.dumps(call.args),
        deposit=str(call.deposit),
        gas=call.gas,
    )
