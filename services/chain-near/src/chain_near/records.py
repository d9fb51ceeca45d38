"""The HTLC's storage records (contracts/near/swap-htlc/src/storage.rs), decoded from the raw bytes that
EXPERIMENTAL_changes reports, into the JSON shape of its get_lock view.

| key                     | value                                                                  |
|-------------------------|------------------------------------------------------------------------|
| `l` + lock id (32)      | lock record, format 1 (below)                                          |
| `t` + lock id (32)      | tombstone of an ended lock: state, locked_height u64 (+ 32-byte secret) |

Record format 1, integers little-endian: format byte, state byte, index position u64, amount u128,
safety deposit u128, hashlock (32), the four timelocks u64, locked_at u64, locked_height u64, a secret flag
byte and 32 bytes, then depositor, operator, beneficiary and token as u8-length-prefixed strings (an empty
token is native NEAR).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

LOCK_PREFIX = b"l"
TOMBSTONE_PREFIX = b"t"
RECORD_FORMAT = 1
STATE_NAMES = ("active", "withdrawn", "refunded")
_FIXED = struct.Struct("<BBQ16s16s32sQQQQQQB32s")


class CorruptRecord(ValueError):
    """Bytes that are not a record of the format this service reads."""


def _u128(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


def _state(code: int) -> str:
    if code >= len(STATE_NAMES):
        raise CorruptRecord(f"unknown lock state {code}")
    return STATE_NAMES[code]


def decode_lock(lock_id: bytes, value: bytes) -> dict[str, Any]:
    """A lock record as the get_lock view shows it."""
    if len(value) < _FIXED.size + 4:
        raise CorruptRecord("lock record too short")
    (
        fmt,
        state,
        _position,
        amount,
        safety_deposit,
        hashlock,
        withdrawal,
        public_withdrawal,
        cancellation,
        public_cancellation,
        locked_at,
        locked_height,
        has_secret,
        secret,
    ) = _FIXED.unpack_from(value)
    if fmt != RECORD_FORMAT:
        raise CorruptRecord(f"lock record format {fmt}")
    names: list[str] = []
    offset = _FIXED.size
    for _ in range(4):
        length = value[offset]
        text = value[offset + 1 : offset + 1 + length]
        if len(text) != length:
            raise CorruptRecord("lock record too short")
        names.append(text.decode())
        offset += 1 + length
    depositor, operator, beneficiary, token = names
    return {
        "lock_id": lock_id.hex(),
        "depositor": depositor,
        "operator": operator,
        "beneficiary": beneficiary,
        "token": token or "native",
        "amount": str(_u128(amount)),
        "safety_deposit": str(_u128(safety_deposit)),
        "hashlock": hashlock.hex(),
        "timelocks": {
            "withdrawal": str(withdrawal),
            "public_withdrawal": str(public_withdrawal),
            "cancellation": str(cancellation),
            "public_cancellation": str(public_cancellation),
        },
        "locked_at": str(locked_at),
        "locked_height": locked_height,
        "state": _state(state),
        "secret": secret.hex() if has_secret else None,
    }


@dataclass(frozen=True)
class Tombstone:
    state: str
    locked_height: int
    secret: str | None  # hex


def decode_tombstone(value: bytes) -> Tombstone:
    if len(value) not in (9, 41):
        raise CorruptRecord("tombstone of unexpected length")
    (locked_height,) = struct.unpack_from("<Q", value, 1)
    return Tombstone(_state(value[0]), locked_height, value[9:].hex() if len(value) == 41 else None)
