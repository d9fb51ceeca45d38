"""Where chain-near says a withdrawal or refund it sent landed: the block its HTLC event names, read from a
contract's event (no request), or, from a contract whose events do not name it, from the node."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from chain_near.feed import WITHDRAWN
from chain_near.htlc import EVENT_PREFIX, HTLC_STANDARD, Gas, Htlc
from chain_near.rpc import Rpc
from chain_near.tx import Outcome, ReceiptOutcome, TxSender

LOCK_ID = "ab" * 32
WITHDRAWN_LOCK = {
    "lock_id": LOCK_ID,
    "depositor": "maker.test.near",
    "operator": "resolver.test.near",
    "beneficiary": "taker.test.near",
    "token": "native",
    "amount": "1000",
    "safety_deposit": "10",
    "hashlock": "cd" * 32,
    "timelocks": {"withdrawal": "0", "public_withdrawal": "10", "cancellation": "20", "public_cancellation": "30"},
    "locked_at": "1700000000000000000",
    "locked_height": 40,
    "state": "withdrawn",
    "secret": "ef" * 32,
    "caller": "resolver.test.near",
}


class Node:
    """Answers `block` by hash, counting the requests."""

    def __init__(self) -> None:
        self.blocks: list[Any] = []

    async def block(self, *, finality: str | None = None, block_id: int | str | None = None) -> dict[str, Any]:
        self.blocks.append(block_id)
        return {"hash": block_id, "height": 57}


def outcome(data: dict[str, Any]) -> Outcome:
    event = {"standard": HTLC_STANDARD, "version": "1.0.0", "event": WITHDRAWN, "data": [data]}
    payout = ReceiptOutcome("r2", "htlc.test.near", "payout-block", [EVENT_PREFIX + json.dumps(event)], None)
    call = ReceiptOutcome("r1", "htlc.test.near", "call-block", [], None)
    return Outcome(tx_hash="tx1", block_hash="tx-block", receipts=[call, payout], status={"SuccessValue": ""})


def htlc(node: Node) -> Htlc:
    return Htlc(cast(Rpc, node), cast(TxSender, None), "htlc.test.near", Gas(call=1, ft_call=1))


@pytest.mark.parametrize(("named", "height", "requests"), [(56, 56, []), (None, 57, ["payout-block"])])
async def test_a_withdrawal_is_in_the_block_of_its_event(named: int | None, height: int, requests: list[str]) -> None:
    node = Node()
    data = WITHDRAWN_LOCK if named is None else {**WITHDRAWN_LOCK, "block_height": named}
    ref = await htlc(node)._record(LOCK_ID, WITHDRAWN, outcome(data))
    # The payout's receipt logged the event: its block, not the transaction's or the call's.
    assert (ref.tx_hash, ref.block_hash, ref.block_height) == ("tx1", "payout-block", height)
    assert node.blocks == requests
