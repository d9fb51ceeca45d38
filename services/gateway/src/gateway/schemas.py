"""The JSON of docs/api.md as pydantic models: requests are strict and reject unknown fields; responses
describe exactly what the gateway sends (they are the OpenAPI document's schemas too)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from swap_runtime.quote_token import MAX_TOKEN_CHARS

ChainName = Literal["base", "near"]
SecretModeName = Literal["service", "maker"]
Hex32 = Annotated[str, Field(pattern=r"^(0x)?[0-9a-fA-F]{64}$")]
StateName = Literal[
    "initialized",
    "executing",
    "source_locking",
    "source_locked",
    "destination_locking",
    "both_locked",
    "awaiting_secret",
    "revealing_secret",
    "completed",
    "cancelling",
    "cancelled",
    "refunding",
    "refunded",
    "failed",
    "timeout",
]
STATE_NAMES = frozenset(get_args(StateName))

SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_TEXT = 256
# uint32 / uint64 of the protos: values past these cannot be encoded, so they are refused as input here.
UINT32_MAX = 2**32 - 1


def _encodable(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); protobuf strings must be valid UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_encodable)]
# A quote_id carries the quote it names, signed (about 500 base64url characters).
QuoteId = Annotated[str, Field(max_length=MAX_TOKEN_CHARS), AfterValidator(_encodable)]
# Base units: digits, no sign, no leading zero, at most uint256's 78 digits (the services check the range).
Amount = Annotated[str, Field(pattern=r"^(0|[1-9][0-9]{0,77})$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests --------------------------------------------------------------------------------------------------


class AssetIn(_Request):
    chain: ChainName = Field(description='"base" or "near".')
    token: Text = Field(description='ERC-20 address / NEP-141 account id, or "native".')


class QuoteRequest(_Request):
    src: AssetIn
    dst: AssetIn
    src_amount: Amount = Field(description="What the maker sells: a decimal string of source base units, > 0.")
    slippage_bps: int = Field(0, ge=0, le=5_000, description="Tolerated shortfall, basis points; 0 = the default.")
    urgency: float = Field(0.0, ge=0, le=4, allow_inf_nan=False, description="0.5..4 (1 = normal); 0 = the default.")


class CreateSessionRequest(_Request):
    src: AssetIn
    dst: AssetIn
    src_amount: Amount = Field(description="Decimal string of source base units, > 0.")
    maker: Text = Field(description="The maker's account on the source chain (0x address / NEAR account id).")
    receiver: Text = Field(description="Who receives the destination funds (address / account id).")
    slippage_bps: int = Field(0, ge=0, le=5_000, description="Tolerated shortfall, basis points; 0 = the default.")
    quote_id: QuoteId = Field(
        "", description="Bind this earlier quote (same pair and amount, still valid): its quote_id as issued."
    )
    request_id: Text = Field("", description="Makes retries safe: the same request_id returns the same session.")
    secret_mode: SecretModeName = Field(
        "service",
        description='"service": the service draws and reveals the secret (the maker trusts the operator with it); '
        '"maker": the maker\'s client draws it, sends only its hashlock and releases the secret with '
        "POST /sessions/{id}/secret after checking the destination lock on chain (the maker trusts no one).",
    )
    hashlock: Hex32 | Literal[""] = Field(
        "", description='secret_mode "maker" only, and required there: SHA-256 of the 32-byte secret, 64 hex digits.'
    )


class ExecuteSessionRequest(_Request):
    signature: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{130}$")] = Field(
        "", description="BASE source: the maker's 65-byte EIP-712 signature of maker_action.sign_order, 0x-hex."
    )
    request_id: Text = Field("", description="Makes retries safe: the same request_id executes once.")


class RevealSecretRequest(_Request):
    secret: Hex32 = Field(description="The maker's 32-byte secret, 64 hex digits (0x optional).")


class EmptyRequest(_Request):
    """No fields: `{}`."""


class ListSessionsQuery(BaseModel):
    # Query strings are text, so numbers are parsed (not strict); unknown parameters are still refused.
    model_config = ConfigDict(extra="forbid")

    maker: Text = Field("", description="Only this maker's sessions.")
    page_size: int = Field(20, ge=1, le=100, description="Sessions per page.")
    # Opaque (base64url); the session service checks what is inside.
    page_token: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{0,128}$")] = Field(
        "", description="next_page_token of the previous page (opaque; stable while new sessions are created)."
    )


# --- replies ---------------------------------------------------------------------------------------------------


class Asset(_Reply):
    chain: ChainName
    token: str


class AssetInfo(_Reply):
    chain: ChainName
    token: str = Field(description='ERC-20 address / NEP-141 account id, or "native".')
    symbol: str = Field(description='e.g. "TUSD", "ETH", "NEAR"; tokens on both chains may share one.')
    decimals: int = Field(description="One whole token is 10^decimals base units.")
    source: bool = Field(description="Whether the maker can pay it (a quote's or session's src).")
    destination: bool = Field(description="Whether the receiver can get it (a quote's or session's dst).")


class AssetList(_Reply):
    assets: list[AssetInfo]


class Auction(_Reply):
    start_amount: str
    end_amount: str
    start_time: int
    duration_s: int
    current_amount: str


class Timelocks(_Reply):
    withdrawal_after_s: int
    public_withdrawal_after_s: int
    cancellation_after_s: int
    public_cancellation_after_s: int


class TimelockPlan(_Reply):
    src: Timelocks
    dst: Timelocks
    reveal_margin_s: int


class Quote(_Reply):
    quote_id: str
    src: Asset
    dst: Asset
    src_amount: str
    market_rate: str
    auction: Auction
    protocol_fee: str
    network_fee: str
    slippage_bps: int
    min_received: str
    issued_at: int
    valid_until: int
    refund_guaranteed_by: int
    timelocks: TimelockPlan
    src_safety_deposit: str
    dst_safety_deposit: str


class SignOrder(_Reply):
    typed_data: dict[str, Any] = Field(description="The EIP-712 object for eth_signTypedData_v4.")
    token: str
    spender: str
    allowance: str


class NearCall(_Reply):
    contract: str
    method: str
    args: dict[str, Any]
    deposit: str
    gas: int


class SignOrderAction(_Reply):
    sign_order: SignOrder


class NearCallAction(_Reply):
    near_call: NearCall
    # When set, made first: the deposit_native top-up of NEAR prepaid on the HTLC, from which a NEP-141 lock
    # takes its storage fee.
    near_prepay: NearCall | None = None


class Step(_Reply):
    state: StateName
    at: int
    chain: ChainName | None
    tx_hash: str | None
    note: str


class SessionError(_Reply):
    reason: str
    message: str


class Session(_Reply):
    session_id: str
    state: StateName
    src: Asset
    dst: Asset
    src_amount: str
    dst_amount: str | None = Field(description="Null until the destination amount is fixed at the source lock.")
    maker: str
    receiver: str
    hashlock: str = Field(description="SHA-256 of the secret, 64 hex digits.")
    quote: Quote
    maker_action: SignOrderAction | NearCallAction | None
    src_lock_id: str | None
    dst_lock_id: str | None
    steps: list[Step]
    error: SessionError | None
    created_at: int
    updated_at: int
    secret: str | None = Field(description="64 hex digits, null until it is public on chain.")
    version: int
    secret_mode: SecretModeName = Field(description="Who holds the secret until it is on chain.")
    pending_intent: Literal["execute", "cancel"] | None = Field(
        description="The maker's execute or cancel, recorded but not acted on yet: the state moves a moment later."
    )
    secret_deadline: int | None = Field(
        description="awaiting_secret only: the destination chain's time (unix seconds) up to which a released "
        "secret is used; later the session refunds."
    )
    src_cancellation_at: int | None = Field(
        description="When the source lock can be cancelled, refunding the maker: a time of the source chain "
        "(unix seconds); null until the source lock is on chain."
    )
    dst_cancellation_at: int | None = Field(
        description="When the destination lock can be cancelled (the resolver's refund): a time of the "
        "destination chain (unix seconds); null until the destination lock is on chain."
    )
    order_deadline: int = Field(
        description="The source chain's time (unix seconds) by which the source must be locked: the maker's "
        "signed order is submitted (BASE) or the maker's own lock lands (NEAR: the HTLC refuses it later)."
    )


class SessionList(_Reply):
    sessions: list[Session]
    next_page_token: str | None


class ErrorDetail(_Reply):
    code: str = Field(description="The gRPC status name, e.g. INVALID_ARGUMENT.")
    reason: str = Field(description="Stable UPPER_SNAKE reason.")
    message: str
    field: str | None = Field(description="Dotted path of the offending field, when there is one.")


class ErrorBody(_Reply):
    error: ErrorDetail


class HealthCheck(_Reply):
    state: Literal["ok", "degraded", "down"]
    latency_ms: float = Field(description="How long the probe took.")
    detail: str | None = Field(None, description="Why it is not ok, or what was measured (memory).")


class Health(_Reply):
    status: Literal["ok", "degraded", "down"]
    checks: dict[str, HealthCheck] = Field(
        description="session, quote, redis, memory, and chain_base / chain_near when their addresses are set."
    )
