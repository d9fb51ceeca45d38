"""The Rust HTLC and NEP-141 token (contracts/near, built by `make contracts`) deployed as wasm on the devnet
and driven with py-near through the RPC, as on a real network: native and token locks with the per-lock
storage fee, withdrawals and refunds paying out and handing the fee back less the tombstone's, a failed
payout restoring the lock, the minimum amount, ended locks that keep their id, NEP-297 events only, and
withdrawals that cost the same gas with hundreds of locks in the contract."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from py_near.account import Account
from swap_devnet.near import NearDevnetProcess, lock_id_for

from tests.integration.near_devnet.conftest import (
    NEAR,
    AccountFactory,
    burnt,
    htlc_events,
    lock_terms,
    new_secret,
    panic_of,
    success_json,
)

pytestmark = pytest.mark.integration

BUILD = Path(__file__).resolve().parents[3] / "contracts" / "build" / "near"
FEE = 10**22  # the HTLC's storage_fee(): paid with every lock
TOMBSTONE_FEE = 11 * 10**20  # kept when a lock ends, for its tombstone
SAFETY = NEAR // 10
MIN_AMOUNT = 10**21
STORAGE_PRICE_PER_BYTE = 10**19


def wasm(name: str) -> bytes:
    path = BUILD / f"{name}.wasm"
    if not path.exists():
        pytest.fail(f"{path} is missing: run make contracts")
    return path.read_bytes()


class Deployed:
    def __init__(self, devnet: NearDevnetProcess, htlc: Account, token: Account) -> None:
        self.devnet = devnet
        self.htlc_id = htlc.account_id
        self.token_id = token.account_id
        self.token = token

    async def register(self, account_id: str) -> None:
        result = await self.token.function_call(
            self.token_id, "storage_deposit", {"account_id": account_id}, amount=125 * 10**19
        )
        assert "SuccessValue" in result.status, result.status

    async def mint(self, account_id: str, amount: int) -> None:
        result = await self.token.function_call(
            self.token_id, "mint", {"account_id": account_id, "amount": str(amount)}
        )
        assert "SuccessValue" in result.status, result.status

    async def lock(self, account_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.devnet.aview(self.htlc_id, "get_lock", {"lock_id": account_id})
        return found

    async def token_balance(self, account_id: str) -> int:
        return int(await self.devnet.aview(self.token_id, "ft_balance_of", {"account_id": account_id}))


@pytest.fixture
async def contracts(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> Deployed:
    """A fresh HTLC and token from the built wasm, each on an account of its own."""
    htlc = await near_account(await near_devnet.acreate_account("whtlc", balance=50 * NEAR))
    token = await near_account(await near_devnet.acreate_account("wtoken", balance=50 * NEAR))
    for account, code in ((htlc, wasm("swap_htlc")), (token, wasm("swap_token"))):
        deployed = await account.deploy_contract(code)
        assert deployed.status == {"SuccessValue": ""}, deployed.status
    metadata = {"spec": "ft-1.0.0", "name": "Test USD", "symbol": "TUSD", "decimals": 6}
    init = await token.function_call(
        token.account_id, "new", {"owner_id": token.account_id, "total_supply": "0", "metadata": metadata}
    )
    assert "SuccessValue" in init.status, init.status
    init = await htlc.function_call(
        htlc.account_id, "new", {"owner_id": htlc.account_id, "token_allowlist": [token.account_id]}
    )
    assert "SuccessValue" in init.status, init.status
    out = Deployed(near_devnet, htlc, token)
    await out.register(htlc.account_id)
    return out


async def test_the_views_state_the_fee_and_the_minimum(contracts: Deployed) -> None:
    devnet = contracts.devnet
    assert await devnet.aview(contracts.htlc_id, "storage_fee") == str(FEE)
    assert await devnet.aview(contracts.htlc_id, "min_lock_amount") == str(MIN_AMOUNT)
    assert await devnet.aview(contracts.htlc_id, "token_allowlist") == [contracts.token_id]
    assert await devnet.aview(contracts.htlc_id, "get_lock", {"lock_id": "ab" * 32}) is None


async def test_native_lock_withdraw_pays_out_and_hands_the_fee_back(
    contracts: Deployed, near_account: AccountFactory
) -> None:
    devnet, htlc_id = contracts.devnet, contracts.htlc_id
    depositor_account = await devnet.acreate_account("wdep")
    operator_account = await devnet.acreate_account("wop")
    beneficiary = await devnet.acreate_account("wben", balance=NEAR)
    depositor, operator = await near_account(depositor_account), await near_account(operator_account)
    secret, hashlock = new_secret()
    terms = lock_terms(
        beneficiary.account_id, hashlock, operator=operator_account.account_id, safety_deposit=str(SAFETY)
    )
    depositor_before = await devnet.abalance(depositor_account.account_id)

    created = await depositor.function_call(htlc_id, "lock_native", terms, amount=2 * NEAR + SAFETY + FEE)

    lock_id = success_json(created)
    assert lock_id == lock_id_for(depositor_account.account_id, terms["nonce"])
    lock = await contracts.lock(lock_id)
    assert (lock["amount"], lock["safety_deposit"], lock["state"]) == (str(2 * NEAR), str(SAFETY), "active")
    [event] = htlc_events(created)
    assert event["event"] == "lock_created" and event["data"] == [lock]
    # Every byte the contract holds is staked (the devnet enforces NEAR's storage staking).
    account = await devnet.arpc(
        "query", {"request_type": "view_account", "finality": "optimistic", "account_id": htlc_id}
    )
    assert int(account["amount"]) >= account["storage_usage"] * STORAGE_PRICE_PER_BYTE

    operator_before = await devnet.abalance(operator_account.account_id)
    withdrawn = await operator.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": secret})

    assert success_json(withdrawn) is True
    assert await devnet.abalance(beneficiary.account_id) == NEAR + 2 * NEAR
    assert await devnet.abalance(operator_account.account_id) == operator_before + SAFETY - burnt(withdrawn)
    spent = depositor_before - await devnet.abalance(depositor_account.account_id)
    assert spent == 2 * NEAR + SAFETY + TOMBSTONE_FEE + burnt(created)  # the fee came back, less the tombstone's
    [event] = htlc_events(withdrawn)
    assert event["event"] == "lock_withdrawn" and event["data"][0]["secret"] == secret
    assert event["data"][0]["caller"] == operator_account.account_id
    # The record is gone; a tombstone keeps the state, the secret and the id.
    assert await contracts.lock(lock_id) == {"lock_id": lock_id, "state": "withdrawn", "secret": secret, "ended": True}
    again = await depositor.function_call(htlc_id, "lock_native", terms, amount=2 * NEAR + SAFETY + FEE)
    assert panic_of(again) == "Smart contract panicked: lock already exists"
    twice = await operator.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": secret})
    assert panic_of(twice) == "Smart contract panicked: lock is not active"
    assert "get_events" not in json.dumps(await devnet.aview(htlc_id, "token_allowlist"))


async def test_a_native_lock_must_pay_its_fee_and_reach_the_minimum(
    contracts: Deployed, near_account: AccountFactory
) -> None:
    devnet, htlc_id = contracts.devnet, contracts.htlc_id
    depositor = await near_account(await devnet.acreate_account("wmin"))
    _, hashlock = new_secret()
    terms = lock_terms(devnet.receiver.account_id, hashlock, safety_deposit=str(SAFETY))
    before = await devnet.abalance(depositor.account_id)

    no_fee = await depositor.function_call(htlc_id, "lock_native", terms, amount=SAFETY + FEE)
    assert panic_of(no_fee).startswith("Smart contract panicked: amount must be positive")
    dust = await depositor.function_call(htlc_id, "lock_native", terms, amount=SAFETY + FEE + MIN_AMOUNT - 1)
    assert panic_of(dust) == f"Smart contract panicked: amount below the minimum lock amount: {MIN_AMOUNT}"
    # A failed call keeps nothing: the deposit came back, only gas was spent.
    assert await devnet.abalance(depositor.account_id) == before - burnt(no_fee) - burnt(dust)
    ok = await depositor.function_call(htlc_id, "lock_native", terms, amount=SAFETY + FEE + MIN_AMOUNT)
    assert (await contracts.lock(success_json(ok)))["amount"] == str(MIN_AMOUNT)


async def test_token_lock_refund_returns_tokens_deposit_and_fee(
    contracts: Deployed, near_account: AccountFactory
) -> None:
    devnet, htlc_id, token_id = contracts.devnet, contracts.htlc_id, contracts.token_id
    maker_account = await devnet.acreate_account("wmaker")
    maker = await near_account(maker_account)
    await contracts.register(maker_account.account_id)
    await contracts.register(devnet.receiver.account_id)
    await contracts.mint(maker_account.account_id, 500_000_000)
    _, hashlock = new_secret()
    terms = lock_terms(devnet.receiver.account_id, hashlock, safety_deposit=str(SAFETY))
    short = await maker.function_call(htlc_id, "deposit_native", {}, amount=SAFETY)  # not enough for the fee too
    assert success_json(short) == str(SAFETY)
    refused = await maker.function_call(
        token_id,
        "ft_transfer_call",
        {"receiver_id": htlc_id, "amount": "250000000", "msg": json.dumps(terms)},
        amount=1,
    )
    assert success_json(refused) == "0"  # ft_on_transfer panicked: the token sent everything back
    assert "insufficient native balance for the safety deposit and the storage fee" in panic_of(refused)
    assert await contracts.token_balance(maker_account.account_id) == 500_000_000

    await maker.function_call(htlc_id, "deposit_native", {}, amount=FEE)
    locked = await maker.function_call(
        token_id,
        "ft_transfer_call",
        {"receiver_id": htlc_id, "amount": "250000000", "msg": json.dumps(terms)},
        amount=1,
    )
    assert success_json(locked) == "250000000"
    assert await devnet.aview(htlc_id, "native_balance_of", {"account_id": maker_account.account_id}) == "0"
    lock_id = lock_id_for(maker_account.account_id, terms["nonce"])
    early = await maker.function_call(htlc_id, "refund", {"lock_id": lock_id})
    assert panic_of(early).startswith("Smart contract panicked: too early: opens at")

    await devnet.afast_forward(delta_seconds=61)
    native_before = await devnet.abalance(maker_account.account_id)
    refunded = await maker.function_call(htlc_id, "refund", {"lock_id": lock_id})

    assert success_json(refunded) is True
    assert await contracts.token_balance(maker_account.account_id) == 500_000_000
    # The operator (the maker itself) earns the safety deposit; the fee comes back less the tombstone's.
    native_after = await devnet.abalance(maker_account.account_id)
    assert native_after == native_before + SAFETY + FEE - TOMBSTONE_FEE - burnt(refunded)
    [event] = htlc_events(refunded)
    assert event["event"] == "lock_refunded"
    assert await contracts.lock(lock_id) == {"lock_id": lock_id, "state": "refunded", "secret": None, "ended": True}


async def test_a_payout_to_an_unregistered_account_restores_the_lock(
    contracts: Deployed, near_account: AccountFactory
) -> None:
    devnet, htlc_id, token_id = contracts.devnet, contracts.htlc_id, contracts.token_id
    resolver_account = await devnet.acreate_account("wres")
    resolver = await near_account(resolver_account)
    await contracts.register(resolver_account.account_id)
    await contracts.mint(resolver_account.account_id, 1_000)
    await resolver.function_call(htlc_id, "deposit_native", {}, amount=FEE)
    unregistered = await devnet.acreate_account("wunreg", balance=NEAR)
    secret, hashlock = new_secret()
    terms = lock_terms(unregistered.account_id, hashlock)
    await resolver.function_call(
        token_id, "ft_transfer_call", {"receiver_id": htlc_id, "amount": "777", "msg": json.dumps(terms)}, amount=1
    )
    lock_id = lock_id_for(resolver_account.account_id, terms["nonce"])
    htlc_tokens = await contracts.token_balance(htlc_id)

    result = await resolver.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": secret})

    assert success_json(result) is False
    assert "is not registered" in panic_of(result)
    lock = await contracts.lock(lock_id)
    assert (lock["state"], lock["secret"], lock["amount"]) == ("active", None, "777")
    assert await contracts.token_balance(htlc_id) == htlc_tokens
    assert htlc_events(result) == []
    await contracts.register(unregistered.account_id)
    retried = await resolver.function_call(htlc_id, "withdraw", {"lock_id": lock_id, "secret": secret})
    assert success_json(retried) is True
    assert await contracts.token_balance(unregistered.account_id) == 777


async def test_withdraw_costs_the_same_with_hundreds_of_locks(
    contracts: Deployed, near_account: AccountFactory
) -> None:
    """Locks live one per key: the hundredth and the three-hundredth withdrawal burn the same gas (the
    model's single active list made every call rewrite all of them)."""
    devnet, htlc_id = contracts.devnet, contracts.htlc_id
    depositor_account = await devnet.acreate_account("wmany", balance=100 * NEAR)
    depositor = await near_account(depositor_account)
    secrets_by_lock: dict[str, str] = {}

    async def lock_one() -> None:
        secret, hashlock = new_secret()
        terms = lock_terms(devnet.receiver.account_id, hashlock)
        result = await depositor.function_call(htlc_id, "lock_native", terms, amount=FEE + MIN_AMOUNT)
        secrets_by_lock[success_json(result)] = secret

    async def withdraw_gas(lock_id: str) -> int:
        result = await depositor.function_call(
            htlc_id, "withdraw", {"lock_id": lock_id, "secret": secrets_by_lock[lock_id]}
        )
        assert success_json(result) is True
        return sum(int(o.gas_burnt) for o in result.receipt_outcome) + int(result.transaction_outcome.gas_burnt)

    for _ in range(5):
        await lock_one()
    few = await withdraw_gas(next(iter(secrets_by_lock)))
    for _ in range(10):
        await asyncio.gather(*(lock_one() for _ in range(30)))
    active = await devnet.aview(htlc_id, "list_active", {"limit": 1000})
    assert len(active) == 304
    many = await withdraw_gas(
        list(secrets_by_lock)[1]
    )  # an old one, like the first: the last lock moves into its place
    assert abs(many - few) <= few // 100, (few, many)
    assert len(await devnet.aview(htlc_id, "list_active", {"limit": 1000})) == 303
