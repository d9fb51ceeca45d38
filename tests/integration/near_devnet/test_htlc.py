"""The swap HTLC on the devnet: the wasm built from contracts/near/swap-htlc (which the bootstrap deploys as
htlc.test.near, next to the test token), driven with py-near through the RPC as on a real network. Native and
NEP-141 locks paying the per-lock storage fee, withdrawals with the secret and refunds after the cancellation
window paying out and handing the fee back less the tombstone's, the windows' edges, a failed payout restoring
the lock, ended locks answering with their tombstone, NEP-297 events in the receipts that made them, the active
index, and withdrawals that cost the same gas with hundreds of locks in the contract."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from py_near.account import Account
from swap_devnet.artifacts import near_wasm
from swap_devnet.near import DevnetError, NearDevnetProcess, lock_id_for
from swap_devnet.near.bootstrap import STORAGE_BALANCE_MIN

from tests.integration.near_devnet.conftest import (
    NEAR,
    NS,
    AccountFactory,
    burnt,
    event_block_height,
    htlc_events,
    lock_terms,
    new_secret,
    panic_of,
    success_json,
    timelocks,
)

pytestmark = pytest.mark.integration

FEE = 10**22  # the HTLC's storage_fee(): paid with every lock
TOMBSTONE_FEE = 12 * 10**20  # kept when a lock ends, for its tombstone
SAFETY = NEAR // 10
MIN_AMOUNT = 10**21  # min_lock_amount(): the smallest native lock
STORAGE_PRICE_PER_BYTE = 10**19


class Token:
    """The bootstrapped test token, signed by its owner (the token account): registers accounts and mints."""

    def __init__(self, owner: Account) -> None:
        self.owner = owner
        self.token_id = owner.account_id

    async def register(self, account_id: str) -> None:
        result = await self.owner.function_call(
            self.token_id, "storage_deposit", {"account_id": account_id}, amount=STORAGE_BALANCE_MIN
        )
        assert "SuccessValue" in result.status, result.status

    async def mint(self, account_id: str, amount: int) -> None:
        result = await self.owner.function_call(
            self.token_id, "mint", {"account_id": account_id, "amount": str(amount)}
        )
        assert "SuccessValue" in result.status, result.status


@pytest.fixture
async def token(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> Token:
    return Token(await near_account(near_devnet.token))


@pytest.fixture
async def fresh_htlc(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> str:
    """An HTLC of the test's own, the built wasm deployed with an ordinary DeployContract transaction: its active
    locks are the test's only."""
    htlc = await near_account(await near_devnet.acreate_account("htlc", balance=50 * NEAR))
    deployed = await htlc.deploy_contract(near_wasm("swap_htlc"))
    assert deployed.status == {"SuccessValue": ""}, deployed.status
    init = await htlc.function_call(htlc.account_id, "new", {"owner_id": htlc.account_id})
    assert "SuccessValue" in init.status, init.status
    htlc_id: str = htlc.account_id
    return htlc_id


def tombstone(lock: dict[str, Any], state: str, secret: str | None = None) -> dict[str, Any]:
    """What get_lock answers once `lock` has ended: its id, state, secret and the height its terms are at."""
    return {
        "lock_id": lock["lock_id"],
        "state": state,
        "locked_height": lock["locked_height"],
        "secret": secret,
        "ended": True,
    }


async def get_lock(devnet: NearDevnetProcess, lock_id: str, block_id: int | None = None) -> Any:
    return await devnet.aview(devnet.htlc.account_id, "get_lock", {"lock_id": lock_id}, block_id=block_id)


async def test_the_devnet_runs_the_built_wasm(near_devnet: NearDevnetProcess) -> None:
    htlc_id, token_id = near_devnet.htlc.account_id, near_devnet.token.account_id
    for account_id, name in ((htlc_id, "swap_htlc"), (token_id, "swap_token")):
        code = await near_devnet.arpc(
            "query", {"request_type": "view_code", "finality": "optimistic", "account_id": account_id}
        )
        assert base64.b64decode(code["code_base64"]) == near_wasm(name)
    assert await near_devnet.aview(htlc_id, "storage_fee") == str(FEE)
    assert await near_devnet.aview(htlc_id, "min_lock_amount") == str(MIN_AMOUNT)
    assert await near_devnet.aview(htlc_id, "token_allowlist") == [token_id]
    assert await get_lock(near_devnet, "ab" * 32) is None


