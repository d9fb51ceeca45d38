"""The web page in headless Chromium against the real gateway and stack: a swap started on the page
reaches `completed` on screen, and the receiver's balance on the destination chain grew by what the page
says was received. drive.mjs does the clicking (playwright-core); this test checks what it reports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack

from tests.fixtures.gateway import API_KEY, Balances

ROOT = Path(__file__).resolve().parents[3]
DRIVER = Path(__file__).with_name("drive.mjs")
CHROMIUM = Path("/usr/bin/chromium")
NODE = shutil.which("node")
PLAYWRIGHT = ROOT / "node_modules" / "playwright-core" / "package.json"
HAPPY_PATH = [
    "initialized",
    "executing",
    "source_locking",
    "source_locked",
    "destination_locking",
    "both_locked",
    "revealing_secret",
    "completed",
]
MAKER_PATH = [*HAPPY_PATH[:6], "awaiting_secret", *HAPPY_PATH[6:]]
BASE_TX = re.compile(r"^BASE 0x[0-9a-f]{64}$")
NEAR_TX = re.compile(r"^NEAR [1-9A-HJ-NP-Za-km-z]{32,44}$")
TUSD_DECIMALS = 6

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="no /usr/bin/chromium (install Debian's: apt-get install -y chromium chromium-driver)",
    ),
    pytest.mark.skipif(NODE is None, reason="no node on PATH (the browser driver is a node script)"),
    pytest.mark.skipif(not PLAYWRIGHT.exists(), reason="no node_modules/playwright-core (run npm ci)"),
]


def drive(gateway: GatewayProcess, tmp_path: Path, *extra: str) -> tuple[dict[str, Any], Path]:
    shot = tmp_path / "page.png"
    assert NODE is not None
    done = subprocess.run(
        [
            NODE,
            str(DRIVER),
            "--url",
            gateway.url,
            "--api-key",
            API_KEY,
            "--screenshot",
            str(shot),
            "--profile",
            str(tmp_path / "chromium-profile"),
            "--timeout-ms",
            "75000",
            *extra,
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, (
        f"the driver printed no report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}\n{gateway.tail()}"
    )
    report: dict[str, Any] = json.loads(lines[-1])
    assert done.returncode == 0, f"{json.dumps(report, indent=2)}\n{done.stderr}\n{gateway.tail()}"
    return report, shot


def base_units(shown: str) -> int:
    """'25.19325 TUSD' as the page shows it -> 25193250."""
    return int(Decimal(shown.split(maxsplit=1)[0]).scaleb(TUSD_DECIMALS))


def check_report(report: dict[str, Any], shot: Path, *, maker: bool = True) -> None:
    assert report["state"] == report["shown_state"] == "completed"
    assert [s["state"] for s in report["steps"]] == (MAKER_PATH if maker else HAPPY_PATH)
    if maker:
        # The browser kept the secret until the end, released it after its own check, then dropped it.
        assert report["secret_status"] == "Your secret was released and is now public on chain.", report
        assert report["secrets_left"] == 0
    assert {s["status"] for s in report["steps"]} == {"done"}
    txs = report["txs"]
    assert any(BASE_TX.match(t) for t in txs), txs
    assert any(NEAR_TX.match(t) for t in txs), txs
    assert all(BASE_TX.match(t) or NEAR_TX.match(t) for t in txs), txs
    assert base_units(report["received"]) >= base_units(report["minimum"]) > 0
    assert report["websockets"] >= 1 and report["ws_updates"] >= 1, "the progress did not come over /ws"
    # The key's history lists the swap, newest first, with its final state.
    assert report["history"][0]["session_id"] == report["session_id"], report["history"]
    assert "completed" in report["history"][0]["text"]
    assert report["problems"] == [] and report["external_requests"] == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def wallet_args(stack: LocalStack, *extra: str) -> list[str]:
    assert stack.evm is not None
    return ["--wallet-rpc", stack.evm.rpc_url, "--wallet-account", stack.evm.maker.address, *extra]


@pytest.mark.timeout(180)
def test_swap_base_to_near_completes_on_the_page_with_the_secret_in_the_browser(
    page_gateway: GatewayProcess, page_stack: LocalStack, tmp_path: Path
) -> None:
    balances = Balances(page_stack)
    assert page_stack.near is not None
    receiver = page_stack.near.receiver.account_id
    before = balances.near_tusd(receiver)

    args = wallet_args(page_stack)
    report, shot = drive(page_gateway, tmp_path, "--direction", "base-near", "--amount", "25", *args)

    check_report(report, shot)
    assert balances.near_tusd(receiver) - before == base_units(report["received"])


@pytest.mark.timeout(180)
def test_swap_near_to_base_survives_a_reload_of_the_page(
    page_gateway: GatewayProcess, page_stack: LocalStack, tmp_path: Path
) -> None:
    balances = Balances(page_stack)
    assert page_stack.evm is not None and page_stack.near is not None
    receiver = page_stack.evm.receiver.address
    before = balances.base(receiver)

    report, shot = drive(
        page_gateway,
        tmp_path,
        "--direction",
        "near-base",
        "--amount",
        "7.5",
        "--near-account",
        page_stack.near.maker.account_id,
        "--near-key",
        page_stack.near.maker.private_key,
        "--reload-at",
        "source_locked",
        "--wrong-key",
        "not-a-key",
    )

    check_report(report, shot)
    assert report["reloaded"] and report["secrets_before_reload"] == 1
    assert report["url_before_reload"].endswith(f"#session={report['session_id']}")
    assert report["wrong_key_status"] == "Saved, but the gateway refuses this key: check it."
    assert balances.base(receiver) - before == base_units(report["received"])


@pytest.mark.timeout(180)
def test_wallet_signs_the_order_with_eth_sign_typed_data_v4(
    page_gateway: GatewayProcess, page_stack: LocalStack, tmp_path: Path
) -> None:
    """window.ethereum backed by anvil, whose unlocked dev accounts sign EIP-712 themselves."""
    assert page_stack.evm is not None
    report, shot = drive(
        page_gateway,
        tmp_path,
        "--direction",
        "base-near",
        "--amount",
        "3",
        "--wallet-rpc",
        page_stack.evm.rpc_url,
        "--wallet-account",
        page_stack.evm.maker.address,
        "--secret-mode",
        "service",
    )
    check_report(report, shot, maker=False)
    assert "eth_signTypedData_v4" in report["wallet_calls"]


@pytest.mark.timeout(180)
def test_wallet_on_another_chain_adds_and_switches_to_base_before_signing(
    page_gateway: GatewayProcess, page_stack: LocalStack, tmp_path: Path
) -> None:
    """A wallet on chain 1 that does not know the order's chain: the page reads eth_chainId, the switch answers
    4902, the page adds the chain with /chains.json's name and RPC (EIP-3085), switches (EIP-3326), then signs."""
    assert page_stack.evm is not None
    balances = Balances(page_stack)
    assert page_stack.near is not None
    receiver = page_stack.near.receiver.account_id
    before = balances.near_tusd(receiver)

    args = wallet_args(page_stack, "--wallet-chain", "0x1", "--secret-mode", "service")
    report, shot = drive(page_gateway, tmp_path, "--direction", "base-near", "--amount", "2", *args)

    check_report(report, shot, maker=False)
    calls = report["wallet_calls"]
    # Read the chain, fail to switch (unknown), add, switch: all before anything is approved or signed.
    first_sign = calls.index("eth_signTypedData_v4")
    assert calls.index("eth_chainId") < calls.index("wallet_switchEthereumChain") < first_sign
    assert calls.index("wallet_addEthereumChain") < first_sign
    assert calls[: first_sign + 1].count("wallet_switchEthereumChain") == 2
    assert report["wallet_added"] == [
        {
            "chainId": hex(page_stack.evm.chain_id),
            "chainName": "BASE (local anvil)",
            "rpcUrls": [page_stack.evm.rpc_url],
            "nativeCurrency": {"name": "Ether", "symbol": "ETH", "decimals": 18},
        }
    ]
    assert report["execute_posts"] == 1
    assert balances.near_tusd(receiver) - before == base_units(report["received"])


