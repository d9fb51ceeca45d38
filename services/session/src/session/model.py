"""A session as stored: everything the saga needs to resume after a restart."""

from __future__ import annotations

from pydantic import BaseModel, Field

from session.states import State


class Step(BaseModel):
    state: State
    at: float
    chain: str = ""  # "base" | "near" when the step has a transaction
    tx_hash: str = ""
    note: str = ""


class Leg(BaseModel):
    """One chain's side of the swap."""

    chain: str  # "base" | "near"
    token: str
    amount: str = ""  # base units; the destination amount is fixed right before its lock is sent
    lock_id: str = ""
    salt: str = ""  # the destination lock's salt / the NEAR maker lock's nonce


class SessionRecord(BaseModel):
    session_id: str
    version: int = 0
    state: State = State.INITIALIZED
    src: Leg
    dst: Leg
    maker: str
    receiver: str
    hashlock: str  # hex
    sealed_secret: str  # AES-256-GCM, base64; never leaves the service
    secret_public: str = ""  # hex, set once the destination withdrawal is on chain
    quote: str  # swap.quote.v1.Quote, serialized then base64
    maker_action: str = ""  # swap.session.v1.MakerAction, serialized then base64
    order_nonce: str = ""
    order_deadline: int = 0
    dst_terms_hash: str = ""  # hex
    signature: str = ""  # hex, the maker's EIP-712 signature (BASE source)
    cancel_requested: bool = False
    error_reason: str = ""
    error_message: str = ""
    steps: list[Step] = Field(default_factory=list)
    created_at: float
    updated_at: float
    request_id: str = ""
    execute_request_id: str = ""
    trace_parent: str = ""  # W3C traceparent of the Create request: the saga's steps join that trace
