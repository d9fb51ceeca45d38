"""The devnet as py-near sees it: status, blocks, views, transactions (also many in parallel from several keys of
one account), nearcore's error envelopes, and the runner's synchronous controls."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import base58
import pytest
from py_near import transactions
from py_near.account import ViewFunctionError
from py_near.exceptions.provider import (
    Expired,
    InvalidAccessKeyError,
    InvalidNonce,
    InvalidSignature,
    UnknownAccount,
)
from swap_devnet.near import KeyPair, NearDevnetProcess, lock_id_for

from tests.integration.near_devnet.conftest import NEAR, NS, TGAS, AccountFactory, burnt, receipt_logs

pytestmark = pytest.mark.integration


async def test_status_and_finality(near_devnet: NearDevnetProcess) -> None:
    status = await near_devnet.arpc("status", [])
    assert status["chain_id"] == "localnet"
    assert status["sync_info"]["syncing"] is False
    head = await near_devnet.arpc("block", {"finality": "optimistic"})
    final = await near_devnet.arpc("block", {"finality": "final"})
    assert final["header"]["height"] < head["header"]["height"]
    by_height = await near_devnet.arpc("block", [final["header"]["height"]])
    assert by_height["header"]["hash"] == final["header"]["hash"]
    chunk = await near_devnet.arpc("chunk", {"block_id": final["header"]["height"], "shard_id": 0})
    assert chunk["header"]["chunk_hash"] == final["chunks"][0]["chunk_hash"]
    assert await near_devnet.arpc("gas_price", [None]) == {"gas_price": "100000000"}


async def test_view_calls(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    maker = await near_account(near_devnet.maker)
    metadata = await maker.view_function(near_devnet.token.account_id, "ft_metadata", {})
    assert metadata.result["symbol"] == "TUSD"
    assert metadata.result["decimals"] == 6
    balance = await maker.view_function(
        near_devnet.token.account_id, "ft_balance_of", {"account_id": near_devnet.maker.account_id}
    )
    assert int(balance.result) > 0
    lock_id = await maker.view_function(
        near_devnet.htlc.account_id, "lock_id_for", {"depositor": "alice.test.near", "nonce": "n-1"}
    )
    assert lock_id.result == hashlib.sha256(b"alice.test.near:n-1").hexdigest()

    with pytest.raises(ViewFunctionError, match="MethodNotFound"):
        await maker.view_function(near_devnet.htlc.account_id, "no_such_method", {})
    with pytest.raises(ViewFunctionError, match="GuestPanic"):
        await maker.view_function(near_devnet.token.account_id, "ft_balance_of", {"account_id": "NOT VALID"})
    # A change method reaching a host function nearcore refuses in views (here the predecessor) fails the view.
    with pytest.raises(ViewFunctionError, match="ProhibitedInView"):
        await maker.view_function(near_devnet.htlc.account_id, "withdraw_native", {"amount": "1"})
    with pytest.raises(UnknownAccount):
        await maker.provider.get_account("nobody.test.near")
    missing_key = await maker.provider.get_access_key(near_devnet.maker.account_id, KeyPair.generate().public_key_text)
    assert "does not exist while viewing" in missing_key["error"]


async def test_transfer_moves_balances(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    sender_account = await near_devnet.acreate_account("sender")
    receiver_account = await near_devnet.acreate_account("receiver", balance=NEAR)
    sender = await near_account(sender_account)
    before = await near_devnet.abalance(sender_account.account_id)
    result = await sender.send_money(receiver_account.account_id, 3 * NEAR)
    assert result.status == {"SuccessValue": ""}
    assert await near_devnet.abalance(receiver_account.account_id) == 4 * NEAR
    # The transfer burns the same fees as on nearcore: 223182562500 gas to convert, again to execute.
    assert result.transaction_outcome.gas_burnt == 223_182_562_500
    assert burnt(result) == 2 * 223_182_562_500 * 100_000_000
    assert await near_devnet.abalance(sender_account.account_id) == before - 3 * NEAR - burnt(result)


async def test_stale_nonce_is_rejected(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    account = await near_devnet.acreate_account("nonce")
    signer = await near_account(account)
    await signer.send_money(near_devnet.receiver.account_id, 1)
    key = account.key
    access_key = await signer.provider.get_access_key(account.account_id, key.public_key_text)
    head = await near_devnet.arpc("block", {"finality": "final"})
    signed = transactions.sign_and_serialize_transaction(
        account.account_id,
        key.seed + key.public_key,
        near_devnet.receiver.account_id,
        access_key["nonce"],
        [transactions.create_transfer_action(2)],
        base58.b58decode(head["header"]["hash"]),
    )
    with pytest.raises(InvalidNonce) as caught:
        await signer.provider.send_tx_and_wait(signed)
    assert caught.value.tx_nonce == access_key["nonce"]
    assert caught.value.ak_nonce == access_key["nonce"]


async def test_bad_signature_and_expired_block_hash(
    near_devnet: NearDevnetProcess, near_account: AccountFactory
) -> None:
    account = await near_devnet.acreate_account("badsig")
    signer = await near_account(account)
    key = account.key
    access_key = await signer.provider.get_access_key(account.account_id, key.public_key_text)
    head = await near_devnet.arpc("block", {"finality": "final"})

    def signed_transfer(block_hash: bytes) -> str:
        return str(
            transactions.sign_and_serialize_transaction(
                account.account_id,
                key.seed + key.public_key,
                near_devnet.receiver.account_id,
                access_key["nonce"] + 1,
                [transactions.create_transfer_action(1)],
                block_hash,
            )
        )

    raw = bytearray(base64.b64decode(signed_transfer(base58.b58decode(head["header"]["hash"]))))
    raw[-1] ^= 0x01
    with pytest.raises(InvalidSignature):
        await signer.provider.send_tx_and_wait(base64.b64encode(bytes(raw)).decode())
    with pytest.raises(Expired):
        await signer.provider.send_tx_and_wait(signed_transfer(bytes(32)))
    assert await near_devnet.abalance(account.account_id) == 1000 * NEAR


async def test_function_call_access_key(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    account = await near_devnet.acreate_account("fckey")
    owner = await near_account(account)
    limited_key = KeyPair.generate()
    added = await owner.add_public_key(
        limited_key.public_key_text, near_devnet.htlc.account_id, ["native_balance_of", "lock_id_for"]
    )
    assert added.status == {"SuccessValue": ""}
    limited = await near_account(account, [limited_key.secret_key_text])
    allowed = await limited.function_call(
        near_devnet.htlc.account_id, "native_balance_of", {"account_id": account.account_id}, gas=10 * TGAS
    )
    assert allowed.status["SuccessValue"]
    with pytest.raises(InvalidAccessKeyError) as wrong_receiver:
        await limited.function_call(near_devnet.token.account_id, "ft_metadata", {}, gas=10 * TGAS)
    assert wrong_receiver.value.error_json["data"]["TxExecutionError"]["InvalidTxError"]["InvalidAccessKeyError"] == {
        "ReceiverMismatch": {"tx_receiver": near_devnet.token.account_id, "ak_receiver": near_devnet.htlc.account_id}
    }
    with pytest.raises(InvalidAccessKeyError):
        await limited.function_call(near_devnet.htlc.account_id, "deposit_native", {}, gas=10 * TGAS)


async def test_transaction_status_methods(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    account = await near_devnet.acreate_account("status")
    signer = await near_account(account)
    tx_hash = await signer.function_call(
        near_devnet.htlc.account_id, "deposit_native", {}, gas=30 * TGAS, amount=NEAR, included=True
    )
    assert isinstance(tx_hash, str)
    result = await near_devnet.arpc(
        "tx", {"tx_hash": tx_hash, "sender_account_id": account.account_id, "wait_until": "FINAL"}
    )
    assert result["final_execution_status"] == "FINAL"
    assert base64.b64decode(result["status"]["SuccessValue"]) == f'"{NEAR}"'.encode()
    by_provider = await signer.provider.get_tx(tx_hash, account.account_id)
    assert by_provider.transaction.hash == tx_hash
    detailed = await signer.provider.get_tx_status(tx_hash, account.account_id)
    assert detailed.receipts and detailed.receipts[0]["receiver_id"] == near_devnet.htlc.account_id
    assert [outcome.receipt_id for outcome in detailed.receipt_outcome] == [
        outcome["id"] for outcome in result["receipts_outcome"]
    ]
    assert receipt_logs(by_provider) == []


async def test_meta_transaction_is_paid_by_the_relayer(
    near_devnet: NearDevnetProcess, near_account: AccountFactory
) -> None:
    user_account = await near_devnet.acreate_account("user")
    relayer_account = await near_devnet.acreate_account("relayer")
    user, relayer = await near_account(user_account), await near_account(relayer_account)
    call = transactions.create_function_call_action("deposit_native", b"{}", 30 * TGAS, 5)
    delegate = await user.create_delegate_action([call], near_devnet.htlc.account_id)

    result = await relayer.call_delegate_transaction(delegate, user.sign_delegate_transaction(delegate))

    assert [outcome.status for outcome in result.receipt_outcome][:2] == [
        {"SuccessValue": ""},
        {"SuccessValue": "IjUi"},
    ]
    balance = await near_devnet.aview(
        near_devnet.htlc.account_id, "native_balance_of", {"account_id": user_account.account_id}
    )
    assert balance == "5"
    assert await near_devnet.abalance(user_account.account_id) == 1000 * NEAR
    assert await near_devnet.abalance(relayer_account.account_id) == 1000 * NEAR - 5 - burnt(result)


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
    assert near_devnet.root.account_id == "test.near"
