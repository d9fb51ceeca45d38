"""The NEAR HTLC on the devnet, driven with py-near: native and NEP-141 locks, withdrawals with the secret,
refunds after the cancellation window, the windows' edges and the event log chain-near follows."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from swap_devnet.near import KeyPair, NearDevnetProcess, lock_id_for

from tests.integration.near_devnet.conftest import (
    NEAR,
    NS,
    TGAS,
    AccountFactory,
    burnt,
    htlc_events,
    lock_terms,
    new_secret,
    panic_of,
    success_json,
    timelocks,
)

pytestmark = pytest.mark.integration

SAFETY = NEAR // 10


async def test_lock_native_moves_deposit(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    depositor = await near_devnet.acreate_account("depositor")
    signer = await near_account(depositor)
    htlc_id = near_devnet.htlc.account_id
    _, hashlock = new_secret()
    terms = lock_terms(near_devnet.receiver.account_id, hashlock, safety_deposit=str(SAFETY))
    before, htlc_before = await near_devnet.abalance(depositor.account_id), await near_devnet.abalance(htlc_id)

    result = await signer.function_call(htlc_id, "lock_native", terms, amount=5 * NEAR + SAFETY)

    lock_id = success_json(result)
    assert lock_id == lock_id_for(depositor.account_id, terms["nonce"])
    assert await near_devnet.abalance(depositor.account_id) == before - 5 * NEAR - SAFETY - burnt(result)
    assert await near_devnet.abalance(htlc_id) == htlc_before + 5 * NEAR + SAFETY
    lock = await near_devnet.aview(htlc_id, "get_lock", {"lock_id": lock_id})
    assert lock["depositor"] == lock["operator"] == depositor.account_id
    assert (lock["token"], lock["amount"], lock["safety_deposit"]) == ("native", str(5 * NEAR), str(SAFETY))
    assert (lock["state"], lock["secret"], lock["timelocks"]) == ("active", None, terms["timelocks"])
    [event] = htlc_events(result)
    assert event["event"] == "lock_created"
    assert event["data"] == [lock]

    again = await signer.function_call(htlc_id, "lock_native", terms, amount=NEAR)
    assert panic_of(again) == "Smart contract panicked: lock already exists"
    bad = await signer.function_call(
        htlc_id, "lock_native", {**terms, "nonce": "other", "timelocks": timelocks(cancellation=10)}, amount=NEAR
    )
    assert panic_of(bad) == "Smart contract panicked: invalid timelocks"


async def test_lock_tokens_with_ft_transfer_call(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    maker = await near_account(near_devnet.maker)
    token_id, htlc_id, maker_id = (
        near_devnet.token.account_id,
        near_devnet.htlc.account_id,
        near_devnet.maker.account_id,
    )
    deposit = await maker.function_call(htlc_id, "deposit_native", {}, amount=SAFETY)
    prepaid = int(success_json(deposit))
    _, hashlock = new_secret()
    terms = lock_terms(
        near_devnet.receiver.account_id, hashlock, operator=near_devnet.resolver.account_id, safety_deposit=str(SAFETY)
    )
    maker_before = await near_devnet.atoken_balance(maker_id)
    htlc_before = await near_devnet.atoken_balance(htlc_id)

    result = await maker.function_call(
        token_id,
        "ft_transfer_call",
        {"receiver_id": htlc_id, "amount": "250000000", "msg": json.dumps(terms)},
        amount=1,
    )

    assert success_json(result) == "250000000"  # ft_resolve_transfer: all of it was used
    assert await near_devnet.atoken_balance(maker_id) == maker_before - 250_000_000
    assert await near_devnet.atoken_balance(htlc_id) == htlc_before + 250_000_000
    lock = await near_devnet.aview(htlc_id, "get_lock", {"lock_id": lock_id_for(maker_id, terms["nonce"])})
    assert (lock["token"], lock["amount"], lock["operator"]) == (token_id, "250000000", near_devnet.resolver.account_id)
    native_left = await near_devnet.aview(htlc_id, "native_balance_of", {"account_id": maker_id})
    assert int(native_left) == prepaid - SAFETY


async def test_failed_ft_on_transfer_refunds_sender(
    near_devnet: NearDevnetProcess, near_account: AccountFactory
) -> None:
    resolver = await near_account(near_devnet.resolver)
    token_id, htlc_id = near_devnet.token.account_id, near_devnet.htlc.account_id
    resolver_id = near_devnet.resolver.account_id
    before = await near_devnet.atoken_balance(resolver_id)
    htlc_before = await near_devnet.atoken_balance(htlc_id)

    result = await resolver.function_call(
        token_id, "ft_transfer_call", {"receiver_id": htlc_id, "amount": "1000", "msg": "not the terms"}, amount=1
    )

    assert success_json(result) == "0"  # nothing used: the whole amount went back
    assert panic_of(result) == "Smart contract panicked: invalid msg: expected the lock terms as JSON"
    assert await near_devnet.atoken_balance(resolver_id) == before
    assert await near_devnet.atoken_balance(htlc_id) == htlc_before
    refund = [line for outcome in result.receipt_outcome for line in outcome.logs if '"memo":"refund"' in line]
    assert len(refund) == 1


async def test_withdraw_with_the_secret(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    depositor = await near_devnet.acreate_account("dep")
    beneficiary = await near_devnet.acreate_account("ben", balance=NEAR)
    operator_account = await near_devnet.acreate_account("op")
    depositor_signer, operator = await near_account(depositor), await near_account(operator_account)
    htlc_id = near_devnet.htlc.account_id
    secret, hashlock = new_secret()
    terms = lock_terms(
        beneficiary.account_id, hashlock, operator=operator_account.account_id, safety_deposit=str(SAFETY)
    )
    lock_id = success_json(
        await depositor_signer.function_call(htlc_id, "lock_native", terms, amount=2 * NEAR + SAFETY)
    )

    wrong = await operator.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": "00" * 32})
    assert panic_of(wrong) == "Smart contract panicked: invalid secret"
    operator_before = await near_devnet.abalance(operator_account.account_id)

    result = await operator.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": secret})

    assert success_json(result) is True
    assert await near_devnet.abalance(beneficiary.account_id) == NEAR + 2 * NEAR
    assert await near_devnet.abalance(operator_account.account_id) == operator_before + SAFETY - burnt(result)
    lock = await near_devnet.aview(htlc_id, "get_lock", {"lock_id": lock_id})
    assert (lock["state"], lock["secret"]) == ("withdrawn", secret)
    [event] = htlc_events(result)
    assert event["event"] == "lock_withdrawn"
    assert event["data"][0]["secret"] == secret
    assert event["data"][0]["caller"] == operator_account.account_id

    again = await operator.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": secret})
    assert panic_of(again) == "Smart contract panicked: lock is not active"
    missing = await operator.function_call(htlc_id, "refund", {"lock_id": "ab" * 32})
    assert panic_of(missing) == "Smart contract panicked: lock not found"


async def test_token_withdraw_to_unregistered_beneficiary_restores_the_lock(
    near_devnet: NearDevnetProcess, near_account: AccountFactory
) -> None:
    resolver = await near_account(near_devnet.resolver)
    token_id, htlc_id = near_devnet.token.account_id, near_devnet.htlc.account_id
    unregistered = await near_devnet.acreate_account("unreg", balance=NEAR)
    secret, hashlock = new_secret()
    terms = lock_terms(unregistered.account_id, hashlock)
    await resolver.function_call(
        token_id, "ft_transfer_call", {"receiver_id": htlc_id, "amount": "777", "msg": json.dumps(terms)}, amount=1
    )
    lock_id = lock_id_for(near_devnet.resolver.account_id, terms["nonce"])
    htlc_tokens = await near_devnet.atoken_balance(htlc_id)

    result = await resolver.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": secret})

    assert success_json(result) is False
    assert "is not registered" in panic_of(result)
    lock = await near_devnet.aview(htlc_id, "get_lock", {"lock_id": lock_id})
    assert (lock["state"], lock["secret"]) == ("active", None)
    assert await near_devnet.atoken_balance(htlc_id) == htlc_tokens
    assert htlc_events(result) == []


async def test_windows_and_refund_after_fast_forward(
    near_devnet: NearDevnetProcess, near_account: AccountFactory
) -> None:
    depositor_account = await near_devnet.acreate_account("refund-dep")
    stranger_account = await near_devnet.acreate_account("stranger")
    depositor, stranger = await near_account(depositor_account), await near_account(stranger_account)
    htlc_id = near_devnet.htlc.account_id
    secret, hashlock = new_secret()
    terms = lock_terms(
        near_devnet.receiver.account_id,
        hashlock,
        safety_deposit=str(SAFETY),
        timelocks=timelocks(withdrawal=10, public_withdrawal=20, cancellation=40, public_cancellation=60),
    )
    created = await depositor.function_call(htlc_id, "lock_native", terms, amount=3 * NEAR + SAFETY)
    lock_id = success_json(created)
    locked_at = int((await near_devnet.aview(htlc_id, "get_lock", {"lock_id": lock_id}))["locked_at"])

    async def attempt(signer: object, method: str, **args: str) -> str:
        result = await signer.function_call(htlc_id, method, {"lock_id": lock_id, **args})  # type: ignore[attr-defined]
        return panic_of(result).removeprefix("Smart contract panicked: ")

    assert await attempt(depositor, "withdraw", secret=secret) == f"too early: opens at {locked_at + 10 * NS}"
    assert await attempt(stranger, "withdraw", secret=secret) == f"too early: opens at {locked_at + 20 * NS}"
    await near_devnet.afast_forward(delta_seconds=12)
    assert await attempt(stranger, "withdraw", secret=secret) == (
        f"only the operator can withdraw until {locked_at + 20 * NS}"
    )
    assert await attempt(depositor, "refund") == f"too early: opens at {locked_at + 40 * NS}"
    await near_devnet.afast_forward(delta_height=30)  # 30 blocks of 1 s: past the cancellation
    assert await attempt(depositor, "withdraw", secret=secret) == f"too late: closed at {locked_at + 40 * NS}"
    assert await attempt(stranger, "refund") == f"only the operator can refund until {locked_at + 60 * NS}"
    await near_devnet.afast_forward(delta_seconds=20)

    before = await near_devnet.abalance(depositor_account.account_id)
    stranger_before = await near_devnet.abalance(stranger_account.account_id)
    result = await stranger.function_call(htlc_id, "refund", {"lock_id": lock_id})
    assert success_json(result) is True
    assert await near_devnet.abalance(depositor_account.account_id) == before + 3 * NEAR
    assert await near_devnet.abalance(stranger_account.account_id) == stranger_before + SAFETY - burnt(result)
    lock = await near_devnet.aview(htlc_id, "get_lock", {"lock_id": lock_id})
    assert lock["state"] == "refunded"
    [event] = htlc_events(result)
    assert (event["event"], event["data"][0]["caller"]) == ("lock_refunded", stranger_account.account_id)


async def test_event_log_order(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    htlc_id = near_devnet.htlc.account_id
    account = await near_devnet.acreate_account("events")
    signer = await near_account(account)
    start = await near_devnet.aview(htlc_id, "events_count")
    secret_a, hashlock_a = new_secret()
    _, hashlock_b = new_secret()
    terms_a = lock_terms(near_devnet.receiver.account_id, hashlock_a)
    terms_b = lock_terms(near_devnet.receiver.account_id, hashlock_b)
    lock_a = success_json(await signer.function_call(htlc_id, "lock_native", terms_a, amount=NEAR))
    lock_b = success_json(await signer.function_call(htlc_id, "lock_native", terms_b, amount=NEAR))
    await signer.function_call(htlc_id, "withdraw", {"lock_id": lock_a, "secret": secret_a})

    events = await near_devnet.aview(htlc_id, "get_events", {"from_index": start, "limit": 100})
    mine = [event for event in events if event["data"]["lock_id"] in (lock_a, lock_b)]
    assert [(event["event"], event["data"]["lock_id"]) for event in mine] == [
        ("lock_created", lock_a),
        ("lock_created", lock_b),
        ("lock_withdrawn", lock_a),
    ]
    indices = [event["index"] for event in events]
    assert indices == list(range(start, start + len(events)))
    heights = [event["block_height"] for event in mine]
    assert heights == sorted(heights)
    assert mine[2]["data"]["secret"] == secret_a
    assert int(mine[0]["block_timestamp"]) <= int(mine[2]["block_timestamp"])
    assert await near_devnet.aview(htlc_id, "events_count") >= start + 3
    active = {lock["lock_id"] for lock in await near_devnet.aview(htlc_id, "list_active", {"limit": 1000})}
    assert lock_b in active and lock_a not in active
    paged = await near_devnet.aview(htlc_id, "get_events", {"from_index": start + 1, "limit": 1})
    assert [event["index"] for event in paged] == [start + 1]


async def test_concurrent_calls_from_several_keys(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    keys = [KeyPair.generate() for _ in range(5)]
    account = await near_devnet.acreate_account("busy", keys=keys)
    signer = await near_account(account, [key.secret_key_text for key in keys])
    htlc_id = near_devnet.htlc.account_id
    results = await asyncio.gather(
        *(signer.function_call(htlc_id, "deposit_native", {}, gas=30 * TGAS, amount=1) for _ in range(50))
    )

    assert all("SuccessValue" in result.status for result in results)
    assert len({result.transaction.hash for result in results}) == 50
    used = {(result.transaction.public_key, result.transaction.nonce) for result in results}
    assert len(used) == 50
    assert {public_key for public_key, _ in used} == {key.public_key_text for key in keys}
    assert await near_devnet.aview(htlc_id, "native_balance_of", {"account_id": account.account_id}) == "50"


def test_sync_controls(near_devnet: NearDevnetProcess) -> None:
    account = near_devnet.create_account("sync", balance=7 * NEAR)
    assert near_devnet.balance(account.account_id) == 7 * NEAR
    before = near_devnet.block()["header"]
    near_devnet.fast_forward(delta_seconds=3600)
    after = near_devnet.block()["header"]
    assert after["timestamp"] - before["timestamp"] >= 3600 * NS
    assert near_devnet.view(near_devnet.htlc.account_id, "lock_id_for", {"depositor": "a.near", "nonce": "x"}) == (
        lock_id_for("a.near", "x")
    )
    assert secrets.compare_digest(near_devnet.root.account_id, "test.near")
