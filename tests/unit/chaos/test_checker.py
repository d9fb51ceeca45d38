"""The chaos checker on histories made by hand: it passes a history whose every unit is explained and names
each way a history can lose or double money."""

from __future__ import annotations

import base64
import json
from typing import Any

from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2
from swap_devnet.chaos.checker import NEAR_TOMBSTONE_FEE, check, near_native_costs, sent_twice
from web3 import Web3

St = session_pb2.SessionState
MAKER, RESOLVER_B = "0x" + "aa" * 20, "0x" + "bb" * 20
RECEIVER, RESOLVER_N = "alice.test.near", "resolver.test.near"
RESOLVERS = {"base": RESOLVER_B, "near": RESOLVER_N}
LOCK = "11" * 32


def session(state: int, sid: str = "s1", src_amount: int = 10, dst_amount: int = 9) -> session_pb2.Session:
    return session_pb2.Session(
        session_id=sid,
        state=state,  # type: ignore[arg-type]
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token="0x" + "cc" * 20),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token="token.test.near"),
        src_amount=str(src_amount),
        dst_amount=str(dst_amount),
        maker=MAKER,
        receiver=RECEIVER,
        src_lock_id=LOCK,
        dst_lock_id=LOCK,
    )


def books(
    maker: int, resolver_b: int, receiver: int, resolver_n: int, locks_ended: int = 1
) -> dict[str, dict[str, dict[str, int]]]:
    """Balances; the resolver's NEAR is less the tombstone fee of each NEAR lock of its that ended."""
    resolver_native = 10**24 - locks_ended * NEAR_TOMBSTONE_FEE
    return {
        "base": {MAKER: {"token": maker, "native": 10**18}, RESOLVER_B: {"token": resolver_b, "native": 10**18}},
        "near": {
            RECEIVER: {"token": receiver, "native": 10**24},
            RESOLVER_N: {"token": resolver_n, "native": resolver_native},
        },
    }


BEFORE = books(100, 1000, 0, 1000, locks_ended=0)
ENDED_NOTHING_MOVED = books(100, 1000, 0, 1000)
WITHDRAWN = {"s1": {"source": "withdrawn", "destination": "withdrawn"}}
CANCELLED = {"s1": {"source": "cancelled", "destination": "cancelled"}}


def kinds(found: list[Any]) -> list[str]:
    return [v.kind for v in found]


def test_a_completed_swap_that_moved_exactly_its_amounts_passes() -> None:
    after = books(90, 1010, 9, 991)
    assert check([session(St.SESSION_STATE_COMPLETED)], BEFORE, after, [], [], WITHDRAWN, RESOLVERS) == []


def test_a_refunded_swap_that_moved_nothing_passes() -> None:
    assert check([session(St.SESSION_STATE_REFUNDED)], BEFORE, ENDED_NOTHING_MOVED, [], [], CANCELLED, RESOLVERS) == []


def test_the_htlc_keeps_a_tombstone_fee_per_ended_near_lock() -> None:
    """The resolver's NEAR lock ended: the HTLC keeps its tombstone fee, no more and no less."""
    unexplained = check([session(St.SESSION_STATE_REFUNDED)], BEFORE, BEFORE, [], [], CANCELLED, RESOLVERS)
    assert kinds(unexplained) == ["native_balance"]
    assert f"unexplained {NEAR_TOMBSTONE_FEE}" in unexplained[0].detail


def test_a_receiver_short_by_one_unit_is_named() -> None:
    after = books(90, 1010, 8, 992)
    found = check([session(St.SESSION_STATE_COMPLETED)], BEFORE, after, [], [], WITHDRAWN, RESOLVERS)
    assert kinds(found) == ["token_balance", "token_balance"]
    assert "alice.test.near: 8 where the sessions explain 9 (unexplained -1)" in found[0].detail
    assert found[0].sessions == ["s1"]


