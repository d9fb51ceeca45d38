"""The compose stack's one-shot deployer: puts the escrows and the test token on the anvil container, and
publishes both devnets' deployment JSON files and the services' settings files on the shared volume.

The NEAR devnet bootstraps its own accounts and writes what it knows, with the address it bound (0.0.0.0);
the copy published here carries the address other containers reach it at. A deployment already on the
volume is kept while its contracts are still on the chain, so a `docker compose up` that runs this again
does not move the escrows under running services. The settings files (dotenv, what `<PREFIX>_SETTINGS_FILE`
names) are chain-base.env, chain-near.env and quote.env: the contracts, the resolver's accounts and keys, and
the test tokens of these devnets.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from swap_devnet.deploy import write_env
from swap_devnet.evm import EvmDeployment, deploy
from swap_devnet.near.bootstrap import NearDeployment
from web3 import Web3

log = logging.getLogger("deploy_devnets")


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def _await_rpc(url: str, timeout: float) -> Web3:
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 5}))
    deadline = time.monotonic() + timeout
    while True:
        try:
            w3.eth.chain_id  # noqa: B018
            return w3
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no EVM JSON-RPC at {url} after {timeout:g}s: {exc}") from exc
            time.sleep(0.5)


def _still_deployed(w3: Web3, path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        known = EvmDeployment.read(path)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return False
    if known.chain_id != w3.eth.chain_id:
        return False
    return all(len(w3.eth.get_code(address)) > 0 for address in (known.escrow_src, known.escrow_dst, known.token))


def deploy_evm(rpc_url: str, out: Path, timeout: float) -> None:
    w3 = _await_rpc(rpc_url, timeout)
    if _still_deployed(w3, out):
        log.info("EVM contracts of %s are still on %s: kept", out, rpc_url)
        return
    # The contract artifacts are found the way swap_devnet always finds them (see devnet.Dockerfile).
    deployment = deploy(rpc_url)
    deployment.write(out)
    log.info(
        "EscrowSrc %s, EscrowDst %s, TestToken %s: written to %s",
        deployment.escrow_src,
        deployment.escrow_dst,
        deployment.token,
        out,
    )


def publish_near(devnet_file: Path, rpc_url: str, out: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not devnet_file.is_file():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the NEAR devnet wrote no {devnet_file} within {timeout:g}s")
        time.sleep(0.5)
    data = json.loads(devnet_file.read_text())
    data["rpc_url"] = rpc_url
    _write_atomically(out, json.dumps(data, indent=2) + "\n")
    log.info("NEAR devnet deployment published to %s (rpc %s)", out, rpc_url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--evm-rpc", default="http://anvil:8545", help="anvil as the services reach it")
    parser.add_argument(
        "--near-rpc", default="http://near-devnet:3030", help="the NEAR devnet as the services reach it"
    )
    parser.add_argument("--near-devnet-file", type=Path, default=Path("/state/near-devnet.json"))
    parser.add_argument("--out-dir", type=Path, default=Path("/state"), help="where evm.json and near.json go")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each chain")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    deploy_evm(args.evm_rpc, args.out_dir / "evm.json", args.timeout)
    publish_near(args.near_devnet_file, args.near_rpc, args.out_dir / "near.json", args.timeout)
    write_settings(args.out_dir)
    return 0


def write_settings(out_dir: Path) -> None:
    """The services' settings files for the deployments in `out_dir`."""
    evm = EvmDeployment.read(out_dir / "evm.json")
    near = NearDeployment.read(out_dir / "near.json")
    write_env(out_dir / "chain-base.env", dict(evm.chain_base_settings()))
    write_env(out_dir / "chain-near.env", dict(near.chain_near_settings()))
    write_env(out_dir / "quote.env", {"QUOTE_BASE_TOKEN_ADDRESS": evm.token, "QUOTE_NEAR_TOKEN_ACCOUNT": near.token_id})
    log.info("settings of chain-base, chain-near and quote written to %s", out_dir)


if __name__ == "__main__":
    raise SystemExit(main())
