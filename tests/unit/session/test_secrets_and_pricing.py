from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.exceptions import InvalidTag
from session.saga import auction_amount, dst_salt
from session.secrets import SecretBox, new_secret
from session.service import dst_terms_hash


def test_secret_is_random_and_hashlock_is_sha256() -> None:
    secret, hashlock = new_secret()
    other, _ = new_secret()
    assert len(secret) == 32 and secret != other
    assert hashlock == hashlib.sha256(secret).digest()


def test_sealed_secret_opens_only_for_its_session() -> None:
    box = SecretBox(os.urandom(32))
    secret, _ = new_secret()
    token = box.seal("session-a", secret)
    assert secret.hex() not in token
    assert box.open("session-a", token) == secret
    with pytest.raises(InvalidTag):
        box.open("session-b", token)
    with pytest.raises(InvalidTag):
        SecretBox(os.urandom(32)).open("session-a", token)
    with pytest.raises(ValueError, match="32 bytes"):
        SecretBox(b"short")


def test_auction_decays_linearly_and_stops_at_the_end() -> None:
    assert auction_amount(1000, 100, 2000, 1000, 900) == 2000
    assert auction_amount(1000, 100, 2000, 1000, 1000) == 2000
    assert auction_amount(1000, 100, 2000, 1000, 1050) == 1500
    assert auction_amount(1000, 100, 2000, 1000, 1100) == 1000
    assert auction_amount(1000, 100, 2000, 1000, 5000) == 1000


def test_derived_values_are_deterministic() -> None:
    assert dst_salt("abc") == dst_salt("abc") != dst_salt("abd")
    assert len(dst_salt("abc")) <= 64
    h = dst_terms_hash("near", "native", "10", "bob.test.near", "00" * 32)
    assert len(h) == 32 and h != dst_terms_hash("near", "native", "11", "bob.test.near", "00" * 32)
