"""Session operations behind the RPCs: create, read, execute, cancel, watch. No gRPC in here."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping

from eth_account import Account
from eth_account.messages import encode_typed_data
from swap.chain.v1 import chain_pb2
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2
from swap_runtime import context
from swap_runtime.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from swap_runtime.tracing import current_parent
from swap_runtime.validation import parse_amount

from session import validate
from session.chains import Chain
from session.metrics import SESSIONS_INITIATED
from session.model import Leg, SessionRecord, Step
from session.quotes import Quotes
from session.runner import Runner
from session.saga import Saga
from session.secrets import SecretBox, new_secret
from session.states import TERMINAL, State
from session.store import SessionStore, VersionConflict
from session.views import CHAIN_NAMES, quote_of, snapshot

log = logging.getLogger(__name__)
S = State
MAX_SLIPPAGE_BPS = 5000
_WATCH_BLOCK_MS = 2000  # under the Redis client's socket timeout


def dst_terms_hash(dst_chain: str, token: str, min_received: str, receiver: str, hashlock: str) -> bytes:
    """What the maker's order binds of the destination leg."""
    return hashlib.sha256(f"{dst_chain}|{token}|{min_received}|{receiver}|{hashlock}".encode()).digest()


class Sessions:
    def __init__(
        self,
        store: SessionStore,
        chains: Mapping[str, Chain],
        quotes: Quotes,
        box: SecretBox,
        saga: Saga,
        runner: Runner,
        *,
        order_deadline_s: int,
        max_active_per_maker: int,
        max_active_total: int,
    ) -> None:
        self._store = store
        self._chains = chains
        self._quotes = quotes
        self._box = box
        self._saga = saga
        self._runner = runner
        self._deadline_s = order_deadline_s
        self._per_maker = max_active_per_maker
        self._total = max_active_total
        self._clock: Callable[[], float] = time.time

    async def create(self, r: session_pb2.CreateSessionRequest) -> SessionRecord:
        src_chain = _chain("src.chain", r.src.chain)
        dst_chain = _chain("dst.chain", r.dst.chain)
        if src_chain == dst_chain:
            raise InvalidArgument("dst.chain", "must differ from src.chain")
        src_token = validate.token("src.token", r.src.token)
        dst_token = validate.token("dst.token", r.dst.token)
        amount = str(parse_amount("src_amount", r.src_amount))
        maker = validate.account("maker", src_chain, r.maker)
        receiver = validate.account("receiver", dst_chain, r.receiver)
        if r.slippage_bps > MAX_SLIPPAGE_BPS:
            raise InvalidArgument("slippage_bps", f"must be at most {MAX_SLIPPAGE_BPS}")
        if r.request_id and (existing := await self._store.session_for_request(r.request_id)):
            found = await self._store.get(existing)
            if found is not None:
                return found
        if await self._store.count_active(maker) >= self._per_maker:
            raise FailedPrecondition(f"maker has {self._per_maker} open sessions already", reason="MAKER_LIMIT")
        if await self._store.count_active() >= self._total:
            raise Unavailable("the service is at its limit of open sessions; retry later", reason="CAPACITY")

        quote = await self._quote(r, amount)
        session_id = uuid.uuid4().hex
        context.session_id.set(session_id)
        secret, hashlock = new_secret()
        hashlock_hex = hashlock.hex()
        src = self._chains[src_chain]
        deadline = int((await src.info()).chain_time) + self._deadline_s
        terms_hash = dst_terms_hash(dst_chain, dst_token, quote.min_received, receiver, hashlock_hex)
        nonce = str(int(session_id, 16))  # decimal, unique per session, within NEAR's 64-char nonces
        prepared = await src.prepare_maker_lock(
            chain_pb2.PrepareMakerLockRequest(
                terms=chain_pb2.LockTerms(
                    token=src_token,
                    amount=amount,
                    hashlock=hashlock,
                    timelocks=quote.timelocks.src,
                    # On NEAR the maker makes the lock, so no resolver deposit can ride on it.
                    safety_deposit=quote.src_safety_deposit if src_chain == "base" else "0",
                ),
                maker=maker,
                nonce=nonce,
                deadline=deadline,
                dst_terms_hash=terms_hash,
            )
        )
        action = session_pb2.MakerAction()
        if prepared.HasField("sign_order"):
            action.sign_order.CopyFrom(prepared.sign_order)
        else:
            action.near_call.CopyFrom(prepared.near_call)
        now = self._clock()
        record = SessionRecord(
            session_id=session_id,
            src=Leg(chain=src_chain, token=src_token, amount=amount, lock_id=prepared.lock_id, salt=nonce),
            dst=Leg(chain=dst_chain, token=dst_token),
            maker=maker,
            receiver=receiver,
            hashlock=hashlock_hex,
            sealed_secret=self._box.seal(session_id, secret),
            quote=base64.b64encode(quote.SerializeToString()).decode(),
            maker_action=base64.b64encode(action.SerializeToString()).decode(),
            order_nonce=nonce,
            order_deadline=deadline,
            dst_terms_hash=terms_hash.hex(),
            steps=[Step(state=S.INITIALIZED, at=now, note="session created; waiting for the maker")],
            created_at=now,
            updated_at=now,
            request_id=r.request_id,
            trace_parent=current_parent(),
        )
        stored = await self._store.create(record, snapshot(record))
        if stored.session_id == session_id:
            SESSIONS_INITIATED.labels(src_chain, dst_chain).inc()
            self._runner.spawn(session_id)
            log.info("session created", extra={"src": src_chain, "dst": dst_chain, "amount": amount})
        return stored

    async def _quote(self, r: session_pb2.CreateSessionRequest, amount: str) -> quote_pb2.Quote:
        if not r.quote_id:
            return await self._quotes.get_quote(
                quote_pb2.GetQuoteRequest(src=r.src, dst=r.dst, src_amount=amount, slippage_bps=r.slippage_bps)
            )
        quote = await self._quotes.lookup(r.quote_id)
        if quote.src != r.src or quote.dst != r.dst or quote.src_amount != amount:
            raise InvalidArgument("quote_id", "the quote is for another pair or amount")
        return quote

    async def get(self, session_id: str) -> SessionRecord:
        if not session_id:
            raise InvalidArgument("session_id", "required")
        record = await self._store.get(session_id)
        if record is None:
            raise NotFound(f"no session {session_id}", reason="SESSION_NOT_FOUND")
        return record

    async def list(self, maker: str, page_size: int, page_token: str) -> tuple[list[SessionRecord], str]:
        if page_size > 100:
            raise InvalidArgument("page_size", "must be at most 100")
        size = page_size or 20
        try:
            offset = int(page_token or "0")
        except ValueError:
            raise InvalidArgument("page_token", "not a token from a previous response") from None
        if not 0 <= offset <= _MAX_OFFSET:
            raise InvalidArgument("page_token", "not a token from a previous response")
        ids = await self._store.list_ids(maker or None, offset, size)
        records = [rec for i in ids if (rec := await self._store.get(i)) is not None]
        return records, str(offset + size) if len(ids) == size else ""

    async def execute(self, session_id: str, request_id: str, signature: bytes) -> SessionRecord:
        record = await self.get(session_id)
        context.session_id.set(session_id)
        if request_id and record.execute_request_id == request_id:
            return record
        if record.state is not S.INITIALIZED:
            raise FailedPrecondition(f"the session is {record.state.value}", reason="SESSION_NOT_EXECUTABLE")
        quote = quote_of(record)
        if self._clock() > quote.valid_until:
            await self._saga.move(record, S.TIMEOUT, note="the quote expired before execution")
            raise FailedPrecondition("the quote expired; create a new session", reason="QUOTE_EXPIRED")
        if record.src.chain == "base":
            record.signature = _check_signature(record, signature).hex()
        record.execute_request_id = request_id
        await self._saga.move(record, S.EXECUTING, note="executing")
        self._runner.spawn(session_id)
        return record

    async def cancel(self, session_id: str) -> SessionRecord:
        for _ in range(5):
            record = await self.get(session_id)
            context.session_id.set(session_id)
            if record.state in TERMINAL:
                raise FailedPrecondition(f"the session is already {record.state.value}", reason="SESSION_ENDED")
            if record.state is S.REVEALING_SECRET:
                raise FailedPrecondition("the secret is being revealed; the swap completes", reason="REVEALING")
            try:
                if record.state is S.INITIALIZED:
                    await self._saga.move(record, S.CANCELLED, note="cancelled by the maker")
                else:
                    record.cancel_requested = True
                    await self._saga.touch(record)
                    self._runner.spawn(session_id)
                return record
            except VersionConflict:
                await asyncio.sleep(0.05)
        raise Unavailable("the session is busy; retry the cancel", reason="BUSY")

    async def watch(self, session_id: str, cursor: str) -> AsyncIterator[tuple[str, bytes]]:
        record = await self.get(session_id)
        if cursor and not _STREAM_ID.fullmatch(cursor):
            raise InvalidArgument("cursor", "must be a cursor from a previous update")
        # An ended session has nothing more to wait for: send what is after the cursor and close.
        follow = record.state not in TERMINAL
        async for entry_id, payload in self._store.updates(record.session_id, cursor or None, _WATCH_BLOCK_MS, follow):
            yield entry_id, payload
            if session_pb2.Session.FromString(payload).state in _TERMINAL_PB:
                return


_MAX_OFFSET = 10**9
_STREAM_ID = re.compile(r"\d+-\d+")
_TERMINAL_PB = {session_pb2.SessionState.Value(f"SESSION_STATE_{s.name}") for s in TERMINAL}


def _chain(field: str, value: common_pb2.Chain.ValueType) -> str:
    name = CHAIN_NAMES.get(value)
    if name is None:
        raise InvalidArgument(field, "must be CHAIN_BASE or CHAIN_NEAR")
    return name


def _check_signature(record: SessionRecord, signature: bytes) -> bytes:
    """Recovers the order's signer locally, so a bad signature is refused before anything is sent."""
    if len(signature) != 65:
        raise InvalidArgument("signature", "must be the maker's 65-byte EIP-712 signature")
    action = session_pb2.MakerAction.FromString(base64.b64decode(record.maker_action))
    typed = json.loads(action.sign_order.typed_data_json)
    try:
        signer = Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
    except Exception:
        raise InvalidArgument("signature", "is not a valid ECDSA signature") from None
    if signer.lower() != record.maker.lower():
        raise InvalidArgument("signature", "was not made by the session's maker over its order")
    return signature
