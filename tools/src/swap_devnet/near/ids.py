"""NEAR account id rules, and the swap HTLC's lock ids."""

from __future__ import annotations

import hashlib
import re

_ACCOUNT_ID = re.compile(r"^(([a-z\d]+[-_])*[a-z\d]+\.)*([a-z\d]+[-_])*[a-z\d]+$")
_IMPLICIT = re.compile(r"^[0-9a-f]{64}$")
MIN_ACCOUNT_ID_LEN = 2
MAX_ACCOUNT_ID_LEN = 64
# Top-level names shorter than this are reserved for the registrar (nearcore's MIN_ALLOWED_TOP_LEVEL_ACCOUNT_LENGTH).
MIN_OPEN_TOP_LEVEL_LEN = 32


def is_valid_account_id(account_id: str) -> bool:
    return MIN_ACCOUNT_ID_LEN <= len(account_id) <= MAX_ACCOUNT_ID_LEN and _ACCOUNT_ID.fullmatch(account_id) is not None


def is_implicit(account_id: str) -> bool:
    """A 64-hex-character id: the account of an ed25519 key, created by the first transfer to it."""
    return _IMPLICIT.fullmatch(account_id) is not None


def is_sub_account(parent: str, account_id: str) -> bool:
    """`account_id` is a direct sub-account of `parent` (alice.near of near, not a.alice.near)."""
    prefix, dot, rest = account_id.partition(".")
    return bool(dot) and bool(prefix) and rest == parent


def is_top_level(account_id: str) -> bool:
    return "." not in account_id


def lock_id_for(depositor: str, nonce: str) -> str:
    """The swap HTLC's id of the lock `depositor` made with `nonce`: hex(sha256("<depositor>:<nonce>")), what its
    `lock_id_for` view answers (contracts/near/swap-htlc)."""
    return hashlib.sha256(f"{depositor}:{nonce}".encode()).hexdigest()
