"""`python -m swap_devnet.deploy` (docs/deploy.md, "Testnets"): the escrows to a real anvil and the HTLC to an
account of the NEAR devnet, as an operator runs them against BASE Sepolia and NEAR testnet; the settings
file each writes is all a chain service needs besides the resolver's key, which the service then serves
from (GetChainInfo names the contracts; a lock is made on the new HTLC)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap_devnet.artifacts import load_artifact
from swap_devnet.evm import Anvil, dev_account
from swap_devnet.near import NEAR, KeyPair, NearDevnetProcess
from swap_devnet.procs import ServiceProcess
from web3 import Web3

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def deploy(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swap_devnet.deploy", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    with Anvil(log_dir=tmp_path_factory.mktemp("anvil")) as node:
        yield node


@pytest.fixture(scope="module")
def near(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NearDevnetProcess]:
    work = tmp_path_factory.mktemp("near")
    with NearDevnetProcess(out=work / "near.json", log_dir=work) as devnet:
        yield devnet


@contextlib.asynccontextmanager
async def serve(
    name: str, module: str, env: dict[str, str], logs: Path
) -> AsyncIterator[chain_pb2_grpc.ChainServiceStub]:
    """The chain service as a process, configured from `env` alone."""
    proc = ServiceProcess(name, module, env, logs)
    env[f"{proc.prefix}PORT"] = str(proc.port)
    with proc:
        async with grpc.aio.insecure_channel(proc.address) as channel:
            yield chain_pb2_grpc.ChainServiceStub(channel)


async def test_the_escrows_deploy_to_an_evm_rpc_and_chain_base_serves_from_the_settings(
    anvil: Anvil, tmp_path: Path
) -> None:
    out = tmp_path / "base.env"
    missing = deploy("base", "--rpc-url", anvil.rpc_url, "--out", str(out), env={"DEPLOYER_PRIVATE_KEY": ""})
    assert missing.returncode == 2 and "DEPLOYER_PRIVATE_KEY is not set" in missing.stderr
    key = {"DEPLOYER_PRIVATE_KEY": dev_account(0).private_key}
    nobody = deploy("base", "--rpc-url", "http://127.0.0.1:1", "--out", str(out), env=key)
    assert nobody.returncode == 2 and "no EVM JSON-RPC answers at http://127.0.0.1:1" in nobody.stderr
    assert not out.exists()

    done = deploy(
        "base", "--rpc-url", anvil.rpc_url, "--out", str(out), env={"DEPLOYER_PRIVATE_KEY": dev_account(0).private_key}
    )
    assert done.returncode == 0, done.stderr
    settings = read_env(out)
    assert settings["CHAIN_BASE_RPC_URL"] == anvil.rpc_url and settings["CHAIN_BASE_CHAIN_ID"] == "31337"
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    for name, setting in (("EscrowSrc", "CHAIN_BASE_ESCROW_SRC"), ("EscrowDst", "CHAIN_BASE_ESCROW_DST")):
        contract = w3.eth.contract(address=Web3.to_checksum_address(settings[setting]), abi=load_artifact(name).abi)
        assert len(w3.eth.get_code(contract.address)) > 0, name
    assert 0 < int(settings["CHAIN_BASE_START_BLOCK"]) <= w3.eth.block_number

    # The service reads the file itself (docs/deploy.md, "Configure the services"); the resolver's key apart.
    env = {"CHAIN_BASE_SETTINGS_FILE": str(out), "CHAIN_BASE_RESOLVER_KEY": dev_account(1).private_key}
    async with serve("chain-base", "chain_base.main", env, tmp_path) as chain:
        info = await chain.GetChainInfo(chain_pb2.GetChainInfoRequest(), timeout=10)
        assert (info.escrow_src, info.escrow_dst) == (
            settings["CHAIN_BASE_ESCROW_SRC"],
            settings["CHAIN_BASE_ESCROW_DST"],
        )
        assert info.resolver == dev_account(1).address


async def test_the_htlc_deploys_to_a_near_account_and_chain_near_locks_on_it(
    near: NearDevnetProcess, tmp_path: Path
) -> None:
    key = KeyPair.generate()
    poor = await near.acreate_account("poorhtlc", balance=NEAR // 10, keys=[key])
    out = tmp_path / "near.env"
    args = ["near", "--rpc-url", near.rpc_url, "--out", str(out)]
    short = deploy(*args, "--account", poor.account_id, env={"NEAR_DEPLOYER_KEY": key.secret_key_text})
    assert short.returncode == 2 and "fund it first" in short.stderr
    assert not out.exists()

    account = await near.acreate_account("newhtlc", balance=5 * NEAR, keys=[key])
    token = near.deployment.token_id
    args += ["--account", account.account_id, "--token", token]
    done = deploy(*args, env={"NEAR_DEPLOYER_KEY": key.secret_key_text})
    assert done.returncode == 0, done.stderr
    settings = read_env(out)
    assert settings["CHAIN_NEAR_HTLC_ACCOUNT"] == account.account_id
    assert settings["CHAIN_NEAR_NETWORK_ID"] == near.deployment.chain_id
    assert await near.aview(account.account_id, "storage_fee") == str(10**22)
    assert await near.aview(account.account_id, "token_allowlist") == [token]
    # Again: the account runs this HTLC already, so nothing is sent and the settings stay.
    balance = await near.abalance(account.account_id)
    again = deploy(*args, env={"NEAR_DEPLOYER_KEY": key.secret_key_text})
    assert again.returncode == 0 and "kept" in again.stderr
    assert await near.abalance(account.account_id) == balance
    assert read_env(out) == settings  # the start block stays the deployment's

    resolver = near.deployment.resolver
    env = {
        **settings,
        "CHAIN_NEAR_RESOLVER_ACCOUNT": resolver.account_id,
        "CHAIN_NEAR_RESOLVER_KEY": resolver.private_key,
        "CHAIN_NEAR_POLL_INTERVAL_S": "0.1",
    }
    async with serve("chain-near", "chain_near.main", env, tmp_path) as chain:
        info = await chain.GetChainInfo(chain_pb2.GetChainInfoRequest(), timeout=10)
        assert (info.escrow_src, info.escrow_dst) == (account.account_id, account.account_id)
        terms = chain_pb2.LockTerms(
            token="native",
            amount=str(NEAR // 100),
            beneficiary=near.deployment.receiver.account_id,
            hashlock=os.urandom(32),
            timelocks=common_pb2.Timelocks(
                withdrawal_after_s=10,
                public_withdrawal_after_s=20,
                cancellation_after_s=100,
                public_cancellation_after_s=200,
            ),
        )
        created = await chain.CreateLock(
            chain_pb2.CreateLockRequest(terms=terms, resolver=chain_pb2.ResolverFunding(salt="1")), timeout=30
        )
        assert created.sent and created.lock.state == chain_pb2.LOCK_STATE_ACTIVE
        on_chain = await near.aview(account.account_id, "get_lock", {"lock_id": created.lock.lock_id})
        assert (on_chain["state"], on_chain["amount"]) == ("active", str(NEAR // 100))
