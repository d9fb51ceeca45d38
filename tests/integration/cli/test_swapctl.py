"""The installed `swapctl` against the real gateway and stack: a dev swap to completion with the receiver's
balance checked on chain, and the gateway's errors as swapctl reports them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack

from tests.fixtures.gateway import API_KEY, Balances

SWAPCTL = Path(sys.executable).with_name("swapctl")
BASE_TX = re.compile(r"tx base 0x[0-9a-f]{64}")
NEAR_TX = re.compile(r"tx near [1-9A-HJ-NP-Za-km-z]{32,44}")

pytestmark = pytest.mark.integration


def swapctl(gateway: GatewayProcess, *args: str, key: str = API_KEY) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWAPCTL_URL": gateway.url, "SWAPCTL_API_KEY": key, "COLUMNS": "200"}
    return subprocess.run([str(SWAPCTL), *args], check=False, env=env, capture_output=True, text=True, timeout=120)


def pair(stack: LocalStack) -> list[str]:
    assert stack.evm is not None and stack.near is not None
    return [f"base:{stack.evm.token}", f"near:{stack.near.token.account_id}"]


@pytest.mark.timeout(180)
def test_dev_swap_completes_and_pays_the_receiver(cli_gateway: GatewayProcess, cli_stack: LocalStack) -> None:
    assert cli_stack.evm is not None and cli_stack.near is not None
    balances = Balances(cli_stack)
    receiver = cli_stack.near.receiver.account_id
    before = balances.near_tusd(receiver)

    done = swapctl(
        cli_gateway,
        "swap",
        *pair(cli_stack),
        "12.5",
        "--decimals",
        "6",
        "--maker",
        cli_stack.evm.maker.address,
        "--receiver",
        receiver,
        "--dev",
    )

    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{cli_gateway.tail()}"
    out = done.stdout
    session_id = re.search(r"session (\w+) created", out)
    assert session_id is not None, out
    for state in ("initialized", "executing", "source_locked", "both_locked", "revealing_secret", "completed"):
        assert re.search(rf"^\d\d:\d\d:\d\d  {state}\b", out, re.MULTILINE), out
    assert BASE_TX.search(out) and NEAR_TX.search(out), out
    assert f"completed: {receiver} received" in out

    got = swapctl(cli_gateway, "get", session_id.group(1), "--json")
    assert got.returncode == 0, got.stderr
    session = json.loads(got.stdout)
    assert session["state"] == "completed"
    assert session["src_amount"] == "12500000"
    assert balances.near_tusd(receiver) - before == int(session["dst_amount"])

    watched = swapctl(cli_gateway, "watch", session_id.group(1))
    assert watched.returncode == 0, watched.stderr

    listed = swapctl(cli_gateway, "list", "--maker", cli_stack.evm.maker.address, "--decimals", "6")
    assert listed.returncode == 0, listed.stderr
    assert session_id.group(1) in listed.stdout


def test_quote_shows_the_auction(cli_gateway: GatewayProcess, cli_stack: LocalStack) -> None:
    done = swapctl(cli_gateway, "quote", *pair(cli_stack), "10", "--decimals", "6")
    assert done.returncode == 0, done.stderr
    for row in ("auction start", "auction now", "auction end", "protocol fee", "network fee", "min received"):
        assert row in done.stdout
    assert "refund guaranteed by" in done.stdout


def test_gateway_errors_as_one_line(cli_gateway: GatewayProcess, cli_stack: LocalStack) -> None:
    bad_maker = swapctl(cli_gateway, "swap", *pair(cli_stack), "10", "--maker", "nope", "--receiver", "r.test.near")
    assert bad_maker.returncode == 3
    assert bad_maker.stderr.startswith('error: field "maker" (--maker): ')
    assert bad_maker.stderr.count("\n") == 1

    too_small = swapctl(cli_gateway, "quote", *pair(cli_stack), "1")
    assert too_small.returncode == 3
    assert too_small.stderr.startswith('error: field "src_amount" (AMOUNT): ')

    unknown = swapctl(cli_gateway, "get", "no-such-session")
    assert unknown.returncode == 3
    assert "SESSION_NOT_FOUND" in unknown.stderr

    wrong_key = swapctl(cli_gateway, "list", key="not-a-key")
    assert wrong_key.returncode == 4
    assert "check --api-key or SWAPCTL_API_KEY" in wrong_key.stderr


def test_unreachable_gateway() -> None:
    env = {**os.environ, "SWAPCTL_URL": "http://127.0.0.1:9", "SWAPCTL_API_KEY": "k"}
    done = subprocess.run([str(SWAPCTL), "list"], check=False, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 5
    assert "connection refused" in done.stderr
