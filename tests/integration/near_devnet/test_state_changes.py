"""nearcore's `EXPERIMENTAL_changes` and `EXPERIMENTAL_changes_in_block` on the devnet, over plain JSON-RPC: the
Rust HTLC's lock record written by the receipt that ran lock_native, its deletion and tombstone in the block of
the on_payout callback, key prefixes, the signer's account and access key changed by transaction processing,
blocks without changes, unknown blocks and bad parameters, and `finality: final` agreeing with the same block
asked by height and by hash."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from py_near.account import Account
from swap_devnet.near import DevnetError, NearDevnetProcess
from swap_devnet.near.codec import PublicKey
from swap_devnet.near.state import (
    AccountRecord,
    ChangeCause,
    StateUpdate,
    VersionedStore,
    account_key,
    data_key,
    select_changes,
)

from tests.integration.near_devnet.conftest import NEAR, AccountFactory, lock_terms, new_secret, success_json

pytestmark = pytest.mark.integration

HTLC_WASM = Path(__file__).resolve().parents[3] / "contracts" / "build" / "near" / "swap_htlc.wasm"
FEE = 10**22  # the HTLC's storage fee, paid with every lock
SAFETY = NEAR // 10
WITHDRAWN = 1  # the state byte of a withdrawn lock


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Locked:
    """A native lock on a freshly deployed HTLC, and where the chain recorded it."""

    htlc_id: str
    depositor_id: str
    lock_id: str
    secret: str
    tx_hash: str
    tx_block: str  # the block that converted the transaction
    receipt_id: str  # the receipt that ran lock_native
    receipt_block: str
    operator: Account


async def tx_status(devnet: NearDevnetProcess, tx_hash: str, signer_id: str) -> Any:
    return await devnet.arpc(
        "EXPERIMENTAL_tx_status",
        {"tx_hash": tx_hash, "sender_account_id": signer_id, "wait_until": "EXECUTED_OPTIMISTIC"},
    )


async def executed_receipt(devnet: NearDevnetProcess, status: Any, method: str) -> tuple[str, str]:
    """(receipt id, block hash) of the receipt of a transaction (its EXPERIMENTAL_tx_status) that ran `method`;
    read with EXPERIMENTAL_receipt, as the status leaves out the receipts a contract sends itself."""
    for outcome in status["receipts_outcome"]:
        receipt = await devnet.arpc("EXPERIMENTAL_receipt", {"receipt_id": outcome["id"]})
        actions = receipt["receipt"].get("Action", {}).get("actions", [])
        if method in [action["FunctionCall"]["method_name"] for action in actions if "FunctionCall" in action]:
            return outcome["id"], outcome["block_hash"]
    raise AssertionError(f"no receipt of {status['transaction']['hash']} ran {method}")


async def changes(devnet: NearDevnetProcess, block: dict[str, Any], changes_type: str, **request: Any) -> Any:
    return await devnet.arpc("EXPERIMENTAL_changes", {**block, "changes_type": changes_type, **request})


async def data_changes(devnet: NearDevnetProcess, block_hash: str, account_id: str, prefix: bytes = b"") -> Any:
    result = await changes(
        devnet, {"block_id": block_hash}, "data_changes", account_ids=[account_id], key_prefix_base64=b64(prefix)
    )
    assert result["block_hash"] == block_hash
    return result["changes"]


async def height_of(devnet: NearDevnetProcess, block_hash: str) -> int:
    height: int = (await devnet.arpc("block", {"block_id": block_hash}))["header"]["height"]
    return height


@pytest.fixture
async def locked(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> Locked:
    if not HTLC_WASM.exists():
        pytest.fail(f"{HTLC_WASM} is missing: run make contracts")
    htlc = await near_account(await near_devnet.acreate_account("chtlc", balance=50 * NEAR))
    deployed = await htlc.deploy_contract(HTLC_WASM.read_bytes())
    assert deployed.status == {"SuccessValue": ""}, deployed.status
    init = await htlc.function_call(htlc.account_id, "new", {"owner_id": htlc.account_id})
    assert "SuccessValue" in init.status, init.status
    depositor = await near_account(await near_devnet.acreate_account("cdep"))
    operator = await near_account(await near_devnet.acreate_account("cop"))
    beneficiary = await near_devnet.acreate_account("cben", balance=NEAR)
    secret, hashlock = new_secret()
    terms = lock_terms(beneficiary.account_id, hashlock, operator=operator.account_id, safety_deposit=str(SAFETY))

    created = await depositor.function_call(htlc.account_id, "lock_native", terms, amount=2 * NEAR + SAFETY + FEE)

    status = await tx_status(near_devnet, created.transaction.hash, depositor.account_id)
    receipt_id, receipt_block = await executed_receipt(near_devnet, status, "lock_native")
    # The transaction's own receipt ran lock_native.
    assert status["transaction_outcome"]["outcome"]["receipt_ids"] == [receipt_id]
    return Locked(
        htlc_id=htlc.account_id,
        depositor_id=depositor.account_id,
        lock_id=success_json(created),
        secret=secret,
        tx_hash=created.transaction.hash,
        tx_block=status["transaction_outcome"]["block_hash"],
        receipt_id=receipt_id,
        receipt_block=receipt_block,
        operator=operator,
    )


async def test_the_lock_receipt_writes_the_lock_record(near_devnet: NearDevnetProcess, locked: Locked) -> None:
    lock_key = b"l" + bytes.fromhex(locked.lock_id)

    found = await data_changes(near_devnet, locked.receipt_block, locked.htlc_id)

    [lock] = [item for item in found if item["change"]["key_base64"] == b64(lock_key)]
    assert lock["type"] == "data_update"
    assert lock["cause"] == {"type": "receipt_processing", "receipt_hash": locked.receipt_id}
    assert set(lock["change"]) == {"account_id", "key_base64", "value_base64"}
    assert lock["change"]["account_id"] == locked.htlc_id
    # The value is the record the contract holds from that block on.
    state = await near_devnet.arpc(
        "query",
        {
            "request_type": "view_state",
            "block_id": locked.receipt_block,
            "account_id": locked.htlc_id,
            "prefix_base64": b64(lock_key),
        },
    )
    assert state["values"] == [{"key": b64(lock_key), "value": lock["change"]["value_base64"]}]
    # nearcore's order: by key, every change made by that receipt.
    keys = [base64.b64decode(item["change"]["key_base64"]) for item in found]
    assert keys == sorted(keys)
    assert {item["change"]["account_id"] for item in found} == {locked.htlc_id}
    assert {item["cause"]["receipt_hash"] for item in found} == {locked.receipt_id}
    # The transaction's own block wrote nothing in the contract.
    assert await data_changes(near_devnet, locked.tx_block, locked.htlc_id) == []


async def test_key_prefix_base64_filters_the_data_changes(near_devnet: NearDevnetProcess, locked: Locked) -> None:
    lock_key = b"l" + bytes.fromhex(locked.lock_id)
    everything = await data_changes(near_devnet, locked.receipt_block, locked.htlc_id)

    locks = await data_changes(near_devnet, locked.receipt_block, locked.htlc_id, b"l")
    exact = await data_changes(near_devnet, locked.receipt_block, locked.htlc_id, lock_key)
    none = await data_changes(near_devnet, locked.receipt_block, locked.htlc_id, b"\xff")

    assert len(everything) > len(locks) >= 1  # the contract wrote its index and count too
    assert locks == [item for item in everything if base64.b64decode(item["change"]["key_base64"]).startswith(b"l")]
    assert [item["change"]["key_base64"] for item in exact] == [b64(lock_key)]
    assert none == []


async def test_the_payout_callback_deletes_the_lock_and_writes_its_tombstone(
    near_devnet: NearDevnetProcess, locked: Locked
) -> None:
    lock_id = bytes.fromhex(locked.lock_id)
    withdrawn = await locked.operator.function_call(
        locked.htlc_id, "withdraw", {"lock_id": locked.lock_id, "secret": locked.secret}
    )
    assert success_json(withdrawn) is True
    status = await tx_status(near_devnet, withdrawn.transaction.hash, locked.operator.account_id)
    callback_id, callback_block = await executed_receipt(near_devnet, status, "on_payout")

    found = await data_changes(near_devnet, callback_block, locked.htlc_id)

    by_key = {base64.b64decode(item["change"]["key_base64"]): item for item in found}
    cause = {"type": "receipt_processing", "receipt_hash": callback_id}
    deleted = by_key[b"l" + lock_id]
    assert deleted == {
        "cause": cause,
        "type": "data_deletion",
        "change": {"account_id": locked.htlc_id, "key_base64": b64(b"l" + lock_id)},
    }
    tombstone = by_key[b"t" + lock_id]
    assert (tombstone["cause"], tombstone["type"]) == (cause, "data_update")
    value = base64.b64decode(tombstone["change"]["value_base64"])
    # The state, the height the lock was made at (u64 LE) and the secret.
    lock_height = await height_of(near_devnet, locked.receipt_block)
    assert value == bytes([WITHDRAWN]) + lock_height.to_bytes(8, "little") + bytes.fromhex(locked.secret)
    in_block = await near_devnet.arpc("EXPERIMENTAL_changes_in_block", {"block_id": callback_block})
    assert in_block["block_hash"] == callback_block
    assert {"type": "data_touched", "account_id": locked.htlc_id} in in_block["changes"]


async def test_the_transaction_charges_the_signer_as_transaction_processing(
    near_devnet: NearDevnetProcess, locked: Locked
) -> None:
    tx_cause = {"type": "transaction_processing", "tx_hash": locked.tx_hash}
    at_tx = {"block_id": locked.tx_block}

    accounts = await changes(near_devnet, at_tx, "account_changes", account_ids=[locked.depositor_id])

    assert accounts["block_hash"] == locked.tx_block
    [charged] = accounts["changes"]
    assert (charged["cause"], charged["type"]) == (tx_cause, "account_update")
    view = await near_devnet.arpc(
        "query", {"request_type": "view_account", "block_id": locked.tx_block, "account_id": locked.depositor_id}
    )
    assert charged["change"] == {
        "account_id": locked.depositor_id,
        **{name: value for name, value in view.items() if name not in ("block_height", "block_hash")},
    }
    before = await near_devnet.arpc(
        "query",
        {
            "request_type": "view_account",
            "block_id": await height_of(near_devnet, locked.tx_block) - 1,
            "account_id": locked.depositor_id,
        },
    )
    assert int(charged["change"]["amount"]) < int(before["amount"]) - 2 * NEAR
    # The signer's key took the transaction's nonce, by the same cause.
    status = await tx_status(near_devnet, locked.tx_hash, locked.depositor_id)
    public_key, nonce = status["transaction"]["public_key"], status["transaction"]["nonce"]
    all_keys = await changes(near_devnet, at_tx, "all_access_key_changes", account_ids=[locked.depositor_id])
    one_key = await changes(
        near_devnet,
        at_tx,
        "single_access_key_changes",
        keys=[{"account_id": locked.depositor_id, "public_key": public_key}],
    )
    assert all_keys == one_key
    [key] = all_keys["changes"]
    assert key == {
        "cause": tx_cause,
        "type": "access_key_update",
        "change": {
            "account_id": locked.depositor_id,
            "public_key": public_key,
            "access_key": {"nonce": nonce, "permission": "FullAccess"},
        },
    }
    in_block = await near_devnet.arpc("EXPERIMENTAL_changes_in_block", {"block_id": locked.tx_block})
    assert {"type": "account_touched", "account_id": locked.depositor_id} in in_block["changes"]
    assert {"type": "access_key_touched", "account_id": locked.depositor_id} in in_block["changes"]
    # The receipt's block: the contract's account took the deposit, listed in the order asked.
    at_receipt = await changes(
        near_devnet,
        {"block_id": locked.receipt_block},
        "account_changes",
        account_ids=[locked.htlc_id, locked.depositor_id],
    )
    assert at_receipt["changes"][0]["change"]["account_id"] == locked.htlc_id
    assert at_receipt["changes"][0]["cause"] == {"type": "receipt_processing", "receipt_hash": locked.receipt_id}


async def test_a_block_without_changes_lists_none(near_devnet: NearDevnetProcess) -> None:
    start = (await near_devnet.arpc("block", {"finality": "optimistic"}))["header"]["height"]
    for _ in range(500):
        head = (await near_devnet.arpc("block", {"finality": "optimistic"}))["header"]
        if head["height"] > start:
            chunk = await near_devnet.arpc("chunk", {"block_id": head["hash"], "shard_id": 0})
            if not chunk["transactions"] and not chunk["receipts"]:
                break
            start = head["height"]
        await asyncio.sleep(0.02)
    else:
        pytest.fail("no block without transactions or receipts")
    at = {"block_id": head["hash"]}

    in_block = await near_devnet.arpc("EXPERIMENTAL_changes_in_block", at)
    accounts = await changes(near_devnet, at, "account_changes", account_ids=[near_devnet.root.account_id])

    assert in_block == {"block_hash": head["hash"], "changes": []}
    assert accounts == {"block_hash": head["hash"], "changes": []}


async def test_unknown_blocks_and_bad_params_fail_as_in_nearcore(near_devnet: NearDevnetProcess) -> None:
    unknown_block = {"name": "UNKNOWN_BLOCK", "info": {}}
    request = {"changes_type": "account_changes", "account_ids": [near_devnet.root.account_id]}
    for method, params in (
        ("EXPERIMENTAL_changes", {"block_id": 10**12, **request}),
        ("EXPERIMENTAL_changes", {"block_id": "11111111111111111111111111111111", **request}),
        ("EXPERIMENTAL_changes_in_block", {"block_id": 10**12}),
    ):
        with pytest.raises(DevnetError) as caught:
            await near_devnet.arpc(method, params)
        error = caught.value.error
        assert (error["name"], error["cause"], error["data"]) == ("HANDLER_ERROR", unknown_block, unknown_block)
    for bad in (
        {"account_ids": [near_devnet.root.account_id]},  # no changes_type
        {"changes_type": "everything", "account_ids": [near_devnet.root.account_id]},
        {"changes_type": "data_changes", "account_ids": [near_devnet.root.account_id]},  # no key_prefix_base64
        {"changes_type": "account_changes", "account_ids": ["Not An Account"]},
    ):
        with pytest.raises(DevnetError) as caught:
            await near_devnet.arpc("EXPERIMENTAL_changes", {"finality": "final", **bad})
        assert caught.value.error["cause"]["name"] == "PARSE_ERROR", bad


async def test_final_agrees_with_the_block_asked_by_height_and_hash(
    near_devnet: NearDevnetProcess, near_account: AccountFactory
) -> None:
    sender = await near_account(await near_devnet.acreate_account("cfin"))
    receiver = await near_devnet.acreate_account("cfinto")
    request = {"changes_type": "account_changes", "account_ids": [sender.account_id, receiver.account_id]}
    done = asyncio.Event()

    async def keep_sending() -> None:
        while not done.is_set():
            await sender.send_money(receiver.account_id, 1)

    sending = asyncio.create_task(keep_sending())
    try:
        for _ in range(2000):  # until the final block is one the transfers changed
            final = await near_devnet.arpc("EXPERIMENTAL_changes", {"finality": "final", **request})
            if final["changes"]:
                break
            await asyncio.sleep(0.005)
        else:
            pytest.fail("the final block never held a transfer")
    finally:
        done.set()
        await sending
    height = await height_of(near_devnet, final["block_hash"])

    by_height = await near_devnet.arpc("EXPERIMENTAL_changes", {"block_id": height, **request})
    by_hash = await near_devnet.arpc("EXPERIMENTAL_changes", {"block_id": final["block_hash"], **request})

    assert by_height == final == by_hash
    in_block = await near_devnet.arpc("EXPERIMENTAL_changes_in_block", {"finality": "final"})
    same = await near_devnet.arpc(
        "EXPERIMENTAL_changes_in_block", {"block_id": await height_of(near_devnet, in_block["block_hash"])}
    )
    assert same == in_block


def test_the_log_keeps_one_change_per_key_and_commit_in_commit_order() -> None:
    """A key written twice in one commit shows once with its final value; the same key changed by two receipts
    of a block shows twice, in commit order, after the keys before it."""
    store = VersionedStore()
    first, second = ChangeCause.receipt("first"), ChangeCause.receipt("second")
    update = StateUpdate(store)
    update.set_account("a.near", AccountRecord(amount=1))
    update.put_record(data_key("a.near", b"k"), b"1")
    update.put_record(data_key("a.near", b"k"), b"2")
    update.put_record(data_key("a.near", b"b"), b"x")
    update.commit(5, first)
    update.put_record(data_key("a.near", b"k"), None)
    update.commit(5, second)

    found = select_changes(store.changes_at(5), "data", "a.near")

    assert [(change.cause, change.key, change.value) for change in found] == [
        (first, data_key("a.near", b"b"), b"x"),
        (first, data_key("a.near", b"k"), b"2"),
        (second, data_key("a.near", b"k"), None),
    ]
    # Both commits changed the account's storage usage.
    accounts = select_changes(store.changes_at(5), "account", "a.near")
    assert [(change.cause, change.key) for change in accounts] == [
        (first, account_key("a.near")),
        (second, account_key("a.near")),
    ]
    assert store.changes_at(4) == ()
    assert select_changes(store.changes_at(5), "access_key", "a.near", public_key=PublicKey.ed25519(bytes(32))) == []
