"""swapctl's side of secret mode maker: the secret file, and the check of the destination lock that decides
whether the secret may go. Any term of the lock that differs from what the maker asked for keeps it."""

from __future__ import annotations

import hashlib
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st
from swapctl.secrets import SecretStore
from swapctl.verify import GET_ESCROW, DestinationLock, _escrow, problems

RECEIVER = "receiver.test.near"
TOKEN = "token.test.near"
PLAN = {
    "withdrawal_after_s": 1,
    "public_withdrawal_after_s": 40,
    "cancellation_after_s": 80,
    "public_cancellation_after_s": 100,
}
SESSION = {"quote": {"min_received": "990", "timelocks": {"dst": PLAN}}}


def held(tmp_path: Path):  # type: ignore[no-untyped-def]
    return SecretStore(tmp_path).draw(receiver=RECEIVER, dst_chain="near", dst_token=TOKEN)


def good_lock(hashlock: str) -> DestinationLock:
    return DestinationLock(
        state="active",
        hashlock=hashlock,
        token=TOKEN,
        amount=1000,
        beneficiary=RECEIVER,
        timelocks=(1, 40, 80, 100),
        withdrawal_at=1_001,
        cancellation_at=1_080,
        final=True,
        chain_now=1_005,
    )


def test_a_matching_lock_lets_the_secret_go(tmp_path: Path) -> None:
    h = held(tmp_path)
    assert problems(good_lock(h.hashlock), SESSION, h) == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"state": "cancelled"}, "cancelled"),
        ({"hashlock": "00" * 32}, "hashlock"),
        ({"beneficiary": "thief.test.near"}, "thief.test.near"),
        ({"token": "other.test.near"}, "other.test.near"),
        ({"amount": 989}, "minimum"),
        ({"timelocks": (1, 40, 30, 100)}, "timelocks"),
        ({"final": False}, "not final"),
        ({"chain_now": 1_070}, "10 s are left"),
    ],
)
def test_each_wrong_term_keeps_the_secret(tmp_path: Path, change: dict[str, object], says: str) -> None:
    h = held(tmp_path)
    found = problems(replace(good_lock(h.hashlock), **change), SESSION, h)  # type: ignore[arg-type]
    assert found and says in " ".join(found), found


@given(amount=st.integers(min_value=0, max_value=10**30), left=st.integers(min_value=-1000, max_value=1000))
def test_amount_and_time_left_are_bounds(amount: int, left: int) -> None:
    hashlock = "ab" * 32
    h = type("H", (), {"hashlock": hashlock, "receiver": RECEIVER, "dst_token": TOKEN, "dst_chain": "near"})()
    lock = replace(good_lock(hashlock), amount=amount, chain_now=1_080 - left)
    found = problems(lock, SESSION, h, min_time_left_s=20)
    assert (found == []) == (amount >= 990 and left >= 20)


def test_base_tokens_and_receivers_compare_as_addresses(tmp_path: Path) -> None:
    h = SecretStore(tmp_path).draw(receiver="0xAbCd" + "0" * 36, dst_chain="base", dst_token="native")
    lock = replace(good_lock(h.hashlock), token="0x" + "0" * 40, beneficiary="0xabcd" + "0" * 36)
    assert problems(lock, SESSION, h) == []


def test_the_secret_file_is_private_and_survives_a_restart(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    h = store.draw(receiver=RECEIVER, dst_chain="near", dst_token=TOKEN)
    assert hashlib.sha256(bytes.fromhex(h.secret)).hexdigest() == h.hashlock
    path = store.dir / f"{h.hashlock}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    h.session_id = "s-1"
    store.save(h)
    again = SecretStore(tmp_path).find("s-1")
    assert again is not None and again.secret == h.secret
    assert SecretStore(tmp_path).find(hashlock="0x" + h.hashlock) is not None
    store.forget(h)
    assert SecretStore(tmp_path).find("s-1") is None and not path.exists()


def test_a_tampered_secret_file_is_not_used(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    h = store.draw(receiver=RECEIVER, dst_chain="near", dst_token=TOKEN)
    path = store.dir / f"{h.hashlock}.json"
    path.write_text(path.read_text().replace(h.secret, "00" * 32))
    assert store.find(hashlock=h.hashlock) is None


def test_escrow_reply_decoding_matches_the_contract_abi() -> None:
    assert "0x" + keccak(text="getEscrow(bytes32)")[:4].hex() == GET_ESCROW
    depositor, beneficiary, operator, token = (f"0x{n:040x}" for n in (1, 2, 3, 0))
    raw = encode(
        ["(address,address,address,address,uint256,uint256,bytes32,(uint32,uint32,uint32,uint32),uint64,uint8)"],
        [(depositor, beneficiary, operator, token, 1000, 7, b"\xab" * 32, (1, 40, 80, 100), 12345, 1)],
    )
    decoded = _escrow("0x" + raw.hex())
    assert decoded is not None
    words, state = decoded
    assert state == "active" and words[4] == 1000 and words[6] == int("ab" * 32, 16)
    assert words[7:12] == [1, 40, 80, 100, 12345]
    absent = encode(
        ["(address,address,address,address,uint256,uint256,bytes32,(uint32,uint32,uint32,uint32),uint64,uint8)"],
        [(token, token, token, token, 0, 0, b"\x00" * 32, (0, 0, 0, 0), 0, 0)],
    )
    assert _escrow("0x" + absent.hex()) is None
