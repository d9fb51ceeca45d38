"""Deploys the swap contracts to a network and writes the settings the chain services read from it.

    python -m swap_devnet.deploy base --rpc-url URL --out base.env
        EscrowSrc and EscrowDst (contracts/build, `make contracts`) to any EVM JSON-RPC (BASE Sepolia, BASE,
        anvil), signed with the key in DEPLOYER_PRIVATE_KEY (0x-hex; the account pays the gas).
    python -m swap_devnet.deploy near --rpc-url URL --account ACCOUNT --out near.env
        The HTLC (contracts/build/near/swap_htlc.wasm) to ACCOUNT on any NEAR JSON-RPC (testnet, mainnet, the
        devnet), in one transaction with its `new`, signed with a full-access key of ACCOUNT in
        NEAR_DEPLOYER_KEY (ed25519:<base58>). ACCOUNT must exist and hold about 1.2 NEAR for its storage.

The file written is a dotenv file of the service's settings (CHAIN_BASE_* / CHAIN_NEAR_*: RPC URL, network,
contract addresses or account, start block), for `docker compose --env-file`, a Kubernetes ConfigMap
(`kubectl create configmap --from-env-file`) or a shell. The resolver's account and key are not in it:
they are the operator's and come from a Secret.

Running it again keeps what is already there: the NEAR HTLC is not redeployed while its account runs the
same code; the BASE escrows are always new contracts (pass the previous file's settings on to keep them).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import base58
from py_near import transactions
from py_near.account import Account as NearAccount
from web3 import Web3

from swap_devnet.artifacts import ArtifactError, load_artifact, near_wasm
from swap_devnet.evm import send_transaction

log = logging.getLogger("swap_devnet.deploy")

EVM_KEY_ENV = "DEPLOYER_PRIVATE_KEY"
NEAR_KEY_ENV = "NEAR_DEPLOYER_KEY"
TGAS = 10**12
_INIT_GAS = 100 * TGAS
# Storage staking of the HTLC's code and first state: 10^19 yoctoNEAR per byte.
_STORAGE_PRICE = 10**19


class DeployError(RuntimeError):
    """Something the operator has to fix: named in one line, exit code 2."""


def _key(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise DeployError(f"{name} is not set: the deploying account's key comes from the environment")
    return value


def write_env(path: Path, settings: dict[str, str | int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text("".join(f"{name}={value}\n" for name, value in settings.items()))
    partial.replace(path)


def read_env(path: Path) -> dict[str, str]:
    """A settings file this command wrote (empty when there is none)."""
    if not path.is_file():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def deploy_base(rpc_url: str, out: Path) -> dict[str, str | int]:
    key = _key(EVM_KEY_ENV)
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:
        raise DeployError(f"no EVM JSON-RPC answers at {rpc_url}: {exc}") from None
    addresses: dict[str, str] = {}
    first_block = 0
    for name in ("EscrowSrc", "EscrowDst"):
        artifact = load_artifact(name)
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = send_transaction(w3, key, factory.constructor(), timeout=300)
        address = receipt["contractAddress"]
        if address is None:
            raise DeployError(f"{name}: the deployment transaction created no contract")
        addresses[name] = Web3.to_checksum_address(address)
        first_block = first_block or int(receipt["blockNumber"])
        log.info("deployed %s at %s (block %s)", name, address, receipt["blockNumber"])
    settings: dict[str, str | int] = {
        "CHAIN_BASE_RPC_URL": rpc_url,
        "CHAIN_BASE_CHAIN_ID": chain_id,
        "CHAIN_BASE_ESCROW_SRC": addresses["EscrowSrc"],
        "CHAIN_BASE_ESCROW_DST": addresses["EscrowDst"],
        "CHAIN_BASE_START_BLOCK": first_block,
    }
    write_env(out, settings)
    return settings


async def _near_rpc(rpc_url: str, method: str, params: object) -> Any:
    body = {"jsonrpc": "2.0", "id": "deploy", "method": method, "params": params}
    async with aiohttp.ClientSession() as http, http.post(rpc_url, json=body) as reply:
        answer = await reply.json(content_type=None)
    if "error" in answer:
        raise DeployError(f"{method}: {json.dumps(answer['error'])[:300]}")
    return answer["result"]


async def deploy_near(
    rpc_url: str, account_id: str, out: Path, token_allowlist: Sequence[str] | None, min_lock_amount: int | None
) -> dict[str, str | int]:
    key = _key(NEAR_KEY_ENV)
    code = near_wasm("swap_htlc")
    code_hash = base58.b58encode(hashlib.sha256(code).digest()).decode()
    try:
        status = await _near_rpc(rpc_url, "status", [])
        view = await _near_rpc(
            rpc_url, "query", {"request_type": "view_account", "finality": "final", "account_id": account_id}
        )
    except aiohttp.ClientError as exc:
        raise DeployError(f"no NEAR JSON-RPC answers at {rpc_url}: {exc}") from None
    needed = (len(code) + 2_000) * _STORAGE_PRICE
    if view["code_hash"] == code_hash:
        log.info("%s already runs this HTLC (code hash %s): kept", account_id, code_hash)
        # The block it was deployed in is the previous file's, when it describes this account.
        previous = read_env(out)
        if previous.get("CHAIN_NEAR_HTLC_ACCOUNT") == account_id and previous.get("CHAIN_NEAR_START_BLOCK"):
            start_block = int(previous["CHAIN_NEAR_START_BLOCK"])
        else:
            start_block = int(view["block_height"])
    else:
        if int(view["amount"]) < needed:
            raise DeployError(
                f"{account_id} holds {view['amount']} yoctoNEAR; the HTLC's storage needs about {needed}: fund it first"
            )
        init: dict[str, object] = {"owner_id": account_id, "token_allowlist": list(token_allowlist or []) or None}
        if min_lock_amount is not None:
            init["min_lock_amount"] = str(min_lock_amount)
        # Events cannot come before the HTLC exists: the final block before deploying is a safe start.
        start_block = int((await _near_rpc(rpc_url, "block", {"finality": "final"}))["header"]["height"])
        signer = NearAccount(account_id, key, rpc_url)
        await signer.startup()
        try:
            result = await signer.sign_and_submit_tx(
                account_id,
                [
                    transactions.create_deploy_contract_action(code),
                    transactions.create_function_call_action("new", json.dumps(init).encode(), _INIT_GAS, 0),
                ],
            )
        finally:
            await signer.shutdown()
        if "Failure" in (result.status or {}):
            raise DeployError(f"deploying to {account_id} failed: {json.dumps(result.status)[:500]}")
        log.info("deployed the HTLC to %s in transaction %s", account_id, result.transaction.hash)
    settings: dict[str, str | int] = {
        "CHAIN_NEAR_RPC_URL": rpc_url,
        "CHAIN_NEAR_NETWORK_ID": str(status["chain_id"]),
        "CHAIN_NEAR_HTLC_ACCOUNT": account_id,
        "CHAIN_NEAR_START_BLOCK": start_block,
    }
    write_env(out, settings)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swap_devnet.deploy", description=__doc__.split("\n\n")[0])
    chains = parser.add_subparsers(dest="chain", required=True)
    base = chains.add_parser("base", help=f"the BASE escrows; key from {EVM_KEY_ENV}")
    base.add_argument("--rpc-url", required=True)
    base.add_argument("--out", type=Path, required=True, help="dotenv file of the chain-base settings")
    near = chains.add_parser("near", help=f"the NEAR HTLC; key from {NEAR_KEY_ENV}")
    near.add_argument("--rpc-url", required=True)
    near.add_argument("--account", required=True, help="the account the HTLC runs on (it must exist)")
    near.add_argument("--out", type=Path, required=True, help="dotenv file of the chain-near settings")
    near.add_argument("--token", action="append", default=[], help="a NEP-141 token to accept (repeat; none: any)")
    near.add_argument("--min-lock-amount", type=int, default=None, help="smallest native lock, yoctoNEAR")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.chain == "base":
            settings = deploy_base(args.rpc_url, args.out)
        else:
            settings = asyncio.run(deploy_near(args.rpc_url, args.account, args.out, args.token, args.min_lock_amount))
    except (DeployError, ArtifactError) as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
