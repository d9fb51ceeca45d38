"""py-near accounts on the session's NEAR devnet, and the HTLC calls the tests share."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from py_near.account import Account
from py_near.models import TransactionResult
from swap_devnet.near import NearAccount, NearDevnetProcess

NS = 10**9
TGAS = 10**12
NEAR = 10**24
DEFAULT_TIMELOCKS = {"withdrawal": 0, "public_withdrawal": 30, "cancellation": 60, "public_cancellation": 90}

AccountFactory = Callable[..., Awaitable[Account]]


@pytest.fixture
async def near_account(near_devnet: NearDevnetProcess) -> AsyncIterator[AccountFactory]:
    """`await near_account(account)` -> a started py-near Account signing with the account's key(s)."""
    opened: list[Account] = []

    async def open_account(account: NearAccount, private_keys: Sequence[str] | None = None) -> Account:
        keys: Any = list(private_keys) if private_keys else account.private_key
        handle = Account(account.account_id, keys, near_devnet.rpc_url)
        await handle.startup()
        opened.append(handle)
        return handle

    yield open_account
    for handle in opened:
        await handle.shutdown()


def new_secret() -> tuple[str, str]:
    """(secret, hashlock) as 64-char hex strings."""
    secret = secrets.token_bytes(32)
    return secret.hex(), hashlib.sha256(secret).hexdigest()


def timelocks(**seconds: int) -> dict[str, str]:
    values = {**DEFAULT_TIMELOCKS, **seconds}
    return {name: str(value * NS) for name, value in values.items()}


def lock_terms(beneficiary: str, hashlock: str, **extra: Any) -> dict[str, Any]:
    terms: dict[str, Any] = {
        "nonce": extra.pop("nonce", secrets.token_hex(8)),
        "beneficiary": beneficiary,
        "hashlock": hashlock,
        "timelocks": extra.pop("timelocks", timelocks()),
    }
    terms.update(extra)
    return terms


def receipt_logs(result: TransactionResult) -> list[str]:
    # Read logs from the receipt outcomes: py-near's TransactionResult.logs grows on every access.
    return [line for outcome in result.receipt_outcome for line in outcome.logs]


def htlc_events(result: TransactionResult) -> list[dict[str, Any]]:
    events = []
    for line in receipt_logs(result):
        if line.startswith("EVENT_JSON:"):
            event = json.loads(line.removeprefix("EVENT_JSON:"))
            if event["standard"] == "swap_htlc":
                events.append(event)
    return events


async def event_block_height(devnet: NearDevnetProcess, result: TransactionResult, event: str) -> int:
    """The height of the block whose receipt logged the swap_htlc `event` (py-near keeps no receipt's block)."""
    tx = result.transaction
    landed = await devnet.arpc("tx", {"tx_hash": tx.hash, "sender_account_id": tx.signer_id})
    [block_hash] = [
        outcome["block_hash"]
        for outcome in landed["receipts_outcome"]
        if any(line.startswith("EVENT_JSON:") and f'"event":"{event}"' in line for line in outcome["outcome"]["logs"])
    ]
    block = await devnet.arpc("block", {"block_id": block_hash})
    return int(block["header"]["height"])


def success_json(result: TransactionResult) -> Any:
    assert "SuccessValue" in result.status, result.status
    raw = base64.b64decode(result.status["SuccessValue"])
    return json.loads(raw) if raw else None


def panic_of(result: TransactionResult) -> str:
    """The ExecutionError of the first failed receipt."""
    for outcome in result.receipt_outcome:
        if "Failure" in outcome.status:
            kind = outcome.status["Failure"]["ActionError"]["kind"]
            return str(kind["FunctionCallError"]["ExecutionError"])
    raise AssertionError(f"no receipt failed: {result.status}")


def burnt(result: TransactionResult) -> int:
    """yoctoNEAR the transaction burnt, over its own outcome and all receipts."""
    return int(result.transaction_outcome.tokens_burnt) + sum(
        int(outcome.tokens_burnt) for outcome in result.receipt_outcome
    )