async def test_lock_native_takes_the_amount_the_safety_deposit_and_the_fee(
    near_devnet: NearDevnetProcess, near_account: AccountFactory
) -> None:
    depositor = await near_devnet.acreate_account("depositor")
    signer = await near_account(depositor)
    htlc_id = near_devnet.htlc.account_id
    _, hashlock = new_secret()
    terms = lock_terms(near_devnet.receiver.account_id, hashlock, safety_deposit=str(SAFETY))
    before, htlc_before = await near_devnet.abalance(depositor.account_id), await near_devnet.abalance(htlc_id)

    result = await signer.function_call(htlc_id, "lock_native", terms, amount=5 * NEAR + SAFETY + FEE)

    lock_id = success_json(result)
    assert lock_id == lock_id_for(depositor.account_id, terms["nonce"])
    assert await near_devnet.abalance(depositor.account_id) == before - 5 * NEAR - SAFETY - FEE - burnt(result)
    assert await near_devnet.abalance(htlc_id) == htlc_before + 5 * NEAR + SAFETY + FEE
    lock = await get_lock(near_devnet, lock_id)
    assert lock["depositor"] == lock["operator"] == depositor.account_id
    assert (lock["beneficiary"], lock["hashlock"]) == (near_devnet.receiver.account_id, hashlock)
    assert (lock["token"], lock["amount"], lock["safety_deposit"]) == ("native", str(5 * NEAR), str(SAFETY))
    assert (lock["state"], lock["secret"], lock["timelocks"]) == ("active", None, terms["timelocks"])
    [event] = htlc_events(result)
    assert event["event"] == "lock_created"
    assert event["data"] == [lock]
    # Every byte the contract holds is staked (the devnet enforces NEAR's storage staking).
    account = await near_devnet.arpc(
        "query", {"request_type": "view_account", "finality": "optimistic", "account_id": htlc_id}
    )
    assert int(account["amount"]) >= account["storage_usage"] * STORAGE_PRICE_PER_BYTE

    again = await signer.function_call(htlc_id, "lock_native", terms, amount=NEAR)
    assert panic_of(again) == "Smart contract panicked: lock already exists"
    bad = await signer.function_call(
        htlc_id, "lock_native", {**terms, "nonce": "other", "timelocks": timelocks(cancellation=10)}, amount=NEAR
    )
    assert panic_of(bad) == "Smart contract panicked: invalid timelocks"


async def test_a_native_lock_must_pay_its_fee_and_reach_the_minimum(
    near_devnet: NearDevnetProcess, near_account: AccountFactory
) -> None:
    htlc_id = near_devnet.htlc.account_id
    depositor = await near_account(await near_devnet.acreate_account("minimum"))
    _, hashlock = new_secret()
    terms = lock_terms(near_devnet.receiver.account_id, hashlock, safety_deposit=str(SAFETY))
    before = await near_devnet.abalance(depositor.account_id)

    no_fee = await depositor.function_call(htlc_id, "lock_native", terms, amount=SAFETY + FEE)
    assert panic_of(no_fee).startswith("Smart contract panicked: amount must be positive")
    dust = await depositor.function_call(htlc_id, "lock_native", terms, amount=SAFETY + FEE + MIN_AMOUNT - 1)
    assert panic_of(dust) == f"Smart contract panicked: amount below the minimum lock amount: {MIN_AMOUNT}"
    # A failed call keeps nothing: the deposit came back, only gas was spent.
    assert await near_devnet.abalance(depositor.account_id) == before - burnt(no_fee) - burnt(dust)
    ok = await depositor.function_call(htlc_id, "lock_native", terms, amount=SAFETY + FEE + MIN_AMOUNT)
    assert (await get_lock(near_devnet, success_json(ok)))["amount"] == str(MIN_AMOUNT)


