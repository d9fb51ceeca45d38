"""chain-near's decoder of the HTLC's storage records (the layouts of contracts/near/README.md)."""

from __future__ import annotations

import struct

import pytest
from chain_near.records import CorruptRecord, decode_lock, decode_tombstone
from hypothesis import given
from hypothesis import strategies as st

LOCK_ID = bytes(range(32))
account = st.from_regex(r"[a-z0-9]{2,20}\.test\.near", fullmatch=True)
u64 = st.integers(0, 2**64 - 1)
u128 = st.integers(0, 2**128 - 1)


def record(state: int, amount: int, safety: int, times: list[int], secret: bytes | None, names: list[str]) -> bytes:
    out = struct.pack("<BBQ", 1, state, 7) + amount.to_bytes(16, "little") + safety.to_bytes(16, "little")
    out += bytes([0xAB]) * 32 + struct.pack("<6Q", *times)
    out += bytes([1]) + secret if secret else bytes(33)
    for name in names:
        out += bytes([len(name)]) + name.encode()
    return out


@given(
    state=st.integers(0, 2),
    amount=u128,
    safety=u128,
    times=st.lists(u64, min_size=6, max_size=6),
    secret=st.none() | st.binary(min_size=32, max_size=32),
    names=st.lists(account, min_size=3, max_size=3),
    token=st.just("") | account,
)
def test_a_record_decodes_to_the_get_lock_view(
    state: int, amount: int, safety: int, times: list[int], secret: bytes | None, names: list[str], token: str
) -> None:
    view = decode_lock(LOCK_ID, record(state, amount, safety, times, secret, [*names, token]))
    assert view == {
        "lock_id": LOCK_ID.hex(),
        "depositor": names[0],
        "operator": names[1],
        "beneficiary": names[2],
        "token": token or "native",
        "amount": str(amount),
        "safety_deposit": str(safety),
        "hashlock": "ab" * 32,
        "timelocks": {
            "withdrawal": str(times[0]),
            "public_withdrawal": str(times[1]),
            "cancellation": str(times[2]),
            "public_cancellation": str(times[3]),
        },
        "locked_at": str(times[4]),
        "locked_height": times[5],
        "state": ("active", "withdrawn", "refunded")[state],
        "secret": secret.hex() if secret else None,
    }


def test_tombstones_carry_state_height_and_secret() -> None:
    withdrawn = decode_tombstone(bytes([1]) + (1234).to_bytes(8, "little") + bytes([0xCD]) * 32)
    assert (withdrawn.state, withdrawn.locked_height, withdrawn.secret) == ("withdrawn", 1234, "cd" * 32)
    refunded = decode_tombstone(bytes([2]) + (99).to_bytes(8, "little"))
    assert (refunded.state, refunded.locked_height, refunded.secret) == ("refunded", 99, None)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        record(0, 1, 0, [0] * 6, None, ["a.near", "b.near", "c.near", ""])[:-3],  # cut short
        bytes([2]) + record(0, 1, 0, [0] * 6, None, ["a.near", "b.near", "c.near", ""])[1:],  # another format
        record(5, 1, 0, [0] * 6, None, ["a.near", "b.near", "c.near", ""]),  # no such state
    ],
    ids=["empty", "short", "format", "state"],
)
def test_what_is_not_a_record_is_refused(value: bytes) -> None:
    with pytest.raises(CorruptRecord):
        decode_lock(LOCK_ID, value)
    with pytest.raises(CorruptRecord):
        decode_tombstone(value[:5])
