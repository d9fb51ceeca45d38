"""A session as stored: everything the saga needs to resume after a restart."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from session.states import State


class SecretMode(StrEnum):
    SERVICE = "service"  # the service drew the secret
    MAKER = "maker"  # the maker's client holds it until RevealSecret


class Step(BaseModel):
    state: State
    at: float
    chain: str = ""  # the chain name (swap.common.v1.Chain without its prefix) when the step has a transaction
    tx_hash: str = ""
    note: str = ""


class Leg(BaseModel):
    """One chain's side of the swap."""

    chain: str  # a chain name: swap.common.v1.Chain without its prefix, lower case
    token: str
    amount: str = ""  # base units; the destination amount is fixed right before its lock is sent
    lock_id: str = ""
    salt: str = ""  # the destination lock's salt / the NEAR maker lock's nonce
    cancellation_at: int = 0  # the lock's cancellation time (its chain's unix seconds) once seen; shown only


class SessionRecord(BaseModel):
    session_id: str
    version: int = 0
    state: State = State.INITIALIZED
    src: Leg
    dst: Leg
    maker: str
    receiver: str
    hashlock: str  # hex
    secret_mode: SecretMode = SecretMode.SERVICE
    sealed_secret: str = ""  # AES-256-GCM, base64; never leaves the service ("" while the maker holds it)
    secret_deadline: int = 0  # awaiting_secret: the destination chain time up to which a release is used
    secret_public: str = ""  # hex, set once the destination withdrawal is on chain
    quote: str  # swap.quote.v1.Quote, serialized then base64
    maker_action: str = ""  # swap.session.v1.MakerAction, serialized then base64
    order_nonce: str = ""
    order_deadline: int = 0
    dst_terms_hash: str = ""  # hex
    signature: str = ""  # hex, the maker's EIP-712 signature (BASE source)
    maker_submits_source: bool = False  # the maker sends the source lock (NEAR) / the resolver submits it (BASE)
    # The maker's intents: recorded by Execute / Cancel, acted on by the saga alone.
    execute_requested: bool = False
    cancel_requested: bool = False
    quote_expired: bool = False
    # What the saga has broadcast, persisted before the broadcast (chain times, unix seconds; 0 = never).
    src_sent_at: int = 0
    src_rejected: bool = False
    dst_sent_at: int = 0
    dst_rejected: bool = False
    secret_exposed: bool = False  # persisted before the first transaction that carries the secret
    receiver_paid_directly: bool = False
    paying_receiver: bool = False  # a direct payment to the receiver was started (never sent twice)
    alert: str = ""  # set while the saga is halted beyond its bounds and an operator must look
    error_reason: str = ""
    error_message: str = ""
    steps: list[Step] = Field(default_factory=list)
    created_at: float
    updated_at: float
    request_id: str = ""
    request_hash: str = ""  # SHA-256 of the canonical Create request: a reused request id must repeat it
    tenant: str = ""  # who created it (the edge's x-tenant); "" = an internal caller
    execute_request_id: str = ""
    trace_parent: str = ""  # W3C traceparent of the Create request: the saga's steps join that trace