def test_money_moved_by_a_refunded_swap_is_a_violation() -> None:
    after = books(90, 1010, 0, 1000)
    found = check([session(St.SESSION_STATE_REFUNDED)], BEFORE, after, [], [], CANCELLED, RESOLVERS)
    assert kinds(found) == ["token_balance", "token_balance"]


def test_a_refunded_swap_whose_lock_was_withdrawn_leaked_its_secret() -> None:
    locks = {"s1": {"source": "cancelled", "destination": "withdrawn"}}
    found = check([session(St.SESSION_STATE_REFUNDED)], BEFORE, ENDED_NOTHING_MOVED, [], [], locks, RESOLVERS)
    assert kinds(found) == ["lock_state"]
    assert "the secret reached a chain" in found[0].detail


def test_a_lock_left_active_and_a_session_left_open_are_violations() -> None:
    locks = {"s1": {"source": "active"}}
    found = check([session(St.SESSION_STATE_REFUNDING)], BEFORE, BEFORE, [], [], locks, RESOLVERS)
    assert kinds(found) == ["not_ended", "lock_left_active"]


def test_base_native_must_be_explained_by_fees() -> None:
    tx = {"hash": "0x1", "from": RESOLVER_B, "to": "", "input": "0x", "value": 0, "fee": 21_000, "status": 1}
    after = books(100, 1000, 0, 1000, locks_ended=0)
    after["base"][RESOLVER_B]["native"] -= 21_000
    assert check([], BEFORE, after, [tx], [], {}, RESOLVERS) == []
    after["base"][RESOLVER_B]["native"] -= 1
    found = check([], BEFORE, after, [tx], [], {}, RESOLVERS)
    assert kinds(found) == ["native_balance"]
    assert "unexplained -1" in found[0].detail


def near_call(signer: str, method: str, args: dict[str, Any], deposit: int, burnt: list[int], failed: bool) -> Any:
    status: dict[str, Any] = {"Failure": {}} if failed else {"SuccessValue": ""}
    return {
        "tx": {
            "signer_id": signer,
            "hash": "h",
            "actions": [
                {
                    "FunctionCall": {
                        "method_name": method,
                        "args": base64.b64encode(json.dumps(args).encode()).decode(),
                        "gas": 1,
                        "deposit": str(deposit),
                    }
                }
            ],
        },
        "status": {
            "transaction_outcome": {"outcome": {"tokens_burnt": str(burnt[0])}},
            "receipts_outcome": [{"outcome": {"tokens_burnt": str(b), "status": status}} for b in burnt[1:]],
        },
    }


def test_near_costs_are_burnt_tokens_and_kept_deposits() -> None:
    kept = near_call(RECEIVER, "ft_transfer_call", {}, 1, [5, 7, 11], failed=False)
    refunded = near_call(RECEIVER, "ft_transfer_call", {}, 1, [5, 7], failed=True)
    assert near_native_costs([kept, refunded]) == {RECEIVER: 5 + 7 + 11 + 1 + 5 + 7}


def test_a_withdrawal_sent_twice_is_named_on_both_chains() -> None:
    selector = Web3.keccak(text="withdraw(bytes32,bytes32)")[:4].hex()
    data = "0x" + selector + LOCK + "22" * 32
    base = [
        {"hash": f"0x{i}", "from": RESOLVER_B, "to": "", "input": data, "value": 0, "fee": 0, "status": 1}
        for i in range(2)
    ]
    near = [near_call(RESOLVER_N, "withdraw", {"lock_id": LOCK, "secret": "00"}, 0, [1, 1], False) for _ in range(2)]
    found = sent_twice(base, near, RESOLVERS)
    assert sorted(v.detail for v in found) == [
        f"base withdraw of lock {LOCK} sent in 2 transactions",
        f"near withdraw of lock {LOCK} sent in 2 transactions",
    ]
    assert sent_twice(base[:1], near[:1], RESOLVERS) == []