async def test_a_lock_landing_after_its_deadline_is_refused_and_the_deposit_goes_back(
    near_devnet: NearDevnetProcess, near_account: AccountFactory, token: Token
) -> None:
    """A maker's lock carries the order deadline (a block timestamp, ns): one that lands after it, however
    long it waited for a block, is refused, native deposit or tokens back to the sender; one in time is made."""
    htlc_id, token_id = near_devnet.htlc.account_id, token.token_id
    depositor_account = await near_devnet.acreate_account("deadline")
    depositor = await near_account(depositor_account)
    await token.register(depositor_account.account_id)
    await token.mint(depositor_account.account_id, 1000)
    _, hashlock = new_secret()
    now = int(near_devnet.block()["header"]["timestamp"])
    late = {**lock_terms(near_devnet.receiver.account_id, hashlock), "deadline": str(now - 1)}
    before = await near_devnet.abalance(depositor.account_id)

    refused = await depositor.function_call(htlc_id, "lock_native", late, amount=MIN_AMOUNT + FEE)
    assert panic_of(refused) == f"Smart contract panicked: lock deadline passed: {now - 1}"
    assert await near_devnet.abalance(depositor.account_id) == before - burnt(refused)
    prepaid = await depositor.function_call(htlc_id, "deposit_native", {}, amount=FEE)
    transfer = {"receiver_id": htlc_id, "amount": "1000", "msg": json.dumps({**late, "nonce": "ft-late"})}
    refused_ft = await depositor.function_call(token_id, "ft_transfer_call", transfer, amount=1)
    assert success_json(refused_ft) == "0" and "lock deadline passed" in panic_of(refused_ft)
    assert await near_devnet.atoken_balance(depositor.account_id) == 1000
    assert await near_devnet.aview(htlc_id, "native_balance_of", {"account_id": depositor.account_id}) == str(FEE)
    assert success_json(prepaid) == str(FEE)

    in_time = {**late, "nonce": "in-time", "deadline": str(now + 60 * NS)}
    made = await depositor.function_call(htlc_id, "lock_native", in_time, amount=MIN_AMOUNT + FEE)
    assert (await get_lock(near_devnet, success_json(made)))["state"] == "active"


async def test_withdraw_with_the_secret_pays_out_and_hands_the_fee_back(
    near_devnet: NearDevnetProcess, near_account: AccountFactory
) -> None:
    htlc_id = near_devnet.htlc.account_id
    depositor_account = await near_devnet.acreate_account("dep")
    operator_account = await near_devnet.acreate_account("op")
    beneficiary = await near_devnet.acreate_account("ben", balance=NEAR)
    depositor, operator = await near_account(depositor_account), await near_account(operator_account)
    secret, hashlock = new_secret()
    terms = lock_terms(
        beneficiary.account_id, hashlock, operator=operator_account.account_id, safety_deposit=str(SAFETY)
    )
    depositor_before = await near_devnet.abalance(depositor_account.account_id)
    created = await depositor.function_call(htlc_id, "lock_native", terms, amount=2 * NEAR + SAFETY + FEE)
    lock_id = success_json(created)
    full = await get_lock(near_devnet, lock_id)

    wrong = await operator.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": "00" * 32})
    assert panic_of(wrong) == "Smart contract panicked: invalid secret"
    operator_before = await near_devnet.abalance(operator_account.account_id)

    withdrawn = await operator.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": secret})

    assert success_json(withdrawn) is True
    assert await near_devnet.abalance(beneficiary.account_id) == NEAR + 2 * NEAR
    assert await near_devnet.abalance(operator_account.account_id) == operator_before + SAFETY - burnt(withdrawn)
    spent = depositor_before - await near_devnet.abalance(depositor_account.account_id)
    assert spent == 2 * NEAR + SAFETY + TOMBSTONE_FEE + burnt(created)  # the fee came back, less the tombstone's
    [event] = htlc_events(withdrawn)
    assert event["event"] == "lock_withdrawn"
    assert (event["data"][0]["secret"], event["data"][0]["caller"]) == (secret, operator_account.account_id)
    assert event["data"][0]["block_height"] == await event_block_height(near_devnet, withdrawn, "lock_withdrawn")
    # The record is gone; a tombstone keeps the state, the secret, the id and the height the terms are at.
    assert await get_lock(near_devnet, lock_id) == tombstone(full, "withdrawn", secret)
    assert await get_lock(near_devnet, lock_id, block_id=full["locked_height"]) == full

    again = await depositor.function_call(htlc_id, "lock_native", terms, amount=2 * NEAR + SAFETY + FEE)
    assert panic_of(again) == "Smart contract panicked: lock already exists"
    twice = await operator.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": secret})
    assert panic_of(twice) == "Smart contract panicked: lock is not active"
    missing = await operator.function_call(htlc_id, "refund", {"lock_id": "ab" * 32})
    assert panic_of(missing) == "Smart contract panicked: lock not found"


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
    created = await depositor.function_call(htlc_id, "lock_native", terms, amount=3 * NEAR + SAFETY + FEE)
    lock_id = success_json(created)
    lock = await get_lock(near_devnet, lock_id)
    locked_at = int(lock["locked_at"])

    async def attempt(signer: Account, method: str, **args: str) -> str:
        result = await signer.function_call(htlc_id, method, {"lock_id": lock_id, **args})
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
    # The depositor gets the amount and the fee less the tombstone's; the stranger who refunded, the safety deposit.
    assert await near_devnet.abalance(depositor_account.account_id) == before + 3 * NEAR + FEE - TOMBSTONE_FEE
    assert await near_devnet.abalance(stranger_account.account_id) == stranger_before + SAFETY - burnt(result)
    assert await get_lock(near_devnet, lock_id) == tombstone(lock, "refunded")
    [event] = htlc_events(result)
    assert (event["event"], event["data"][0]["caller"]) == ("lock_refunded", stranger_account.account_id)
    assert event["data"][0]["block_height"] == await event_block_height(near_devnet, result, "lock_refunded")
    assert event["data"][0]["state"] == "refunded"


