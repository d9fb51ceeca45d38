"""The public face of a session (swap.session.v1.Session): never the secret before it is on chain."""

from __future__ import annotations

import base64

from swap.chain.v1 import chain_pb2
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2

from session.model import SecretMode, SessionRecord
from session.states import TERMINAL, State

# Chain names as the wire spells them (CHAIN_BASE -> "base"): the service knows chains only as names of
# ChainService endpoints.
CHAINS = {name.removeprefix("CHAIN_").lower(): value for name, value in common_pb2.Chain.items() if value}
CHAIN_NAMES = {v: k for k, v in CHAINS.items()}
_STATES = {s: session_pb2.SessionState.Value(f"SESSION_STATE_{s.name}") for s in State}
# Secret modes as stored ("service", "maker") and on the wire.
SECRET_MODES = {SecretMode.SERVICE: session_pb2.SECRET_MODE_SERVICE, SecretMode.MAKER: session_pb2.SECRET_MODE_MAKER}


def state_pb(state: State) -> session_pb2.SessionState.ValueType:
    return _STATES[state]


def quote_of(record: SessionRecord) -> quote_pb2.Quote:
    return quote_pb2.Quote.FromString(base64.b64decode(record.quote))


def source_terms(record: SessionRecord) -> chain_pb2.LockTerms:
    """The source lock's terms as the maker's order binds them."""
    quote = quote_of(record)
    return chain_pb2.LockTerms(
        token=record.src.token,
        amount=record.src.amount,
        hashlock=bytes.fromhex(record.hashlock),
        timelocks=quote.timelocks.src,
        safety_deposit=quote.src_safety_deposit,
    )


def maker_action_of(record: SessionRecord) -> session_pb2.MakerAction:
    return session_pb2.MakerAction.FromString(base64.b64decode(record.maker_action))


# States in which a cancel has been acted on (or can no longer be): nothing is pending then.
_CANCEL_TAKEN = frozenset({State.CANCELLING, State.REFUNDING, State.REVEALING_SECRET})


def pending_intent(record: SessionRecord) -> str:
    """The maker's intent the swap has not acted on yet ("" when none)."""
    if record.state in TERMINAL:
        return ""
    if record.cancel_requested and record.state not in _CANCEL_TAKEN:
        return "cancel"
    if record.execute_requested and record.state is State.INITIALIZED:
        return "execute"
    return ""


def to_pb(record: SessionRecord) -> session_pb2.Session:
    session = session_pb2.Session(
        session_id=record.session_id,
        state=state_pb(record.state),
        src=quote_pb2.Asset(chain=CHAINS[record.src.chain], token=record.src.token),
        dst=quote_pb2.Asset(chain=CHAINS[record.dst.chain], token=record.dst.token),
        src_amount=record.src.amount,
        dst_amount=record.dst.amount,
        maker=record.maker,
        receiver=record.receiver,
        hashlock=record.hashlock,
        quote=quote_of(record),
        src_lock_id=record.src.lock_id,
        dst_lock_id=record.dst.lock_id,
        created_at=int(record.created_at),
        updated_at=int(record.updated_at),
        secret=record.secret_public,
        version=record.version,
        secret_mode=SECRET_MODES[record.secret_mode],
        secret_deadline=record.secret_deadline if record.state is State.AWAITING_SECRET else 0,
        pending_intent=pending_intent(record),
        src_cancellation_at=record.src.cancellation_at,
        dst_cancellation_at=record.dst.cancellation_at,
        order_deadline=record.order_deadline,
    )
    if record.maker_action:
        session.maker_action.CopyFrom(maker_action_of(record))
    for step in record.steps:
        session.steps.append(
            session_pb2.Step(
                state=state_pb(step.state),
                at=int(step.at),
                chain=CHAINS.get(step.chain, common_pb2.CHAIN_UNSPECIFIED),
                tx_hash=step.tx_hash,
                note=step.note,
            )
        )
    if record.error_reason:
        session.error.CopyFrom(session_pb2.SessionError(reason=record.error_reason, message=record.error_message))
    return session


def snapshot(record: SessionRecord) -> bytes:
    return to_pb(record).SerializeToString()
