"""The throughput section's size and its chain-bound ceiling: the defaults, and the order the ceiling signs."""

from __future__ import annotations

import hashlib

from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from swap_devnet.evm import EvmDeployment, dev_account, order_digest

from bench.__main__ import _parse
from bench.ceiling import _order_typed_data
from bench.goals import GOALS, judge


def test_the_full_run_puts_500_swaps_in_flight_the_smoke_run_20_and_the_option_sets_it() -> None:
    assert _parse([]).throughput_swaps == 500
    assert _parse(["--smoke"]).throughput_swaps == 20
    assert _parse(["--smoke", "--throughput-swaps", "100"]).throughput_swaps == 100


def test_the_efficiency_goal_is_judged_from_the_throughput_section() -> None:
    goal = next(g for g in GOALS if g.path == ("throughput", "efficiency"))
    assert not goal.note  # measured now: the ceiling runs beside the orchestrator's batch
    rows = {row["goal"]: row for row in judge({"throughput": {"efficiency": 0.82, "in_flight": 500}})["targets"]}
    assert (rows[goal.name]["measured"], rows[goal.name]["pass"]) == (0.82, True)


def test_the_ceiling_signs_the_order_chain_base_hands_to_wallets() -> None:
    """The bare client builds EscrowSrc's typed data itself; its digest (the escrow id) must be chain-base's."""
    maker, resolver = dev_account(2), dev_account(5)
    evm = EvmDeployment(
        rpc_url="http://127.0.0.1:8545",
        chain_id=31337,
        deploy_block=1,
        escrow_src=dev_account(7).address,
        escrow_dst=dev_account(8).address,
        token=dev_account(9).address,
        deployer=dev_account(0),
        resolver=dev_account(1),
        maker=maker,
        receiver=dev_account(3),
    )
    order = {
        "maker": maker.address,
        "resolver": resolver.address,
        "token": evm.token,
        "amount": 10_000_000,
        "hashlock": hashlib.sha256(b"secret").digest(),
        "timelocks": {"withdrawal": 2, "publicWithdrawal": 60, "cancellation": 120, "publicCancellation": 180},
        "safetyDeposit": 10**15,
        "dstTermsHash": hashlib.sha256(b"terms").digest(),
        "nonce": 12345678901234567890,
        "deadline": 1_800_000_000,
    }
    signable = encode_typed_data(full_message=_order_typed_data(evm, order))
    ours = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert ours == order_digest(evm.chain_id, evm.escrow_src, order)