@pytest.mark.timeout(120)
def test_wallet_that_refuses_the_switch_signs_nothing(
    page_gateway: GatewayProcess, page_stack: LocalStack, tmp_path: Path
) -> None:
    """A wallet on BASE mainnet (8453) whose user declines the switch: the page names both chains, asks for no
    approval or signature, posts no execute, and the session is still initialized."""
    assert page_stack.evm is not None
    want = page_stack.evm.chain_id
    args = wallet_args(page_stack, "--wallet-chain", "0x2105", "--wallet-switch", "refuse", "--expect", "wrong-chain")
    report, shot = drive(page_gateway, tmp_path, "--direction", "base-near", "--amount", "2", *args)

    message = report["connection"]
    assert "wrong chain" in message and "8453 (0x2105)" in message and f"{want} ({hex(want)})" in message, message
    assert "Nothing was signed" in message
    assert report["wallet_calls"][-2:] == ["eth_chainId", "wallet_switchEthereumChain"], report["wallet_calls"]
    assert report["execute_posts"] == 0 and report["wallet_added"] == []
    assert report["sign_button_enabled"], "the maker can switch by hand and sign again"
    assert report["problems"] == [] and report["external_requests"] == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with httpx.Client(base_url=page_gateway.url, headers={"X-API-Key": API_KEY}, timeout=30) as api:
        path = f"/api/v1/sessions/{report['session_id']}"
        session = api.get(path).raise_for_status().json()
        assert session["state"] == "initialized"
        assert [step["state"] for step in session["steps"]] == ["initialized"]
        # Leave the shared stack as it was.
        api.post(f"{path}/cancel", json={}).raise_for_status()


