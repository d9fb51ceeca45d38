"""What the NEAR HTLC contract records, as plain values (no py-near, no protobuf).

The contract counts in nanoseconds and yoctoNEAR; these values keep its units, and the conversion to the
service's unix seconds happens in one place (`Lock.opens`, `Lock.locked_at_s`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum

NATIVE = "native"
NS_PER_S = 10**9


class State(IntEnum):
    ABSENT = 0
    ACTIVE = 1
    WITHDRAWN = 2
    REFUNDED = 3


STATES = {"active": State.ACTIVE, "withdrawn": State.WITHDRAWN, "refunded": State.REFUNDED}


def lock_id_for(depositor: str, nonce: str) -> str:
    """The contract's lock id: hex(sha256("<depositor>:<nonce>"))."""
    return hashlib.sha256(f"{depositor}:{nonce}".encode()).hexdigest()


@dataclass(frozen=True)
class Timelocks:
    """Nanoseconds after the lock's creation block timestamp, as the contract stores them."""

    withdrawal: int
    public_withdrawal: int
    cancellation: int
    public_cancellation: int

    @classmethod
    def from_seconds(
        cls, withdrawal: int, public_withdrawal: int, cancellation: int, public_cancellation: int
    ) -> Timelocks:
        return cls(
            withdrawal * NS_PER_S,
            public_withdrawal * NS_PER_S,
            cancellation * NS_PER_S,
            public_cancellation * NS_PER_S,
        )

    def to_json(self) -> dict[str, str]:
        return {
            "withdrawal": str(self.withdrawal),
            "public_withdrawal": str(self.public_withdrawal),
            "cancellation": str(self.cancellation),
            "public_cancellation": str(self.public_cancellation),
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Timelocks:
        return cls(
            int(data["withdrawal"]),
            int(data["public_withdrawal"]),
            int(data["cancellation"]),
            int(data["public_cancellation"]),
        )

    def seconds(self) -> tuple[int, int, int, int]:
        return (
            self.withdrawal // NS_PER_S,
            self.public_withdrawal // NS_PER_S,
            self.cancellation // NS_PER_S,
            self.public_cancellation // NS_PER_S,
        )


@dataclass(frozen=True)
class TxRef:
    tx_hash: str  # base58; empty when the transaction could not be attributed
    block_height: int
    block_hash: str


@dataclass(frozen=True)
class Lock:
    lock_id: str
    state: State
    depositor: str
    operator: str
    beneficiary: str
    token: str  # NEP-141 account id, or NATIVE
    amount: int
    safety_deposit: int
    hashlock: bytes
    timelocks: Timelocks
    locked_at: int  # nanoseconds
    locked_height: int
    secret: bytes | None

    @property
    def locked_at_s(self) -> int:
        return self.locked_at // NS_PER_S

    def opens(self, offset_ns: int) -> int:
        """Unix second in which a window `offset_ns` after the lock opens."""
        return (self.locked_at + offset_ns) // NS_PER_S

    def window_panic(self, action: str, caller: str, now_ns: int) -> str | None:
        """The panic the HTLC raises for `caller`'s "withdraw" or "refund" in a block of time `now_ns`
        (docs/near-htlc.md, "Window panics"); None when the call is in its window."""
        t = self.timelocks
        if action == "withdraw":
            private, public, closes = t.withdrawal, t.public_withdrawal, t.cancellation
            if now_ns >= self.locked_at + closes:
                return f"too late: closed at {self.locked_at + closes}"
        else:
            private, public = t.cancellation, t.public_cancellation
        private_opens, public_opens = self.locked_at + private, self.locked_at + public
        if caller == self.operator:
            return f"too early: opens at {private_opens}" if now_ns < private_opens else None
        if now_ns >= public_opens:
            return None
        if now_ns >= private_opens:
            verb = "withdraw" if action == "withdraw" else "refund"
            return f"only the operator can {verb} until {public_opens}"
        return f"too early: opens at {public_opens}"


@dataclass(frozen=True)
class LockView:
    """A lock with where it was created, how deep that is under the final head, and its closing step."""

    lock: Lock
    created: TxRef | None
    confirmations: int
    final: bool
    closed: TxRef | None
    closed_final: bool = False  # the lock's end is in the final state (whether or not `closed` is known)


@dataclass(frozen=True)
class LockRequest:
    """A lock the resolver funds for a beneficiary (lock_native, or ft_transfer_call to the HTLC)."""

    nonce: str
    beneficiary: str
    token: str
    amount: int
    hashlock: bytes
    timelocks: Timelocks
    safety_deposit: int
    deadline_s: int = 0  # unix seconds after which the HTLC refuses the lock (0: none)

    def message(self, operator: str) -> dict[str, object]:
        """The lock arguments, shared by lock_native and the ft_transfer_call message."""
        message: dict[str, object] = {
            "nonce": self.nonce,
            "beneficiary": self.beneficiary,
            "operator": operator,
            "hashlock": self.hashlock.hex(),
            "timelocks": self.timelocks.to_json(),
            "safety_deposit": str(self.safety_deposit),
        }
        if self.deadline_s:
            message["deadline"] = str(self.deadline_s * 10**9)
        return message


@dataclass(frozen=True)
class HtlcEvent:
    """One NEP-297 event the HTLC logged, as the feed reads it from the receipts that changed its state."""

    index: int
    name: str
    lock_id: str
    data: dict[str, object]
    block_height: int
    block_timestamp: int  # nanoseconds
    receipt_id: str  # the receipt whose execution recorded it
    tx_hash: str  # the transaction behind that receipt, when known; empty otherwise
    log_index: int  # of its log line in that receipt's outcome


@dataclass(frozen=True)
class MakerCall:
    """The function call a maker makes from their own account to lock the source leg on NEAR."""

    lock_id: str
    contract: str
    method: str
    args: dict[str, object]
    deposit: int
    gas: int
    # A call to make first: the deposit_native top-up a NEP-141 lock's storage fee and safety deposit need.
    prepay: MakerCall | None = None
