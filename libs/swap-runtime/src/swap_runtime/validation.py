"""Chain-agnostic input checks. Each failure names the field (InvalidArgument) before anything is sent."""

from __future__ import annotations

import re

from swap.common.v1 import common_pb2

from swap_runtime.errors import InvalidArgument

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
UINT256_MAX = 2**256 - 1


def parse_amount(field: str, value: str, *, allow_zero: bool = False) -> int:
    """A decimal string of base units: digits only, no sign, no leading zeros, no exponent."""
    if not value:
        raise InvalidArgument(field, "required: a decimal string of base units")
    if not _DECIMAL.fullmatch(value):
        raise InvalidArgument(field, f"must be a decimal string of base units, got {value!r}")
    amount = int(value)
    if amount > UINT256_MAX:
        raise InvalidArgument(field, "exceeds 2^256-1")
    if amount == 0 and not allow_zero:
        raise InvalidArgument(field, "must be greater than zero")
    return amount


def require_bytes32(field: str, value: bytes) -> bytes:
    if len(value) != 32:
        raise InvalidArgument(field, f"must be exactly 32 bytes, got {len(value)}")
    return value


def check_timelocks(field: str, t: common_pb2.Timelocks) -> None:
    """withdrawal <= public_withdrawal < cancellation <= public_cancellation (seconds after the lock)."""
    if not t.cancellation_after_s:
        raise InvalidArgument(f"{field}.cancellation_after_s", "required and must be greater than zero")
    if t.withdrawal_after_s > t.public_withdrawal_after_s:
        raise InvalidArgument(f"{field}.public_withdrawal_after_s", "must not be earlier than withdrawal_after_s")
    if t.public_withdrawal_after_s >= t.cancellation_after_s:
        raise InvalidArgument(f"{field}.cancellation_after_s", "must be later than public_withdrawal_after_s")
    if t.cancellation_after_s > t.public_cancellation_after_s:
        raise InvalidArgument(f"{field}.public_cancellation_after_s", "must not be earlier than cancellation_after_s")
