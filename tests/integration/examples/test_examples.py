"""docs/integrate.md's runnable example and the devnet faucet it starts from, against a real stack: fresh
keys, funded by the faucet, swap each way through the gateway in secret mode maker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from swap_devnet.near.keys import KeyPair
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack

from tests.fixtures.gateway import API_KEY

REPO = Path(__file__).resolve().parents[3]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("direction", ["base-near", "near-base"])
def test_the_example_swaps_with_fresh_keys(dev_stack: LocalStack, dev_gateway: GatewayProcess, direction: str) -> None:
    work = dev_stack.options.work_dir
    done = run(
        "examples/swap.py",
        "--gateway",
        dev_gateway.url,
        "--api-key",
        API_KEY,
        direction,
        "--amount",
        "3.5",
        "--faucet",
        "--work-dir",
        str(work),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("faucet: BASE 0x") for line in lines)
    assert "  state: awaiting_secret" in lines
    assert "destination lock checked on" in done.stdout
    # The receiver's balance rose by exactly the session's dst_amount: the script's last line says both.
    last = lines[-1]
    assert last.startswith("completed: the receiver"), done.stdout
    got, said = last.split(" got ")[1].split(" (session dst_amount ")
    assert int(got) == int(said.rstrip(")")) > 0


def test_the_faucet_funds_an_address_and_a_new_account(dev_stack: LocalStack) -> None:
    work = str(dev_stack.options.work_dir)
    address = Account.create().address
    done = run(
        "-m",
        "swap_devnet.faucet",
        "--work-dir",
        work,
        "--base",
        address,
        "--eth",
        "1.5",
        "--tusd",
        "12.25",
        "--near",
        "faucet-probe.test.near",
        "--near-public-key",
        KeyPair.from_phrase("faucet-probe").public_key_text,
        "--near-amount",
        "2",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["base"]["eth_wei"] == str(15 * 10**17)
    assert report["base"]["tusd"]["balance"] == "12250000"
    assert report["near"]["created"] is True
    assert report["near"]["tusd"]["balance"] == "12250000"
    assert int(report["near"]["near_yocto"]) == 2 * 10**24
    # Again: the account exists, so it is topped up, not created.
    again = run("-m", "swap_devnet.faucet", "--work-dir", work, "--near", "faucet-probe.test.near", "--tusd", "1")
    assert again.returncode == 0, again.stderr
    assert dev_stack.near is not None
    assert json.loads(again.stdout)["near"] == {
        "account_id": "faucet-probe.test.near",
        "created": False,
        "near_yocto": str(52 * 10**24),  # 2 NEAR, then the default 50
        "tusd": {"token": dev_stack.near.token_id, "balance": "13250000"},
    }


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--base", "0x1234"], "--base '0x1234' is not an EVM address"),
        (["--near", "someone.near"], "creates only direct sub-accounts of the devnet root"),
        (["--near", "new-one.test.near"], "give --near-public-key to create it"),
        (["--near", "UPPER.test.near"], "is not a valid NEAR account id"),
    ],
)
def test_the_faucet_refuses_what_it_cannot_serve(dev_stack: LocalStack, args: list[str], says: str) -> None:
    done = run("-m", "swap_devnet.faucet", "--work-dir", str(dev_stack.options.work_dir), *args)
    assert done.returncode == 2
    assert says in done.stderr
    assert done.stdout == ""


def test_the_faucet_serves_only_a_devnet(tmp_path: Path) -> None:
    done = run("-m", "swap_devnet.faucet", "--work-dir", str(tmp_path), "--base", Account.create().address)
    assert done.returncode == 2
    assert "evm.json is missing: the faucet serves the devnet that `make run` started" in done.stderr
