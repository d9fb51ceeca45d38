"""The compose stack's devnet side without Docker: deploy/docker/deploy_devnets.py against a real anvil and a
real NEAR devnet (the processes the compose services run), and the compose health checks of both chains run
against them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from chain_base.config import ChainBaseSettings
from chain_near.config import ChainNearSettings
from quote.config import QuoteSettings
from quote.model import Chain
from swap_devnet.deploy import read_env
from swap_devnet.evm import Anvil, EvmDeployment
from swap_devnet.near.bootstrap import NearDeployment
from swap_devnet.near.process import NearDevnetProcess
from web3 import Web3

from tests.integration.deploy.common import COMPOSE_FILE, DOCKER_DIR

pytestmark = pytest.mark.integration

NEAR_RPC_IN_COMPOSE = "http://near-devnet:3030"


@dataclass
class Chains:
    anvil: Anvil
    near: NearDevnetProcess
    devnet_file: Path
    state: Path


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chains]:
    work = tmp_path_factory.mktemp("devnets")
    devnet_file = work / "near-devnet.json"
    with Anvil(log_dir=work) as anvil, NearDevnetProcess(out=devnet_file, log_dir=work) as near:
        yield Chains(anvil, near, devnet_file, work / "state")


def deployer(chains: Chains) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(DOCKER_DIR / "deploy_devnets.py"),
            "--evm-rpc",
            chains.anvil.rpc_url,
            "--near-rpc",
            NEAR_RPC_IN_COMPOSE,
            "--near-devnet-file",
            str(chains.devnet_file),
            "--out-dir",
            str(chains.state),
            "--timeout",
            "20",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deployer_publishes_both_deployments(chains: Chains, monkeypatch: pytest.MonkeyPatch) -> None:
    result = deployer(chains)
    assert result.returncode == 0, result.stderr
    evm = EvmDeployment.read(chains.state / "evm.json")
    w3 = Web3(Web3.HTTPProvider(chains.anvil.rpc_url))
    assert evm.chain_id == w3.eth.chain_id
    for address in (evm.escrow_src, evm.escrow_dst, evm.token):
        assert len(w3.eth.get_code(address)) > 0
    published = json.loads((chains.state / "near.json").read_text())
    original = json.loads(chains.devnet_file.read_text())
    assert published.pop("rpc_url") == NEAR_RPC_IN_COMPOSE
    original.pop("rpc_url")
    assert published == original
    # The services' settings files: the services start from them alone.
    near = NearDeployment.read(chains.state / "near.json")
    assert read_env(chains.state / "chain-base.env") == evm.chain_base_settings()
    assert read_env(chains.state / "chain-near.env") == near.chain_near_settings()
    assert read_env(chains.state / "quote.env") == {
        "QUOTE_BASE_TOKEN_ADDRESS": evm.token,
        "QUOTE_NEAR_TOKEN_ACCOUNT": near.token_id,
    }
    for prefix in ("CHAIN_BASE", "CHAIN_NEAR", "QUOTE"):
        monkeypatch.setenv(f"{prefix}_SETTINGS_FILE", str(chains.state / f"{prefix.lower().replace('_', '-')}.env"))
    base = ChainBaseSettings()
    assert (base.rpc_url, base.escrow_src, base.tokens) == (evm.rpc_url, evm.escrow_src, [evm.token])
    assert base.resolver_private_key() == evm.resolver.private_key
    near_settings = ChainNearSettings()
    assert (near_settings.htlc_account, near_settings.resolver_account) == (near.htlc_id, near.resolver.account_id)
    # The quote signing key comes from the shell in compose, never from the deployer's files.
    monkeypatch.setenv("QUOTE_SIGNING_KEY", "11" * 32)
    assert QuoteSettings().registry().find(Chain.NEAR, near.token_id) is not None

    # Run again (a second `docker compose up`): the escrows stay where the services know them.
    result = deployer(chains)
    assert result.returncode == 0, result.stderr
    assert EvmDeployment.read(chains.state / "evm.json") == evm


def test_deployer_redeploys_when_the_chain_lost_the_contracts(chains: Chains) -> None:
    """A restarted anvil starts empty: a deployment naming contracts it does not have is replaced."""
    chains.state.mkdir(parents=True, exist_ok=True)
    stale: dict[str, object] = {
        "rpc_url": chains.anvil.rpc_url,
        "chain_id": 31337,
        "deploy_block": 0,
        "escrow_src": "0x" + "11" * 20,
        "escrow_dst": "0x" + "22" * 20,
        "token": "0x" + "33" * 20,
        **{
            role: {"address": "0x" + "44" * 20, "private_key": "0x" + "55" * 32}
            for role in ("deployer", "resolver", "maker", "receiver")
        },
    }
    (chains.state / "evm.json").write_text(json.dumps(stale))
    result = deployer(chains)
    assert result.returncode == 0, result.stderr
    fresh = EvmDeployment.read(chains.state / "evm.json")
    assert fresh.escrow_src != Web3.to_checksum_address("0x" + "11" * 20)
    w3 = Web3(Web3.HTTPProvider(chains.anvil.rpc_url))
    assert len(w3.eth.get_code(fresh.escrow_src)) > 0


def compose_check(service: str) -> list[str]:
    test: list[str] = yaml.safe_load(COMPOSE_FILE.read_text())["services"][service]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    return [sys.executable, "-c", test[3]]


def test_compose_chain_healthchecks(chains: Chains) -> None:
    anvil = compose_check("anvil")
    assert "http://127.0.0.1:8545" in anvil[-1]
    anvil[-1] = anvil[-1].replace("http://127.0.0.1:8545", chains.anvil.rpc_url)
    assert subprocess.run(anvil, check=False, capture_output=True, timeout=30).returncode == 0

    near = compose_check("near-devnet")
    code = near[-1]
    assert "http://127.0.0.1:3030" in code and "/state/near-devnet.json" in code
    near[-1] = code.replace("http://127.0.0.1:3030", chains.near.deployment.rpc_url).replace(
        "/state/near-devnet.json", str(chains.devnet_file)
    )
    assert subprocess.run(near, check=False, capture_output=True, timeout=30).returncode == 0
    near[-1] = near[-1].replace(str(chains.devnet_file), str(chains.devnet_file) + ".missing")
    assert subprocess.run(near, check=False, capture_output=True, timeout=30).returncode != 0
