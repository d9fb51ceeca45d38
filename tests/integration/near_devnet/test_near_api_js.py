"""NEAR's JavaScript client, near-api-js from npm (what the web page's wallet code uses), against the devnet from
Node: an account's state, a function call with a deposit, a transfer, and the refusals of a stale nonce, an
unknown key and a bad signature, each as near-api-js names it (near_api_js_client.mjs makes the calls)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from swap_devnet.near import NEAR, KeyPair, NearDevnetProcess

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
GAS_BOUND = NEAR // 100


async def test_near_api_js_reads_calls_transfers_and_sees_each_refusal(near_devnet: NearDevnetProcess) -> None:
    key = KeyPair.generate()
    account = await near_devnet.acreate_account("jsclient", balance=5 * NEAR, keys=[key])
    deployment = near_devnet.deployment
    receiver, htlc = deployment.receiver.account_id, deployment.htlc_id
    receiver_before = await near_devnet.abalance(receiver)

    run = await asyncio.to_thread(
        subprocess.run,
        ["node", str(HERE / "near_api_js_client.mjs"), near_devnet.rpc_url, account.account_id,
         key.secret_key_text, receiver, htlc],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out: dict[str, Any] = json.loads(run.stdout)

    # The account's state as near-api-js computes it (it reads the storage price from EXPERIMENTAL_protocol_config).
    state = out["state"]
    assert state["balance"]["total"] == str(5 * NEAR)
    assert state["balance"]["usedOnStorage"] == str(state["storageUsage"] * 10**19)
    # deposit_native with 0.01 NEAR: the HTLC holds it for the account and says so.
    assert out["call"]["status"] == {"SuccessValue": "IjEwMDAwMDAwMDAwMDAwMDAwMDAwMDAwIg=="}  # '"10^22"'
    assert await near_devnet.aview(htlc, "native_balance_of", {"account_id": account.account_id}) == str(10**22)
    assert out["transfer"]["status"] == {"SuccessValue": ""}

    assert out["stale_nonce"]["refused"] and out["stale_nonce"]["type"] == "InvalidNonceError"
    assert out["unknown_key"]["refused"] and out["unknown_key"]["type"] == "AccessKeyNotFoundActionError"
    assert out["bad_signature"]["refused"] and out["bad_signature"]["type"] == "InvalidSignatureError"
    # Only the call and the transfer moved funds: the refused one-yocto transfers did not land.
    assert await near_devnet.abalance(receiver) == receiver_before + NEAR // 10
    after = int(out["state_after"]["balance"]["total"])
    assert after == await near_devnet.abalance(account.account_id)
    assert 5 * NEAR - 10**22 - NEAR // 10 - GAS_BOUND < after < 5 * NEAR - 10**22 - NEAR // 10
