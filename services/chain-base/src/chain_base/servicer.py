"""The swap.chain.v1.ChainService RPC edge for BASE: validates input (naming the field), converts
between protobuf and the domain, and nothing else."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import is_address, to_checksum_address
from hexbytes import HexBytes
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap_runtime.errors import InvalidArgument
from swap_runtime.fencing import FenceTable
from swap_runtime.validation import check_timelocks, parse_amount, require_bytes32

from chain_base import orders
from chain_base.escrows import CANCELLED, CREATED, WITHDRAWN, Escrows, created_escrow
from chain_base.model import (
    NATIVE,
    ZERO_ADDRESS,
    DstParams,
    Escrow,
    EscrowView,
    SrcOrder,
    Timelocks,
    TxRef,
)
from chain_base.watcher import EventWatcher, Head, RawEvent

_STATE = {
    0: chain_pb2.LOCK_STATE_ABSENT,
    1: chain_pb2.LOCK_STATE_ACTIVE,
    2: chain_pb2.LOCK_STATE_WITHDRAWN,
    3: chain_pb2.LOCK_STATE_CANCELLED,
}
_KIND = {
    CREATED: chain_pb2.CHAIN_EVENT_KIND_LOCK_CREATED,
    WITHDRAWN: chain_pb2.CHAIN_EVENT_KIND_LOCK_WITHDRAWN,
    CANCELLED: chain_pb2.CHAIN_EVENT_KIND_LOCK_CANCELLED,
}


_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def strict_address(field: str, value: str) -> str:
    """0x + 40 hex digits, EIP-55 checksummed. All lower or all upper case carries no checksum and is
    accepted; mixed case is a checksum, and a wrong one is refused (a typo in a pasted address)."""
    if not value:
        raise InvalidArgument(field, "required: 0x and 40 hex digits")
    if not _HEX_ADDRESS.fullmatch(value):
        raise InvalidArgument(field, f"is not an EVM address (0x and 40 hex digits): {value!r}")
    checksummed = str(to_checksum_address(value))
    body = value[2:]
    if body != body.lower() and body != body.upper() and value != checksummed:
        raise InvalidArgument(field, f"has a wrong EIP-55 checksum: {value!r} (checksummed: {checksummed})")
    return checksummed


def _address(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "required: a 0x-hex EVM address")
    if not is_address(value):
        raise InvalidArgument(field, f"is not a valid EVM address: {value!r}")
    return str(to_checksum_address(value))


def _lock_id(value: str) -> bytes:
    try:
        raw = bytes(HexBytes(value))
    except ValueError:
        raise InvalidArgument("lock_id", "must be 0x-hex of 32 bytes") from None
    if len(raw) != 32 or not value.startswith("0x"):
        raise InvalidArgument("lock_id", "must be 0x-hex of 32 bytes")
    return raw


def _tx(ref: TxRef | None) -> chain_pb2.TxRef | None:
    if ref is None:
        return None
    return chain_pb2.TxRef(tx_hash=ref.tx_hash, block_number=ref.block_number, block_hash=ref.block_hash)


def _timelocks(t: Timelocks) -> common_pb2.Timelocks:
    return common_pb2.Timelocks(
        withdrawal_after_s=t.withdrawal,
        public_withdrawal_after_s=t.public_withdrawal,
        cancellation_after_s=t.cancellation,
        public_cancellation_after_s=t.public_cancellation,
    )


def _from_pb_timelocks(t: common_pb2.Timelocks) -> Timelocks:
    return Timelocks(
        t.withdrawal_after_s, t.public_withdrawal_after_s, t.cancellation_after_s, t.public_cancellation_after_s
    )


def escrow_to_lock(e: Escrow) -> chain_pb2.Lock:
    t = e.timelocks
    return chain_pb2.Lock(
        lock_id=HexBytes(e.id).to_0x_hex(),
        state=_STATE[int(e.state)],
        depositor=e.depositor,
        operator=e.operator,
        terms=chain_pb2.LockTerms(
            token=e.token,
            amount=str(e.amount),
            hashlock=e.hashlock,
            timelocks=_timelocks(t),
            beneficiary=e.beneficiary,
            safety_deposit=str(e.safety_deposit),
        ),
        locked_at=e.locked_at,
        withdrawal_at=e.opens(t.withdrawal),
        public_withdrawal_at=e.opens(t.public_withdrawal),
        cancellation_at=e.opens(t.cancellation),
        public_cancellation_at=e.opens(t.public_cancellation),
    )


class ChainBaseServicer(chain_pb2_grpc.ChainServiceServicer):
    def __init__(
        self,
        escrows: Escrows,
        watcher: EventWatcher,
        chain_id: int,
        confirmations: int,
        inclusion_bound_s: int,
        fences: FenceTable | None = None,
    ) -> None:
        self._escrows = escrows
        self._watcher = watcher
        self._chain_id = chain_id
        self._confirmations = confirmations
        self._inclusion_bound_s = inclusion_bound_s
        self._fences = fences or FenceTable()

    def _lock(self, lock_id: bytes, view: EscrowView | None) -> chain_pb2.Lock:
        if view is None:
            return chain_pb2.Lock(lock_id=HexBytes(lock_id).to_0x_hex(), state=chain_pb2.LOCK_STATE_ABSENT)
        lock = escrow_to_lock(view.escrow)
        if (created := _tx(view.created)) is not None:
            lock.created.CopyFrom(created)
        lock.confirmations = view.confirmations
        lock.final = view.confirmations >= self._confirmations
        if view.secret is not None:
            lock.secret = view.secret
        if (closed := _tx(view.closed)) is not None:
            lock.closed.CopyFrom(closed)
            lock.closed_confirmations = view.closed_confirmations
        return lock

    async def GetChainInfo(
        self, request: chain_pb2.GetChainInfoRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.GetChainInfoResponse:
        head, now = await self._escrows.head()
        return chain_pb2.GetChainInfoResponse(
            chain=common_pb2.CHAIN_BASE,
            chain_id=str(self._chain_id),
            head_block=head,
            chain_time=now,
            confirmations=self._confirmations,
            resolver=self._escrows.resolver,
            escrow_src=self._escrows.src.address,
            escrow_dst=self._escrows.dst.address,
            inclusion_bound_s=self._inclusion_bound_s,
            # The maker only signs; the resolver submits the order (CreateLock with maker_order).
            maker_submits_source_lock=False,
        )

    async def _token(self, field: str, value: str) -> str:
        if value == NATIVE:
            return NATIVE
        address = _address(field, value)
        if not await self._escrows.has_code(address):
            raise InvalidArgument(field, f"no token contract at {address}")
        return address

    async def CreateLock(
        self, request: chain_pb2.CreateLockRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.CreateLockResponse:
        self._fences.check(context.invocation_metadata())
        t = request.terms
        amount = parse_amount("terms.amount", t.amount)
        hashlock = require_bytes32("terms.hashlock", t.hashlock)
        if not t.HasField("timelocks"):
            raise InvalidArgument("terms.timelocks", "required")
        check_timelocks("terms.timelocks", t.timelocks)
        deposit = parse_amount("terms.safety_deposit", t.safety_deposit or "0", allow_zero=True)
        timelocks = _from_pb_timelocks(t.timelocks)
        funding = request.WhichOneof("funding")
        if funding == "resolver":
            beneficiary = _address("terms.beneficiary", t.beneficiary)
            token = await self._token("terms.token", t.token)
            salt = parse_amount("resolver.salt", request.resolver.salt or "0", allow_zero=True)
            params = DstParams(
                beneficiary=beneficiary,
                token=ZERO_ADDRESS if token == NATIVE else token,
                amount=amount,
                hashlock=hashlock,
                timelocks=timelocks,
                safety_deposit=deposit,
                salt=salt,
            )
            lock_id, sent = await self._escrows.create_dst(params, request.dry_run)
        elif funding == "maker_order":
            o = request.maker_order
            if len(o.signature) != 65:
                raise InvalidArgument("maker_order.signature", "must be 65 bytes (r, s, v)")
            order = await self._order(t, o.maker, o.nonce, o.deadline, o.dst_terms_hash, "maker_order.", "terms.")
            lock_id, sent = await self._escrows.create_src(order, o.signature, request.dry_run)
        else:
            raise InvalidArgument("funding", "set either resolver or maker_order")
        view = await self._view(lock_id, sent)
        return chain_pb2.CreateLockResponse(lock=self._lock(lock_id, view), sent=sent)

    async def _view(self, lock_id: bytes, sent: bool) -> EscrowView | None:
        """The lock for a reply: as this call's own receipt left it when it sent one, else read from chain."""
        view = self._escrows.receipt_view(lock_id) if sent else None
        return view if view is not None else await self._escrows.view(lock_id)

    async def _order(
        self,
        t: chain_pb2.LockTerms,
        maker: str,
        nonce: str,
        deadline: int,
        dst_terms_hash: bytes,
        prefix: str,
        terms: str,
    ) -> SrcOrder:
        """The maker's order for these terms; the beneficiary of a source lock is always this resolver.
        `prefix` / `terms` name where the order's and the terms' fields sit in the request."""
        if t.token == NATIVE:
            raise InvalidArgument(f"{terms}token", "source locks hold ERC-20 tokens only")
        resolver = self._escrows.resolver
        if t.beneficiary and _address(f"{terms}beneficiary", t.beneficiary) != resolver:
            raise InvalidArgument(f"{terms}beneficiary", f"a source lock pays the resolver {resolver}")
        if not t.HasField("timelocks"):
            raise InvalidArgument(f"{terms}timelocks", "required")
        check_timelocks(f"{terms}timelocks", t.timelocks)
        if not deadline:
            raise InvalidArgument(f"{prefix}deadline", "required: unix seconds")
        return SrcOrder(
            maker=_address(f"{prefix}maker", maker),
            resolver=resolver,
            token=await self._token(f"{terms}token", t.token),
            amount=parse_amount(f"{terms}amount", t.amount),
            hashlock=require_bytes32(f"{terms}hashlock", t.hashlock),
            timelocks=_from_pb_timelocks(t.timelocks),
            safety_deposit=parse_amount(f"{terms}safety_deposit", t.safety_deposit or "0", allow_zero=True),
            dst_terms_hash=require_bytes32(f"{prefix}dst_terms_hash", dst_terms_hash),
            nonce=parse_amount(f"{prefix}nonce", nonce, allow_zero=True),
            deadline=deadline,
        )

    async def PrepareMakerLock(
        self, request: chain_pb2.PrepareMakerLockRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.PrepareMakerLockResponse:
        typed, order = await self._typed_order(request, "", "terms.")
        return chain_pb2.PrepareMakerLockResponse(
            lock_id=HexBytes(orders.digest(typed)).to_0x_hex(),
            sign_order=chain_pb2.SignOrder(
                typed_data_json=json.dumps(typed),
                token=order.token,
                spender=self._escrows.src.address,
                allowance=str(order.amount),
            ),
        )

    async def _typed_order(
        self, r: chain_pb2.PrepareMakerLockRequest, prefix: str, terms: str
    ) -> tuple[dict[str, Any], SrcOrder]:
        """The EIP-712 typed data the maker signs for a PrepareMakerLock request, and its order."""
        order = await self._order(r.terms, r.maker, r.nonce, r.deadline, r.dst_terms_hash, prefix, f"{prefix}{terms}")
        typed = orders.typed_data(self._chain_id, self._escrows.src.address, orders.order_message(order))
        return typed, order

    async def VerifyMakerOrder(
        self, request: chain_pb2.VerifyMakerOrderRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.VerifyMakerOrderResponse:
        signature = request.signature
        if len(signature) != 65:
            raise InvalidArgument("signature", "must be the maker's 65-byte EIP-712 signature")
        # The same typed data PrepareMakerLock handed out, through the JSON the wallet signed.
        typed, order = await self._typed_order(request.order, "order.", "terms.")
        typed = json.loads(json.dumps(typed))
        try:
            signer = Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
        except Exception:
            raise InvalidArgument("signature", "is not a valid ECDSA signature") from None
        if signer.lower() != order.maker.lower():
            raise InvalidArgument("signature", "was not made by order.maker over this order")
        return chain_pb2.VerifyMakerOrderResponse()

    async def CheckAccount(
        self, request: chain_pb2.CheckAccountRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.CheckAccountResponse:
        # Every address exists on an EVM chain (an empty account is still an account).
        return chain_pb2.CheckAccountResponse(account=strict_address("account", request.account), exists=True)

    async def Withdraw(
        self, request: chain_pb2.WithdrawRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.WithdrawResponse:
        self._fences.check(context.invocation_metadata())
        lock_id = _lock_id(request.lock_id)
        secret = require_bytes32("secret", request.secret)
        ref = await self._escrows.withdraw(lock_id, secret)
        view = await self._view(lock_id, ref is not None)
        closed = ref or (view.closed if view else None)
        return chain_pb2.WithdrawResponse(lock=self._lock(lock_id, view), tx=_tx(closed), sent=ref is not None)

    async def Cancel(
        self, request: chain_pb2.CancelRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.CancelResponse:
        self._fences.check(context.invocation_metadata())
        lock_id = _lock_id(request.lock_id)
        ref = await self._escrows.cancel(lock_id)
        view = await self._view(lock_id, ref is not None)
        closed = ref or (view.closed if view else None)
        return chain_pb2.CancelResponse(lock=self._lock(lock_id, view), tx=_tx(closed), sent=ref is not None)

    async def GetLock(
        self, request: chain_pb2.GetLockRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.GetLockResponse:
        lock_id = _lock_id(request.lock_id)
        return chain_pb2.GetLockResponse(lock=self._lock(lock_id, await self._escrows.view(lock_id)))

    async def GetBalance(
        self, request: chain_pb2.GetBalanceRequest, context: grpc.aio.ServicerContext
    ) -> chain_pb2.GetBalanceResponse:
        account = _address("account", request.account)
        token = NATIVE if request.token == NATIVE else _address("token", request.token)
        return chain_pb2.GetBalanceResponse(balance=str(await self._escrows.balance(account, token)))

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

    def _event(self, raw: RawEvent) -> chain_pb2.ChainEvent:
        event = chain_pb2.ChainEvent(
            cursor=str(raw.cursor),
            kind=_KIND[raw.name],
            lock_id=HexBytes(raw.escrow_id).to_0x_hex(),
            tx=chain_pb2.TxRef(tx_hash=raw.tx_hash, block_number=raw.block, block_hash=raw.block_hash),
            log_index=raw.log_index,
            confirmations=raw.confirmations,
            removed=raw.removed,
            block_time=raw.block_time,
        )
        a = raw.args
        if raw.name == CREATED:
            escrow = created_escrow(raw.escrow_id, a, "")
            event.lock.CopyFrom(escrow_to_lock(escrow))
        elif raw.name == WITHDRAWN:
            event.secret = bytes(a["secret"])
        return event
