"""What a quote is made of, as plain values (no protobuf, no Redis). Amounts are integers of base units,
times are unix seconds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

NATIVE = "native"

# Unix seconds now; injected so that tests decide what "now" is.
Clock = Callable[[], float]


class Chain(StrEnum):
    BASE = "base"
    NEAR = "near"


@dataclass(frozen=True)
class Token:
    chain: Chain
    token: str  # ERC-20 address / NEP-141 account id, or NATIVE
    symbol: str
    decimals: int
    # The sides of a swap it can be on: what the maker pays (source) / what the receiver gets (destination).
    source: bool = True
    destination: bool = True


@dataclass(frozen=True)
class Asset:
    chain: Chain
    token: str


@dataclass(frozen=True)
class Timelocks:
    """Seconds after the lock lands on its chain (swap.common.v1.Timelocks)."""

    withdrawal_after_s: int
    public_withdrawal_after_s: int
    cancellation_after_s: int
    public_cancellation_after_s: int


@dataclass(frozen=True)
class TimelockPlan:
    src: Timelocks
    dst: Timelocks
    reveal_margin_s: int


@dataclass(frozen=True)
class Auction:
    """Destination amounts net of fees: start_amount at start_time, linearly down to end_amount."""

    start_amount: int
    end_amount: int
    start_time: int
    duration_s: int
    current_amount: int


@dataclass(frozen=True)
class Quote:
    quote_id: str
    src: Asset
    dst: Asset
    src_amount: int
    market_rate: int  # destination base units per 10^18 source base units, rounded down
    auction: Auction
    protocol_fee: int
    network_fee: int
    slippage_bps: int
    min_received: int
    issued_at: int
    valid_until: int
    timelocks: TimelockPlan
    refund_guaranteed_by: int
    src_safety_deposit: int
    dst_safety_deposit: int