async def test_token_lock_with_ft_transfer_call_and_its_refund(
    near_devnet: NearDevnetProcess, near_account: AccountFactory, token: Token
) -> None:
    htlc_id, token_id = near_devnet.htlc.account_id, token.token_id
    maker_account = await near_devnet.acreate_account("tmaker")
    maker_id = maker_account.account_id
    maker = await near_account(maker_account)
    await token.register(maker_id)
    await token.mint(maker_id, 500_000_000)
    _, hashlock = new_secret()
    terms = lock_terms(near_devnet.receiver.account_id, hashlock, safety_deposit=str(SAFETY))
    transfer = {"receiver_id": htlc_id, "amount": "250000000", "msg": json.dumps(terms)}
    htlc_tokens = await near_devnet.atoken_balance(htlc_id)

    short = await maker.function_call(htlc_id, "deposit_native", {}, amount=SAFETY)  # not enough for the fee too
    assert success_json(short) == str(SAFETY)
    refused = await maker.function_call(token_id, "ft_transfer_call", transfer, amount=1)
    assert success_json(refused) == "0"  # ft_on_transfer panicked: the token sent everything back
    assert "insufficient native balance for the safety deposit and the storage fee" in panic_of(refused)
    assert await near_devnet.atoken_balance(maker_id) == 500_000_000

    topped_up = await maker.function_call(htlc_id, "deposit_native", {}, amount=FEE)
    assert success_json(topped_up) == str(SAFETY + FEE)
    locked = await maker.function_call(token_id, "ft_transfer_call", transfer, amount=1)

    assert success_json(locked) == "250000000"  # ft_resolve_transfer: all of it was used
    assert await near_devnet.atoken_balance(maker_id) == 250_000_000
    assert await near_devnet.atoken_balance(htlc_id) == htlc_tokens + 250_000_000
    lock_id = lock_id_for(maker_id, terms["nonce"])
    lock = await get_lock(near_devnet, lock_id)
    assert (lock["token"], lock["amount"], lock["safety_deposit"]) == (token_id, "250000000", str(SAFETY))
    assert lock["depositor"] == lock["operator"] == maker_id
    [event] = htlc_events(locked)
    assert (event["event"], event["data"]) == ("lock_created", [lock])
    # The safety deposit and the fee came out of the prepaid balance.
    assert await near_devnet.aview(htlc_id, "native_balance_of", {"account_id": maker_id}) == "0"
    early = await maker.function_call(htlc_id, "refund", {"lock_id": lock_id})
    cancellation = int(lock["locked_at"]) + int(lock["timelocks"]["cancellation"])
    assert panic_of(early) == f"Smart contract panicked: too early: opens at {cancellation}"

    await near_devnet.afast_forward(delta_seconds=61)
    native_before = await near_devnet.abalance(maker_id)
    refunded = await maker.function_call(htlc_id, "refund", {"lock_id": lock_id})

    assert success_json(refunded) is True
    assert await near_devnet.atoken_balance(maker_id) == 500_000_000
    assert await near_devnet.atoken_balance(htlc_id) == htlc_tokens
    # The operator (the maker itself) earns the safety deposit; the fee comes back less the tombstone's.
    native_after = await near_devnet.abalance(maker_id)
    assert native_after == native_before + SAFETY + FEE - TOMBSTONE_FEE - burnt(refunded)
    [event] = htlc_events(refunded)
    assert event["event"] == "lock_refunded"
    assert await get_lock(near_devnet, lock_id) == tombstone(lock, "refunded")
    assert await get_lock(near_devnet, lock_id, block_id=lock["locked_height"]) == lock


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


