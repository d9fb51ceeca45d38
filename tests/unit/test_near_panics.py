"""chain-near's reading of HTLC panics: each panic the contract raises (the Rust HTLC's messages included)
becomes the reason chain-base gives for the same situation, the field when the caller's input is at fault,
and never carries the secret."""

from __future__ import annotations

import pytest
from chain_near.model import Lock, State, Timelocks
from chain_near.panics import to_domain_error
from swap_runtime.errors import InvalidArgument, NotFound

S = 10**9


@pytest.mark.parametrize(
    ("panic", "reason", "field"),
    [
        ("too early: opens at 1796060124000000000", "WINDOW_NOT_OPEN", None),
        ("too late: closed at 1796060124000000000", "WINDOW_CLOSED", None),
        ("only the operator can refund until 1796060124000000000", "NOT_OPERATOR", None),
        ("lock is not active", "LOCK_NOT_ACTIVE", None),
        ("lock already exists", "LOCK_EXISTS", None),
        ("lock not found", "LOCK_NOT_FOUND", None),
        ("invalid secret", "INVALID_ARGUMENT", "secret"),
        ("amount must be positive", "INVALID_ARGUMENT", "terms.amount"),
        ("amount below the minimum lock amount: 1000000000000000000000", "INVALID_ARGUMENT", "terms.amount"),
        (
            "insufficient native balance for the safety deposit and the storage fee: 1 < 2 + 3",
            "INSUFFICIENT_BALANCE",
            None,
        ),
        ("something else entirely", "REVERTED", None),
    ],
)
def test_each_panic_has_its_reason(panic: str, reason: str, field: str | None) -> None:
    error = to_domain_error(f"Smart contract panicked: {panic}", "refund")
    assert error.reason == reason
    if field is not None:
        assert isinstance(error, InvalidArgument) and error.metadata["field"] == field
    if reason == "LOCK_NOT_FOUND":
        assert isinstance(error, NotFound)


def test_a_window_panic_is_reported_in_unix_seconds_and_hides_the_secret() -> None:
    secret = bytes(range(32))
    error = to_domain_error(
        f"Smart contract panicked: too early: opens at 1796060124000000000 {secret.hex()}", "withdraw", hide=secret
    )
    assert "at unix time 1796060124" in str(error)
    assert secret.hex() not in str(error) and secret.hex() not in str(error.metadata)


def lock(operator: str = "resolver.test.near") -> Lock:
    return Lock(
        lock_id="ab" * 32,
        state=State.ACTIVE,
        depositor="maker.test.near",
        operator=operator,
        beneficiary="receiver.test.near",
        token="native",
        amount=1,
        safety_deposit=0,
        hashlock=bytes(32),
        timelocks=Timelocks.from_seconds(10, 20, 100, 200),
        locked_at=1_000 * S,
        locked_height=1,
        secret=None,
    )


@pytest.mark.parametrize(
    ("action", "caller", "now_s", "expected"),
    [
        ("withdraw", "resolver.test.near", 1_009, "too early: opens at 1010000000000"),
        ("withdraw", "resolver.test.near", 1_010, None),
        ("withdraw", "resolver.test.near", 1_100, "too late: closed at 1100000000000"),
        ("withdraw", "someone.test.near", 1_015, "only the operator can withdraw until 1020000000000"),
        ("withdraw", "someone.test.near", 1_005, "too early: opens at 1020000000000"),
        ("withdraw", "someone.test.near", 1_020, None),
        ("refund", "resolver.test.near", 1_099, "too early: opens at 1100000000000"),
        ("refund", "resolver.test.near", 1_100, None),
        ("refund", "someone.test.near", 1_150, "only the operator can refund until 1200000000000"),
        ("refund", "someone.test.near", 1_200, None),
    ],
)
def test_the_window_check_before_sending_matches_the_htlc(
    action: str, caller: str, now_s: int, expected: str | None
) -> None:
    assert lock().window_panic(action, caller, now_s * S) == expected