@pytest.mark.timeout(180)
def test_near_key_in_the_page_makes_the_maker_call(
    page_gateway: GatewayProcess, page_stack: LocalStack, tmp_path: Path
) -> None:
    """NEAR -> BASE with the maker's NEAR call signed in the browser (near-api-js, bundled) and sent to the NEAR
    RPC of /chains.json; the key never reaches the gateway nor the page's storage."""
    assert page_stack.near is not None and page_stack.evm is not None
    balances = Balances(page_stack)
    maker = page_stack.near.maker
    receiver = page_stack.evm.receiver.address
    maker_before, receiver_before = balances.near_tusd(maker.account_id), balances.base(receiver)

    report, shot = drive(
        page_gateway,
        tmp_path,
        "--direction",
        "near-base",
        "--amount",
        "4.25",
        "--near-account",
        maker.account_id,
        "--near-key",
        maker.private_key,
    )

    check_report(report, shot)
    near_rpc = page_stack.near.rpc_url.rstrip("/")
    assert {"origin": near_rpc, "method": "send_tx"} in report["rpc_calls"], report["rpc_calls"]
    # The page's own transaction, from the maker, to the contract the session named, executed on chain.
    with httpx.Client(timeout=30) as rpc:
        reply = rpc.post(
            page_stack.near.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tx", "params": [report["near_tx"], maker.account_id]},
        ).json()
    outcome = reply["result"]
    assert outcome["transaction"]["signer_id"] == maker.account_id
    assert outcome["transaction"]["public_key"] == maker.public_key
    assert outcome["transaction"]["receiver_id"] == report["maker_action"]["near_call"]["contract"]
    assert "SuccessValue" in outcome["status"], outcome["status"]
    assert report["execute_posts"] == 1
    assert report["key_sent_to_gateway"] == 0
    assert report["key_in_storage"] is False and report["key_left_in_input"] is False
    assert maker_before - balances.near_tusd(maker.account_id) == 4_250_000
    assert balances.base(receiver) - receiver_before == base_units(report["received"])
