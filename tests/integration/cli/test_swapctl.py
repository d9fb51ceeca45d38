"""The installed `swapctl` against the real gateway and stack: a dev swap to completion with the receiver's
balance checked on chain (the secret held by swapctl, released after its own check of the destination lock
on the NEAR devnet), a swapctl killed before the release and resumed, and the gateway's errors as swapctl
reports them."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack

from tests.fixtures.gateway import API_KEY, Balances

SWAPCTL = Path(sys.executable).with_name("swapctl")
BASE_TX = re.compile(r"tx base 0x[0-9a-f]{64}")
NEAR_TX = re.compile(r"tx near [1-9A-HJ-NP-Za-km-z]{32,44}")

pytestmark = pytest.mark.integration
EMPTY_CONFIG = Path(tempfile.mkdtemp(prefix="swapctl-config-")) / "config.json"
EMPTY_CONFIG.write_text("{}")


def swapctl_env(gateway: GatewayProcess, key: str = API_KEY, state: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "SWAPCTL_URL": gateway.url, "SWAPCTL_API_KEY": key, "COLUMNS": "200"}
    env["SWAPCTL_CONFIG"] = str(EMPTY_CONFIG)  # never the machine's own config (a `make run` writes one)
    if state is not None:
        env["SWAPCTL_STATE_DIR"] = str(state)
    return env


def swapctl(
    gateway: GatewayProcess, *args: str, key: str = API_KEY, state: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = swapctl_env(gateway, key, state)
    return subprocess.run([str(SWAPCTL), *args], check=False, env=env, capture_output=True, text=True, timeout=120)


def maker_swap(
    gateway: GatewayProcess, stack: LocalStack, src: str, dst: str, amount: str, maker: str, receiver: str, state: Path
) -> subprocess.CompletedProcess[str]:
    """`swapctl swap --sign` in secret mode maker with the devnet maker's keys file, the stack's chains file and
    its own state dir."""
    args = [src, dst, amount, "--maker", maker, "--receiver", receiver, "--keys", str(stack.maker_keys_file)]
    return swapctl(gateway, "swap", *args, "--chains", str(stack.chains_file), "--sign", state=state)


def logs_mention(stack: LocalStack, text: str) -> list[str]:
    return [p.name for p in Path(stack.options.work_dir).glob("*.log") if text in p.read_text(errors="replace")]


def pair(stack: LocalStack) -> list[str]:
    assert stack.evm is not None and stack.near is not None
    return [f"base:{stack.evm.token}", f"near:{stack.near.token.account_id}"]


@pytest.mark.timeout(180)
def test_dev_swap_completes_and_pays_the_receiver(
    cli_gateway: GatewayProcess, cli_stack: LocalStack, tmp_path: Path
) -> None:
    assert cli_stack.evm is not None and cli_stack.near is not None
    balances = Balances(cli_stack)
    receiver = cli_stack.near.receiver.account_id
    before = balances.near_tusd(receiver)

    src, dst = pair(cli_stack)
    done = maker_swap(cli_gateway, cli_stack, src, dst, "12.5", cli_stack.evm.maker.address, receiver, tmp_path)

    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{cli_gateway.tail()}"
    out = done.stdout
    session_id = re.search(r"session (\w+) created", out)
    assert session_id is not None, out
    for state in (
        "initialized",
        "executing",
        "source_locked",
        "both_locked",
        "awaiting_secret",
        "revealing_secret",
        "completed",
    ):
        assert re.search(rf"^\d\d:\d\d:\d\d  {state}\b", out, re.MULTILINE), out
    assert "destination lock checked on near" in out and "releasing the secret" in out, out
    assert BASE_TX.search(out) and NEAR_TX.search(out), out
    assert f"completed: {receiver} received" in out

    got = swapctl(cli_gateway, "get", session_id.group(1), "--json")
    assert got.returncode == 0, got.stderr
    session = json.loads(got.stdout)
    assert session["state"] == "completed" and session["secret_mode"] == "maker"
    assert session["src_amount"] == "12500000"
    assert balances.near_tusd(receiver) - before == int(session["dst_amount"])
    # The secret was swapctl's: no service logged it, and its file went with the end of the swap.
    assert logs_mention(cli_stack, session["secret"]) == []
    assert list((tmp_path / "secrets").glob("*.json")) == []

    watched = swapctl(cli_gateway, "watch", session_id.group(1))
    assert watched.returncode == 0, watched.stderr

    listed = swapctl(cli_gateway, "list", "--maker", cli_stack.evm.maker.address)
    assert listed.returncode == 0, listed.stderr
    assert session_id.group(1) in listed.stdout
    # Amounts in token units, with the decimals of the gateway's token list.
    assert re.search(rf"{session_id.group(1)}\s+completed\s+base->near\s+12\.5\s", listed.stdout), listed.stdout


def test_quote_shows_the_auction(cli_gateway: GatewayProcess, cli_stack: LocalStack) -> None:
    done = swapctl(cli_gateway, "quote", *pair(cli_stack), "10")
    assert done.returncode == 0, done.stderr
    for row in ("auction start", "auction now", "auction end", "protocol fee", "network fee", "min received"):
        assert row in done.stdout
    assert "refund guaranteed by" in done.stdout


@pytest.mark.timeout(180)
def test_swapctl_killed_before_the_release_refuses_a_short_lock_then_resumes(
    cli_gateway: GatewayProcess, cli_stack: LocalStack, tmp_path: Path
) -> None:
    """The secret survives a killed swapctl in its 0600 file; `reveal` keeps it when the destination lock
    fails the maker's own check (here: less time left than the maker asks for); `watch` then releases it."""
    assert cli_stack.evm is not None and cli_stack.near is not None
    balances = Balances(cli_stack)
    receiver = cli_stack.near.receiver.account_id
    before = balances.near_tusd(receiver)
    chains = str(cli_stack.chains_file)
    args = [*pair(cli_stack), "3", "--maker", cli_stack.evm.maker.address]
    args += ["--receiver", receiver, "--chains", chains, "--keys", str(cli_stack.maker_keys_file), "--sign"]
    proc = subprocess.Popen(
        [str(SWAPCTL), "swap", *args],
        env=swapctl_env(cli_gateway, state=tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if "swapctl signed the order" in line:
            break
    proc.kill()
    proc.wait()
    found = re.search(r"session (\w+) created", "".join(lines))
    assert found is not None, lines
    sid = found.group(1)
    [secret_file] = (tmp_path / "secrets").glob("*.json")
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    held = json.loads(secret_file.read_text())
    assert held["session_id"] == sid and not held["released"]

    deadline = time.monotonic() + 90
    while json.loads(swapctl(cli_gateway, "get", sid, "--json").stdout)["state"] != "awaiting_secret":
        assert time.monotonic() < deadline, "the session never reached awaiting_secret"
        time.sleep(0.3)
    kept = swapctl(cli_gateway, "reveal", sid, "--chains", chains, "--min-time-left", "100000", state=tmp_path)
    assert kept.returncode == 3, f"{kept.stdout}\n{kept.stderr}"
    assert "secret kept" in kept.stdout and "s are left before it can be cancelled" in kept.stdout, kept.stdout
    assert json.loads(swapctl(cli_gateway, "get", sid, "--json").stdout)["state"] == "awaiting_secret"

    resumed = swapctl(cli_gateway, "watch", sid, "--chains", chains, state=tmp_path)
    assert resumed.returncode == 0, f"{resumed.stdout}\n{resumed.stderr}"
    assert "releasing the secret" in resumed.stdout
    session = json.loads(swapctl(cli_gateway, "get", sid, "--json").stdout)
    assert session["state"] == "completed" and session["secret"] == held["secret"]
    assert balances.near_tusd(receiver) - before == int(session["dst_amount"])
    assert not secret_file.exists()


@pytest.mark.timeout(180)
def test_the_demo_command_works_as_printed(cli_gateway: GatewayProcess, cli_stack: LocalStack, tmp_path: Path) -> None:
    """`make run` prints `swapctl swap base:TUSD near:TUSD 25 --sign`: with the stack's swapctl.json (gateway,
    key, chains file, the devnet maker's keys file, the devnet's accounts) and nothing else, exactly that
    completes the swap."""
    assert cli_stack.evm is not None and cli_stack.near is not None
    config = tmp_path / "swapctl.json"
    config.write_text(json.dumps(cli_stack.swapctl_config(cli_gateway.url, API_KEY)))
    config.chmod(0o600)
    balances = Balances(cli_stack)
    receiver = cli_stack.near.receiver.account_id
    before = balances.near_tusd(receiver)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWAPCTL_")}
    env.update({"SWAPCTL_CONFIG": str(config), "SWAPCTL_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200"})
    demo = subprocess.run(
        [str(SWAPCTL), *shlex.split("swap base:TUSD near:TUSD 25 --sign")],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert demo.returncode == 0, f"{demo.stdout}\n{demo.stderr}\n{cli_gateway.tail()}"
    assert f"completed: {receiver} received" in demo.stdout
    sid = re.search(r"session (\w+) created", demo.stdout)
    assert sid is not None, demo.stdout
    session = json.loads(swapctl(cli_gateway, "get", sid.group(1), "--json").stdout)
    assert session["src"] == {"chain": "base", "token": cli_stack.evm.token}
    assert session["dst"] == {"chain": "near", "token": cli_stack.near.token.account_id}
    assert session["src_amount"] == "25000000"  # 25 TUSD in the token's 6 decimals, from the token list
    assert (session["maker"], session["receiver"]) == (cli_stack.evm.maker.address, receiver)
    assert session["src_cancellation_at"] > 0 and session["dst_cancellation_at"] > 0  # both locks were seen
    assert balances.near_tusd(receiver) - before == int(session["dst_amount"])


def test_assets_and_what_cannot_be_swapped(cli_gateway: GatewayProcess, cli_stack: LocalStack) -> None:
    listed = swapctl(cli_gateway, "assets", "--json")
    assert listed.returncode == 0, listed.stderr
    assets = {(a["chain"], a["symbol"]): a for a in json.loads(listed.stdout)["assets"]}
    assert (assets[("base", "ETH")]["source"], assets[("base", "ETH")]["destination"]) == (False, True)
    assert assets[("near", "NEAR")]["decimals"] == 24
    table = swapctl(cli_gateway, "assets")
    assert table.returncode == 0 and "base:TUSD" in table.stdout and "near:NEAR" in table.stdout

    refused = swapctl(cli_gateway, "quote", "base", "near:TUSD", "0.01")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: SRC: base: ETH on base cannot be what the maker pays"), refused.stderr
    assert "can be swapped from: " in refused.stderr and "base:TUSD (0x" in refused.stderr, refused.stderr
    # NEAR's native coin both ways, each amount in its own decimals.
    near_eth = swapctl(cli_gateway, "quote", "near", "base:ETH", "2", "--json")
    assert near_eth.returncode == 0, near_eth.stderr
    assert json.loads(near_eth.stdout)["src_amount"] == str(2 * 10**24)
    tusd_near = swapctl(cli_gateway, "quote", "base:TUSD", "near", "10")
    assert tusd_near.returncode == 0, tusd_near.stderr
    assert re.search(r"you pay\s+10 \(10000000\)", tusd_near.stdout), tusd_near.stdout


def test_maker_mode_needs_the_makers_own_view_of_the_chains(cli_gateway: GatewayProcess, cli_stack: LocalStack) -> None:
    assert cli_stack.evm is not None
    done = swapctl(
        cli_gateway, "swap", *pair(cli_stack), "10", "--maker", cli_stack.evm.maker.address, "--receiver", "r"
    )
    assert done.returncode == 2
    assert "--chains" in done.stderr and "--secret-mode service" in done.stderr


def test_gateway_errors_as_one_line(cli_gateway: GatewayProcess, cli_stack: LocalStack) -> None:
    bad_maker = swapctl(
        cli_gateway,
        "swap",
        *pair(cli_stack),
        "10",
        "--maker",
        "nope",
        "--receiver",
        "r.test.near",
        "--secret-mode",
        "service",
    )
    assert bad_maker.returncode == 3
    assert bad_maker.stderr.startswith('error: field "maker" (--maker): ')
    assert bad_maker.stderr.count("\n") == 1

    too_small = swapctl(cli_gateway, "quote", *pair(cli_stack), "0.01")
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


@pytest.mark.timeout(180)
def test_near_to_base_in_maker_mode(cli_gateway: GatewayProcess, cli_stack: LocalStack, tmp_path: Path) -> None:
    """The NEAR maker locks on the HTLC with the hashlock swapctl drew; swapctl checks the BASE lock on anvil."""
    assert cli_stack.evm is not None and cli_stack.near is not None
    balances = Balances(cli_stack)
    receiver = cli_stack.evm.receiver.address
    before = balances.base(receiver)
    src, dst = pair(cli_stack)
    done = maker_swap(cli_gateway, cli_stack, dst, src, "4", cli_stack.near.maker.account_id, receiver, tmp_path)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "destination lock checked on base" in done.stdout
    sid = re.search(r"session (\w+) created", done.stdout)
    assert sid is not None
    session = json.loads(swapctl(cli_gateway, "get", sid.group(1), "--json").stdout)
    assert session["state"] == "completed" and session["secret_mode"] == "maker"
    assert balances.base(receiver) - before == int(session["dst_amount"])
    assert logs_mention(cli_stack, session["secret"]) == []
