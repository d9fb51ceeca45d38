"""The launcher itself: anvil's lifecycle and the deployment description other processes read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from swap_devnet.evm import (
    MAX_UINT256,
    Anvil,
    AnvilError,
    EvmDeployment,
    increase_time,
    latest_timestamp,
    mine,
    sha256_hashlock,
)
from web3 import Web3
from web3.contract import Contract

pytestmark = pytest.mark.integration


def test_anvil_stops_and_leaves_no_process(tmp_path: Path) -> None:
    node = Anvil(log_dir=tmp_path, block_time=1)
    with node:
        assert node.running
        assert Web3(Web3.HTTPProvider(node.rpc_url)).eth.chain_id == 31337
        pid = node.pid
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not node.running
    assert (tmp_path / "anvil.log").is_file()
    with pytest.raises(AnvilError):
        _ = node.rpc_url


def test_anvil_that_cannot_start_reports_its_output() -> None:
    node = Anvil(extra_args=["--no-such-flag"], startup_timeout=10)
    with pytest.raises(AnvilError, match="no-such-flag"):
        node.start()
    assert not node.running


def test_deployment_json_round_trip(evm: EvmDeployment, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "evm.json"
    evm.write(path)
    assert EvmDeployment.read(path) == evm
    assert EvmDeployment.from_json(evm.to_json()) == evm


def test_deploy_funds_and_approves(evm: EvmDeployment, token: Contract) -> None:
    assert token.functions.decimals().call() == 6
    assert token.functions.symbol().call() == "TUSD"
    assert token.functions.owner().call() == evm.deployer.address
    for holder in (evm.maker, evm.resolver):
        assert token.functions.balanceOf(holder.address).call() >= 1_000_000 * 10**6 // 2
    assert token.functions.allowance(evm.resolver.address, evm.escrow_dst).call() == MAX_UINT256
    assert token.functions.allowance(evm.maker.address, evm.escrow_src).call() == MAX_UINT256
    assert [evm.deployer.address, evm.resolver.address, evm.maker.address, evm.receiver.address] == [
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    ]


def test_time_helpers_move_the_chain_clock(w3: Web3) -> None:
    start = latest_timestamp(w3)
    increase_time(w3, 3600)
    assert latest_timestamp(w3) >= start + 3600
    number = w3.eth.block_number
    mine(w3, 3)
    assert w3.eth.block_number == number + 3


def test_hashlock_is_sha256() -> None:
    assert sha256_hashlock(bytes(32)).hex() == "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
    with pytest.raises(ValueError):
        sha256_hashlock(b"short")