async def test_a_payout_to_an_unregistered_account_restores_the_lock(
    near_devnet: NearDevnetProcess, near_account: AccountFactory, token: Token
) -> None:
    htlc_id, token_id = near_devnet.htlc.account_id, token.token_id
    resolver_account = await near_devnet.acreate_account("tres")
    resolver = await near_account(resolver_account)
    await token.register(resolver_account.account_id)
    await token.mint(resolver_account.account_id, 1_000)
    await resolver.function_call(htlc_id, "deposit_native", {}, amount=FEE)
    unregistered = await near_devnet.acreate_account("unreg", balance=NEAR)
    secret, hashlock = new_secret()
    terms = lock_terms(unregistered.account_id, hashlock)
    await resolver.function_call(
        token_id, "ft_transfer_call", {"receiver_id": htlc_id, "amount": "777", "msg": json.dumps(terms)}, amount=1
    )
    lock_id = lock_id_for(resolver_account.account_id, terms["nonce"])
    htlc_tokens = await near_devnet.atoken_balance(htlc_id)

    result = await resolver.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": secret})

    assert success_json(result) is False
    assert "is not registered" in panic_of(result)
    lock = await get_lock(near_devnet, lock_id)
    assert (lock["state"], lock["secret"], lock["amount"]) == ("active", None, "777")
    assert await near_devnet.atoken_balance(htlc_id) == htlc_tokens
    assert htlc_events(result) == []
    await token.register(unregistered.account_id)
    retried = await resolver.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": secret})
    assert success_json(retried) is True
    assert await near_devnet.atoken_balance(unregistered.account_id) == 777


async def test_events_are_log_lines_of_the_receipts_that_made_them(
    near_devnet: NearDevnetProcess, near_account: AccountFactory
) -> None:
    htlc_id = near_devnet.htlc.account_id
    account = await near_devnet.acreate_account("events")
    signer = await near_account(account)
    secret_a, hashlock_a = new_secret()
    _, hashlock_b = new_secret()
    created_a = await signer.function_call(
        htlc_id, "lock_native", lock_terms(near_devnet.receiver.account_id, hashlock_a), amount=NEAR + FEE
    )
    created_b = await signer.function_call(
        htlc_id, "lock_native", lock_terms(near_devnet.receiver.account_id, hashlock_b), amount=NEAR + FEE
    )
    lock_a, lock_b = success_json(created_a), success_json(created_b)
    withdrawn = await signer.function_call(htlc_id, "withdraw", {"lock_id": lock_a, "secret": secret_a})

    events = [event for result in (created_a, created_b, withdrawn) for event in htlc_events(result)]
    assert [(event["event"], event["data"][0]["lock_id"]) for event in events] == [
        ("lock_created", lock_a),
        ("lock_created", lock_b),
        ("lock_withdrawn", lock_a),
    ]
    assert {(event["standard"], event["version"]) for event in events} == {("swap_htlc", "1.0.0")}
    assert events[2]["data"][0]["secret"] == secret_a
    # lock_created is logged by the lock_native receipt itself; lock_withdrawn by the on_payout callback, two
    # blocks after the withdraw receipt (payout, then callback).
    assert any(line.startswith("EVENT_JSON:") for line in created_a.receipt_outcome[0].logs)
    status = await near_devnet.arpc("tx", [withdrawn.transaction.hash, account.account_id])
    withdraw_receipt = status["receipts_outcome"][0]
    [callback] = [
        outcome
        for outcome in status["receipts_outcome"]
        if any('"event":"lock_withdrawn"' in line for line in outcome["outcome"]["logs"])
    ]
    assert callback["outcome"]["executor_id"] == htlc_id

    async def height(outcome: dict[str, Any]) -> int:
        block = await near_devnet.arpc("block", {"block_id": outcome["block_hash"]})
        return int(block["header"]["height"])

    assert await height(callback) == await height(withdraw_receipt) + 2
    # The contract keeps no event log in its state: the logs are the events.
    for view in ("get_events", "events_count"):
        with pytest.raises(DevnetError, match="MethodNotFound"):
            await near_devnet.aview(htlc_id, view, {})
    active = {lock["lock_id"] for lock in await near_devnet.aview(htlc_id, "list_active", {"limit": 1000})}
    assert lock_b in active and lock_a not in active


