"""The devnet faucet: test funds for your own keys on the local chains that `make run` started.

    python -m swap_devnet.faucet --base 0xYourAddress --near you.test.near --near-public-key ed25519:...

BASE: sends ETH (gas) from the deployer account and mints TUSD to the address (the deployer owns the
TestToken). NEAR: creates the account with your public key when it does not exist yet (a sub-account of the
devnet's root, `<name>.test.near`), sends NEAR, registers it with the TUSD token (storage deposit, paid by the
root) and mints TUSD to it. Everything goes through ordinary signed transactions on the chains' RPC.

It works only on the devnet: it signs with the keys in the devnet's deployment files (`.localnet/evm.json`,
`.localnet/near.json`), which exist nowhere else. It prints what it did as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from py_near.account import Account as NearClient
from py_near.exceptions.provider import UnknownAccount
from web3 import Web3
from web3.types import TxParams, Wei

from swap_devnet.evm import EvmDeployment, send_transaction
from swap_devnet.near.bootstrap import STORAGE_BALANCE_MIN, NearDeployment
from swap_devnet.near.fees import TGAS
from swap_devnet.near.ids import is_valid_account_id

DEFAULT_ETH = Decimal(10)
DEFAULT_NEAR = Decimal(50)
DEFAULT_TUSD = Decimal(1_000)
ETH_DECIMALS = 18
NEAR_DECIMALS = 24
_CALL_GAS = 30 * TGAS


class FaucetError(RuntimeError):
    """A request the faucet cannot serve; the message says what to change."""


def base_units(amount: Decimal, decimals: int) -> int:
    value = amount.scaleb(decimals)
    if value != value.to_integral_value() or value < 0:
        raise FaucetError(f"{amount} has more than {decimals} decimal places or is negative")
    return int(value)


@dataclass(frozen=True)
class Grant:
    """What one faucet call gives, in base units."""

    native: int
    tusd: int


def fund_base(deployment: EvmDeployment, address: str, grant: Grant) -> dict[str, Any]:
    """ETH from the deployer and freshly minted TUSD to `address`; returns its balances afterwards."""
    if not Web3.is_address(address):
        raise FaucetError(f"--base {address!r} is not an EVM address (0x and 40 hex digits)")
    to = Web3.to_checksum_address(address)
    w3 = deployment.web3()
    key = deployment.deployer.private_key
    if grant.native:
        send_transaction(w3, key, TxParams(to=to, value=Wei(grant.native)))
    token = deployment.token_contract(w3)
    if grant.tusd:
        send_transaction(w3, key, token.functions.mint(to, grant.tusd))
    return {
        "address": to,
        "eth_wei": str(w3.eth.get_balance(to)),
        "tusd": {"token": deployment.token, "balance": str(token.functions.balanceOf(to).call())},
    }


async def fund_near(
    deployment: NearDeployment, account_id: str, public_key: str | None, grant: Grant
) -> dict[str, Any]:
    """Creates `account_id` with `public_key` when it does not exist, then sends NEAR and mints TUSD to it."""
    root_id = deployment.root.account_id
    if not is_valid_account_id(account_id):
        raise FaucetError(f"--near {account_id!r} is not a valid NEAR account id")
    root = NearClient(root_id, deployment.root.private_key, deployment.rpc_url)
    token = NearClient(deployment.token_id, deployment.token.private_key, deployment.rpc_url)
    await root.startup()
    await token.startup()
    try:
        created = False
        if not await _exists(root, account_id):
            if not account_id.endswith(f".{root_id}") or "." in account_id.removesuffix(f".{root_id}"):
                raise FaucetError(
                    f"--near {account_id!r} does not exist and the faucet creates only direct sub-accounts of "
                    f"the devnet root, such as alice.{root_id}"
                )
            if not public_key:
                raise FaucetError(f"--near {account_id!r} does not exist: give --near-public-key to create it")
            await _checked(root.create_account(account_id, public_key, grant.native), "create the account")
            created = True
        elif grant.native:
            await _checked(root.send_money(account_id, grant.native), "send NEAR")
        # NEP-145: registering an account that is registered already refunds the deposit.
        await _checked(
            root.function_call(
                deployment.token_id, "storage_deposit", {"account_id": account_id}, _CALL_GAS, STORAGE_BALANCE_MIN
            ),
            "register the account with the token",
        )
        if grant.tusd:
            await _checked(
                token.function_call(
                    deployment.token_id, "mint", {"account_id": account_id, "amount": str(grant.tusd)}, _CALL_GAS, 0
                ),
                "mint TUSD",
            )
        balance = await token.view_function(deployment.token_id, "ft_balance_of", {"account_id": account_id})
        return {
            "account_id": account_id,
            "created": created,
            "near_yocto": str(await root.get_balance(account_id)),
            "tusd": {"token": deployment.token_id, "balance": str(balance.result)},
        }
    finally:
        await token.shutdown()
        await root.shutdown()


async def _exists(client: NearClient, account_id: str) -> bool:
    try:
        await client.get_balance(account_id)
    except UnknownAccount:
        return False
    return True


async def _checked(call: Any, what: str) -> None:
    result = await call
    status: dict[str, Any] = getattr(result, "status", {}) or {}
    if "Failure" in status:
        raise FaucetError(f"could not {what}: {json.dumps(status['Failure'])[:300]}")


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number such as 10 or 2.5") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be zero or more")
    return value


def _deployment_file(work_dir: Path, name: str) -> Path:
    path = work_dir / name
    if not path.is_file():
        raise FaucetError(f"{path} is missing: the faucet serves the devnet that `make run` started in {work_dir}")
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {}
    if args.base:
        evm = EvmDeployment.read(_deployment_file(args.work_dir, "evm.json"))
        grant = Grant(base_units(args.eth, ETH_DECIMALS), base_units(args.tusd, _tusd_decimals(args.work_dir)))
        report["base"] = fund_base(evm, args.base, grant)
    if args.near:
        near = NearDeployment.read(_deployment_file(args.work_dir, "near.json"))
        grant = Grant(base_units(args.near_amount, NEAR_DECIMALS), base_units(args.tusd, near.token_decimals))
        report["near"] = asyncio.run(fund_near(near, args.near, args.near_public_key, grant))
    return report


def _tusd_decimals(work_dir: Path) -> int:
    # The EVM TestToken has the NEAR token's decimals (6); the NEAR file records them.
    near = work_dir / "near.json"
    return NearDeployment.read(near).token_decimals if near.is_file() else 6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m swap_devnet.faucet",
        description="Test funds on the local devnet (make run) for your own BASE address and NEAR account.",
    )
    parser.add_argument("--base", metavar="ADDRESS", help="a BASE (EVM) address to fund with ETH and TUSD")
    parser.add_argument("--near", metavar="ACCOUNT", help="a NEAR account to create (if new) and fund")
    parser.add_argument(
        "--near-public-key", metavar="ed25519:...", help="the full-access key of a new NEAR account (yours)"
    )
    parser.add_argument("--eth", type=_amount, default=DEFAULT_ETH, help=f"ETH to send (default {DEFAULT_ETH})")
    parser.add_argument(
        "--near-amount", type=_amount, default=DEFAULT_NEAR, help=f"NEAR to send (default {DEFAULT_NEAR})"
    )
    parser.add_argument(
        "--tusd", type=_amount, default=DEFAULT_TUSD, help=f"TUSD to mint on each chain (default {DEFAULT_TUSD})"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=Path(".localnet"), help="where `make run` keeps the devnet's files"
    )
    args = parser.parse_args(argv)
    if not args.base and not args.near:
        parser.error("nothing to fund: give --base ADDRESS and/or --near ACCOUNT")
    try:
        report = run(args)
    except FaucetError as err:
        print(f"faucet: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
