"""What the escrow contracts record, as plain values (no web3, no protobuf)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

NATIVE = "native"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class State(IntEnum):
    """Mirrors EscrowBase.State."""

    ABSENT = 0
    ACTIVE = 1
    WITHDRAWN = 2
    CANCELLED = 3


@dataclass(frozen=True)
class Timelocks:
    """Seconds after lockedAt; the contract's Timelocks struct."""

    withdrawal: int
    public_withdrawal: int
    cancellation: int
    public_cancellation: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.withdrawal, self.public_withdrawal, self.cancellation, self.public_cancellation)


@dataclass(frozen=True)
class TxRef:
    tx_hash: str
    block_number: int
    block_hash: str


@dataclass(frozen=True)
class Escrow:
    id: bytes
    state: State
    depositor: str
    beneficiary: str
    operator: str
    token: str  # checksummed ERC-20 address, or NATIVE
    amount: int
    safety_deposit: int
    hashlock: bytes
    timelocks: Timelocks
    locked_at: int
    contract: str  # the escrow contract holding it (EscrowSrc or EscrowDst)

    def opens(self, offset: int) -> int:
        return self.locked_at + offset


@dataclass(frozen=True)
class EscrowView:
    """An escrow with where it was created, how deep that is, and the secret once public."""

    escrow: Escrow
    created: TxRef | None
    confirmations: int
    secret: bytes | None
    closed: TxRef | None  # the withdrawal / cancellation, once there is one
    closed_confirmations: int = 0


@dataclass(frozen=True)
class SrcOrder:
    """EscrowSrc.Order, signed by the maker (EIP-712)."""

    maker: str
    resolver: str
    token: str
    amount: int
    hashlock: bytes
    timelocks: Timelocks
    safety_deposit: int
    dst_terms_hash: bytes
    nonce: int
    deadline: int

    def as_tuple(self) -> tuple[object, ...]:
        return (
            self.maker,
            self.resolver,
            self.token,
            self.amount,
            self.hashlock,
            self.timelocks.as_tuple(),
            self.safety_deposit,
            self.dst_terms_hash,
            self.nonce,
            self.deadline,
        )


@dataclass(frozen=True)
class DstParams:
    """EscrowDst.DstParams: a lock the resolver funds for a beneficiary."""

    beneficiary: str
    token: str  # ERC-20 address or ZERO_ADDRESS for ETH
    amount: int
    hashlock: bytes
    timelocks: Timelocks
    safety_deposit: int
    salt: int

    def as_tuple(self) -> tuple[object, ...]:
        return (
            self.beneficiary,
            self.token,
            self.amount,
            self.hashlock,
            self.timelocks.as_tuple(),
            self.safety_deposit,
            self.salt,
        )
