"""Session operations behind the RPCs: create, read, execute, cancel, watch. No gRPC in here."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import grpc
from google.rpc import code_pb2
from swap.chain.v1 import chain_pb2
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2
from swap_runtime import context
from swap_runtime.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from swap_runtime.tracing import current_parent
from swap_runtime.validation import parse_amount

from session import validate
from session.chains import Chain
from session.metrics import SESSIONS_INITIATED
from session.model import Leg, SecretMode, SessionRecord, Step
from session.quotes import Quotes
from session.runner import Runner
from session.saga import Saga
from session.secrets import SecretBox, new_secret
from session.states import TERMINAL, State
from session.store import SessionStore, VersionConflict
from session.views import CHAIN_NAMES, quote_of, snapshot, source_terms
from session.watchers import Watchers

log = logging.getLogger(__name__)
S = State
MAX_SLIPPAGE_BPS = 5000
_WATCH_BLOCK_MS = 2000  # under the Redis client's socket timeout


class IdempotencyConflict(DomainError):
    """A request id used again with a different request."""

    code = grpc.StatusCode.ALREADY_EXISTS
    rpc_code = code_pb2.ALREADY_EXISTS

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="IDEMPOTENCY_CONFLICT", metadata={"field": "request_id"})


@dataclass(frozen=True)
class Caller:
    """Who calls, as the edge (the gateway, Envoy's ext_authz) names it in metadata. A call without a tenant
    comes from inside (another service, an operator's tool, the tests) and sees every session, like an
    operator tenant does; a tenant sees only the sessions it created."""

    tenant: str = ""
    operator: bool = True

    def sees(self, record: SessionRecord) -> bool:
        return self.operator or record.tenant == self.tenant


INTERNAL = Caller()


def request_hash(r: session_pb2.CreateSessionRequest) -> str:
    """The canonical form of a Create request, without its request id: what a repeat must match."""
    canonical = session_pb2.CreateSessionRequest()
    canonical.CopyFrom(r)
    canonical.request_id = ""
    return hashlib.sha256(canonical.SerializeToString(deterministic=True)).hexdigest()


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
        max_active_per_tenant: int = 100,
        clock_skew_s: int = 2,
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
        self._per_tenant = max_active_per_tenant
        self._skew_s = clock_skew_s
        self._clock: Callable[[], float] = time.time

    async def create(self, r: session_pb2.CreateSessionRequest, caller: Caller = INTERNAL) -> SessionRecord:
        src_chain = _chain("src.chain", r.src.chain)
        dst_chain = _chain("dst.chain", r.dst.chain)
        if src_chain == dst_chain:
            raise InvalidArgument("dst.chain", "must differ from src.chain")
        src_token = validate.token("src.token", r.src.token)
        dst_token = validate.token("dst.token", r.dst.token)
        amount = str(parse_amount("src_amount", r.src_amount))
        if not r.maker:
            raise InvalidArgument("maker", "required: an account on the source chain")
        if not r.receiver:
            raise InvalidArgument("receiver", "required: an account on the destination chain")
        if r.slippage_bps > MAX_SLIPPAGE_BPS:
            raise InvalidArgument("slippage_bps", f"must be at most {MAX_SLIPPAGE_BPS}")
        src, dst = self._chains[src_chain], self._chains[dst_chain]
        maker = await _account(src, "maker", r.maker)
        receiver = await _account(dst, "receiver", r.receiver, must_exist=True)
        mode, maker_hashlock = _secret_mode(r)
        # A tenant's request ids are its own: another tenant's same id is another request.
        request_id = f"{caller.tenant}|{r.request_id}" if caller.tenant and r.request_id else r.request_id
        fingerprint = request_hash(r)
        if request_id and (existing := await self._store.session_for_request(request_id)):
            found = await self._store.get(existing)
            if found is not None:
                return _same_request(found, fingerprint)
        if await self._store.count_active(maker, caller.tenant) >= self._per_maker:
            raise FailedPrecondition(f"maker has {self._per_maker} open sessions already", reason="MAKER_LIMIT")
        if caller.tenant and await self._store.count_active(tenant=caller.tenant) >= self._per_tenant:
            raise FailedPrecondition(f"the tenant has {self._per_tenant} open sessions already", reason="TENANT_LIMIT")
        if await self._store.count_active() >= self._total:
            raise Unavailable("the service is at its limit of open sessions; retry later", reason="CAPACITY")

        quote = await self._quote(r, amount)
        session_id = uuid.uuid4().hex
        context.session_id.set(session_id)
        if maker_hashlock is None:
            secret, hashlock = new_secret()
            sealed = self._box.seal(session_id, secret)
        else:
            hashlock, sealed = maker_hashlock, ""  # the maker's client keeps the secret until RevealSecret
        hashlock_hex = hashlock.hex()
        # The source's time must be fresh (the order deadline counts from it); the destination's bound is static.
        src_info, dst_statics = await asyncio.gather(src.info(), self._saga.statics(dst))
        check_plan(quote.timelocks, src_info.inclusion_bound_s, dst_statics.inclusion_s, self._skew_s)
        deadline = int(src_info.chain_time) + self._deadline_s
        terms_hash = dst_terms_hash(dst_chain, dst_token, quote.min_received, receiver, hashlock_hex)
        nonce = str(int(session_id, 16))  # decimal, unique per session, within NEAR's 64-char nonces
        prepared = await src.prepare_maker_lock(
            chain_pb2.PrepareMakerLockRequest(
                terms=chain_pb2.LockTerms(
                    token=src_token,
                    amount=amount,
                    hashlock=hashlock,
                    timelocks=quote.timelocks.src,
                    # Where the maker makes the lock, no resolver deposit can ride on it.
                    safety_deposit="0" if src_info.maker_submits_source_lock else quote.src_safety_deposit,
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
            if prepared.HasField("near_prepay"):
                action.near_prepay.CopyFrom(prepared.near_prepay)
        now = self._clock()
        record = SessionRecord(
            session_id=session_id,
            src=Leg(chain=src_chain, token=src_token, amount=amount, lock_id=prepared.lock_id, salt=nonce),
            dst=Leg(chain=dst_chain, token=dst_token),
            maker=maker,
            receiver=receiver,
            hashlock=hashlock_hex,
            secret_mode=mode,
            sealed_secret=sealed,
            quote=base64.b64encode(quote.SerializeToString()).decode(),
            maker_action=base64.b64encode(action.SerializeToString()).decode(),
            order_nonce=nonce,
            order_deadline=deadline,
            dst_terms_hash=terms_hash.hex(),
            maker_submits_source=src_info.maker_submits_source_lock,
            steps=[Step(state=S.INITIALIZED, at=now, note="session created; waiting for the maker")],
            created_at=now,
            updated_at=now,
            request_id=request_id,
            request_hash=fingerprint,
            tenant=caller.tenant,
            trace_parent=current_parent(),
        )
        stored = await self._store.create(record, snapshot(record))
        if stored.session_id != session_id:
            return _same_request(stored, fingerprint)  # a concurrent create with the same request id won
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
        quote = self._quotes.bind(r.quote_id)
        if quote.src != r.src or quote.dst != r.dst or quote.src_amount != amount:
            raise InvalidArgument("quote_id", "the quote is for another pair or amount")
        return quote

    async def get(self, session_id: str, caller: Caller = INTERNAL) -> SessionRecord:
        if not session_id:
            raise InvalidArgument("session_id", "required")
        record = await self._store.get(session_id)
        # Another tenant's session is answered exactly like one that does not exist.
        if record is None or not caller.sees(record):
            raise NotFound(f"no session {session_id}", reason="SESSION_NOT_FOUND")
        return record

    async def list(
        self, maker: str, page_size: int, page_token: str, caller: Caller = INTERNAL
    ) -> tuple[list[SessionRecord], str]:
        if page_size > 100:
            raise InvalidArgument("page_size", "must be at most 100")
        size = page_size or 20
        after = read_page_token(page_token) if page_token else None
        found = await self._store.list_ids(maker or None, after, size, "" if caller.operator else caller.tenant)
        records = [rec for i, _ in found if (rec := await self._store.get(i)) is not None and caller.sees(rec)]
        return records, page_token_after(found[-1]) if len(found) == size else ""

    async def _record_intent(
        self, session_id: str, what: str, intend: Callable[[SessionRecord], Awaitable[bool]]
    ) -> SessionRecord:
        """Writes the maker's intent (`intend` changes the record, or says there is nothing to write) and
        wakes the saga, which alone moves the session; retried when the saga wrote in between."""
        for _ in range(5):
            record = await self.get(session_id)
            context.session_id.set(session_id)
            if not await intend(record):
                return record
            try:
                await self._saga.touch(record)
            except VersionConflict:
                await asyncio.sleep(0.05)
                continue
            self._runner.wake(session_id)
            return record
        raise Unavailable(f"the session is busy; retry the {what}", reason="BUSY")

    async def execute(
        self, session_id: str, request_id: str, signature: bytes, caller: Caller = INTERNAL
    ) -> SessionRecord:
        """Records the maker's go (with the signed order where the resolver submits it)."""
        await self.get(session_id, caller)  # the tenant never changes: seen now, seen in the intent below

        async def intend(record: SessionRecord) -> bool:
            if request_id and record.execute_request_id == request_id:
                if not record.maker_submits_source and record.signature != signature.hex():
                    raise IdempotencyConflict("request_id was used with another signature")
                return False
            if record.state is not S.INITIALIZED or record.execute_requested:
                raise FailedPrecondition(f"the session is {record.state.value}", reason="SESSION_NOT_EXECUTABLE")
            if record.cancel_requested:
                raise FailedPrecondition("the session is being cancelled", reason="SESSION_NOT_EXECUTABLE")
            if self._clock() > quote_of(record).valid_until:
                record.quote_expired = True
                with contextlib.suppress(VersionConflict):
                    await self._saga.touch(record)
                self._runner.wake(session_id)
                raise FailedPrecondition("the quote expired; create a new session", reason="QUOTE_EXPIRED")
            if not record.maker_submits_source:
                await self._check_signature(record, signature)
                record.signature = signature.hex()
            record.execute_request_id = request_id
            record.execute_requested = True
            return True

        return await self._record_intent(session_id, "execute", intend)

    async def _check_signature(self, record: SessionRecord, signature: bytes) -> None:
        """The source chain checks the maker's authorisation, so a bad signature is refused before
        anything is sent."""
        order = chain_pb2.PrepareMakerLockRequest(
            terms=source_terms(record),
            maker=record.maker,
            nonce=record.order_nonce,
            deadline=record.order_deadline,
            dst_terms_hash=bytes.fromhex(record.dst_terms_hash),
        )
        await self._chains[record.src.chain].verify_maker_order(order, signature)

    async def cancel(self, session_id: str, caller: Caller = INTERNAL) -> SessionRecord:
        """Records the maker's cancel; the reply shows the state before the saga acted on it (watch the
        session for the outcome)."""
        await self.get(session_id, caller)

        async def intend(record: SessionRecord) -> bool:
            if record.state in TERMINAL:
                raise FailedPrecondition(f"the session is already {record.state.value}", reason="SESSION_ENDED")
            if record.state is S.REVEALING_SECRET or record.secret_exposed:
                raise FailedPrecondition("the secret is being revealed; the swap completes", reason="REVEALING")
            if record.cancel_requested:
                return False
            record.cancel_requested = True
            return True

        return await self._record_intent(session_id, "cancel", intend)

    async def reveal(self, session_id: str, secret_hex: str, caller: Caller = INTERNAL) -> SessionRecord:
        """Secret mode "maker": the maker's client releases the secret. Checked against the hashlock, kept only
        sealed; the saga reveals it on chain if rule b still holds, or refunds."""
        secret = _secret_bytes(secret_hex)
        record = await self.get(session_id, caller)
        if record.secret_mode is not SecretMode.MAKER:
            raise FailedPrecondition(
                "the service holds this session's secret (secret_mode SERVICE)", reason="SECRET_HELD_BY_SERVICE"
            )
        if hashlib.sha256(secret).hexdigest() != record.hashlock:
            raise InvalidArgument("secret", "SHA-256 of the secret is not the session's hashlock")
        if record.sealed_secret:
            return record  # released before (or seen on chain): the same secret again changes nothing
        if record.state is not S.AWAITING_SECRET:
            if record.state in TERMINAL:
                raise FailedPrecondition(f"the session is already {record.state.value}", reason="SESSION_ENDED")
            raise FailedPrecondition(
                f"the session is {record.state.value}: release the secret only once it is awaiting_secret, after "
                "checking the destination lock on chain",
                reason="SECRET_NOT_EXPECTED",
            )
        dst_now = int((await self._chains[record.dst.chain].info()).chain_time)
        if dst_now > record.secret_deadline:
            self._runner.wake(session_id)  # the saga refunds (its own check, on fresh facts)
            raise FailedPrecondition(
                f"too late: the destination chain is at {dst_now}, past the secret deadline "
                f"{record.secret_deadline}; the session refunds",
                reason="SECRET_TOO_LATE",
            )

        async def intend(current: SessionRecord) -> bool:
            if current.sealed_secret:
                return False
            if current.state is not S.AWAITING_SECRET:
                raise FailedPrecondition(f"the session is {current.state.value}", reason="SECRET_NOT_EXPECTED")
            current.sealed_secret = self._box.seal(session_id, secret)
            return True

        released = await self._record_intent(session_id, "secret release", intend)
        log.info("the maker released the secret")
        return released

    async def watch(
        self, session_id: str, cursor: str, watchers: Watchers, caller: Caller = INTERNAL
    ) -> AsyncIterator[tuple[str, bytes]]:
        """Streams over the watch pool only: however many watch, the saga's connections stay its own."""
        if not session_id:
            raise InvalidArgument("session_id", "required")
        if cursor and not valid_cursor(cursor):
            raise InvalidArgument("cursor", "must be a cursor from a previous update")
        record = await watchers.get(session_id)
        if record is None or not caller.sees(record):
            raise NotFound(f"no session {session_id}", reason="SESSION_NOT_FOUND")
        # An ended session has nothing more to wait for: send what is after the cursor and close.
        follow = record.state not in TERMINAL
        async for entry_id, payload in watchers.updates(record.session_id, cursor or None, _WATCH_BLOCK_MS, follow):
            yield entry_id, payload
            if session_pb2.Session.FromString(payload).state in _TERMINAL_PB:
                return


def _same_request(found: SessionRecord, fingerprint: str) -> SessionRecord:
    """The session of a repeated request id, when the request is the same one."""
    if found.request_hash and found.request_hash != fingerprint:
        raise IdempotencyConflict(
            f"request_id was used for session {found.session_id} with another request; use a new request_id"
        )
    return found


_PAGE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_SESSION_ID = re.compile(r"[0-9a-f]{32}")


def page_token_after(item: tuple[str, float]) -> str:
    """An opaque token for the page after `item` (session id, creation time): base64url of both."""
    session_id, created_at = item
    return base64.urlsafe_b64encode(f"{created_at!r}|{session_id}".encode()).decode().rstrip("=")


def read_page_token(token: str) -> tuple[float, str]:
    """(creation time, session id) of a token page_token_after made; anything else names the field."""
    bad = InvalidArgument("page_token", "not a token from a previous response")
    if not _PAGE_TOKEN.fullmatch(token):
        raise bad
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created, _, session_id = text.partition("|")
        created_at = float(created)
    except (ValueError, UnicodeDecodeError):
        raise bad from None
    if not session_id or not math.isfinite(created_at) or not _SESSION_ID.fullmatch(session_id):
        raise bad
    return created_at, session_id


_STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
_U64 = 2**64


def valid_cursor(cursor: str) -> bool:
    """A Redis stream id, both parts unsigned 64-bit: anything else Redis would refuse with an error."""
    found = _STREAM_ID.fullmatch(cursor)
    return found is not None and all(int(part) < _U64 for part in found.groups())


_TERMINAL_PB = {session_pb2.SessionState.Value(f"SESSION_STATE_{s.name}") for s in TERMINAL}


_HEX32 = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")


def _secret_mode(r: session_pb2.CreateSessionRequest) -> tuple[SecretMode, bytes | None]:
    """(SERVICE, None) or (MAKER, the maker's hashlock)."""
    if r.secret_mode in (session_pb2.SECRET_MODE_UNSPECIFIED, session_pb2.SECRET_MODE_SERVICE):
        if r.hashlock:
            raise InvalidArgument(
                "hashlock", "only with secret_mode MAKER: in SERVICE mode the service draws the secret"
            )
        return SecretMode.SERVICE, None
    if r.secret_mode != session_pb2.SECRET_MODE_MAKER:
        raise InvalidArgument("secret_mode", "must be SECRET_MODE_SERVICE or SECRET_MODE_MAKER")
    found = _HEX32.fullmatch(r.hashlock)
    if found is None:
        raise InvalidArgument("hashlock", "required with secret_mode MAKER: SHA-256 of your secret, 64 hex digits")
    return SecretMode.MAKER, bytes.fromhex(found.group(1))


def _secret_bytes(value: str) -> bytes:
    found = _HEX32.fullmatch(value)
    if found is None:
        # Never echo the value: it may be a secret with a typo.
        raise InvalidArgument("secret", "must be 32 bytes as 64 hex digits (0x optional)")
    return bytes.fromhex(found.group(1))


def _chain(field: str, value: common_pb2.Chain.ValueType) -> str:
    name = CHAIN_NAMES.get(value)
    if name is None:
        raise InvalidArgument(field, "must be CHAIN_BASE or CHAIN_NEAR")
    return name


async def _account(chain: Chain, field: str, value: str, *, must_exist: bool = False) -> str:
    """The account in its chain's normal form, checked by that chain's service (naming `field`)."""
    try:
        checked = await chain.check_account(value)
    except InvalidArgument as err:
        raise InvalidArgument(field, err.description) from None
    if must_exist and not checked.exists:
        raise InvalidArgument(field, f"no account {checked.account} on the destination chain")
    return checked.account


def check_plan(plan: quote_pb2.TimelockPlan, src_inclusion_s: int, dst_inclusion_s: int, skew_s: int) -> None:
    """A plan the safety rules could never carry out is refused before anything is stored: the
    destination lock, sent at once, must still leave room to reveal and collect the source (rule a), and
    the reveal margin must cover the destination's inclusion bound (rule b; docs/safety.md)."""
    need = dst_inclusion_s + plan.dst.cancellation_after_s + src_inclusion_s + 2 * skew_s
    if need >= plan.src.cancellation_after_s:
        raise FailedPrecondition(
            f"the quote's timelocks cannot be kept: destination cancellation {plan.dst.cancellation_after_s} s "
            f"plus inclusion bounds {dst_inclusion_s} + {src_inclusion_s} s and twice the skew {skew_s} s "
            f"reach the source cancellation {plan.src.cancellation_after_s} s",
            reason="UNSAFE_TIMELOCKS",
        )
    if plan.reveal_margin_s < dst_inclusion_s:
        raise FailedPrecondition(
            f"the quote's reveal margin {plan.reveal_margin_s} s is shorter than the destination chain's "
            f"inclusion bound {dst_inclusion_s} s",
            reason="UNSAFE_TIMELOCKS",
        )