async def test_list_active_reads_the_index_in_position_order(
    near_devnet: NearDevnetProcess, near_account: AccountFactory, fresh_htlc: str
) -> None:
    depositor = await near_account(await near_devnet.acreate_account("listing"))
    secrets_by_lock: dict[str, str] = {}
    for _ in range(3):
        secret, hashlock = new_secret()
        terms = lock_terms(near_devnet.receiver.account_id, hashlock)
        result = await depositor.function_call(fresh_htlc, "lock_native", terms, amount=MIN_AMOUNT + FEE)
        secrets_by_lock[success_json(result)] = secret
    first, second, third = secrets_by_lock

    async def active(**page: int) -> list[str]:
        locks = await near_devnet.aview(fresh_htlc, "list_active", page)
        assert all(lock["state"] == "active" for lock in locks)
        return [lock["lock_id"] for lock in locks]

    assert await active() == [first, second, third]
    withdrawn = await depositor.function_call(
        fresh_htlc, "withdraw", {"lock_id": first, "secret": secrets_by_lock[first]}
    )
    assert success_json(withdrawn) is True
    assert await active() == [third, second]  # the last active lock moved into the ended one's position
    assert await active(from_index=1, limit=1) == [second]
    assert await active(from_index=2) == []


async def test_withdraw_costs_the_same_with_hundreds_of_locks(
    near_devnet: NearDevnetProcess, near_account: AccountFactory, fresh_htlc: str
) -> None:
    """Locks live one per key and the active index is a count plus one key per position: the withdrawal with 5
    locks in the contract and the one with 304 burn the same gas."""
    depositor = await near_account(await near_devnet.acreate_account("many", balance=100 * NEAR))
    secrets_by_lock: dict[str, str] = {}

    async def lock_one() -> None:
        secret, hashlock = new_secret()
        terms = lock_terms(near_devnet.receiver.account_id, hashlock)
        result = await depositor.function_call(fresh_htlc, "lock_native", terms, amount=FEE + MIN_AMOUNT)
        secrets_by_lock[success_json(result)] = secret

    async def withdraw_gas(lock_id: str) -> int:
        result = await depositor.function_call(
            fresh_htlc, "withdraw", {"lock_id": lock_id, "secret": secrets_by_lock[lock_id]}
        )
        assert success_json(result) is True
        return sum(int(o.gas_burnt) for o in result.receipt_outcome) + int(result.transaction_outcome.gas_burnt)

    for _ in range(5):
        await lock_one()
    few = await withdraw_gas(next(iter(secrets_by_lock)))
    for _ in range(10):
        await asyncio.gather(*(lock_one() for _ in range(30)))
    assert len(await near_devnet.aview(fresh_htlc, "list_active", {"limit": 1000})) == 304
    # An old lock, like the first: the last lock moves into its place.
    many = await withdraw_gas(list(secrets_by_lock)[1])
    assert abs(many - few) <= few // 100, (few, many)
    assert len(await near_devnet.aview(fresh_htlc, "list_active", {"limit": 1000})) == 303
