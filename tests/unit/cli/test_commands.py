"""swapctl end to end against a scripted gateway on loopback: arguments, output, exit codes, WebSocket resume."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from swapctl.config import ClientConfig, load_config
from swapctl.main import app
from swapctl.stream import DEFAULT_RETRY_DELAYS
from typer.testing import CliRunner, Result

from tests.unit.cli.stub import (
    ASSETS,
    BASE_TX,
    MAKER_ADDRESS,
    MAKER_KEY,
    NEAR_TX,
    ORDER_TYPED_DATA,
    QUOTE,
    SIGNATURE,
    STAY,
    StubGateway,
    happy_until,
    session,
    subscribed,
    update,
    ws_error,
)

BASE_TUSD = "base:0x5FbDB2315678afecb367f032d93F642f64180aa3"
NEAR_TUSD = "near:token.test.near"
SWAP_ARGS = [
    "--maker",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "--receiver",
    "receiver.test.near",
    "--secret-mode",
    "service",
]


@pytest.fixture
def stub() -> Iterator[StubGateway]:
    with StubGateway() as gw:
        yield gw


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("swapctl.stream.DEFAULT_RETRY_DELAYS", tuple(0.01 for _ in DEFAULT_RETRY_DELAYS))


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# No config file of the machine (a `make run` in this checkout writes one) may leak into these tests.
EMPTY_CONFIG = Path(tempfile.mkdtemp(prefix="swapctl-config-")) / "config.json"
EMPTY_CONFIG.write_text("{}")


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """The maker's keys file of --sign, as docs/cli.md shows it (mode 600)."""
    path = tmp_path / "maker-keys.json"
    path.write_text(json.dumps({"base": {"private_key": MAKER_KEY}}))
    path.chmod(0o600)
    return path


def signer_of(signature: str) -> str:
    signable = encode_typed_data(full_message=ORDER_TYPED_DATA)
    return str(Account.recover_message(signable, signature=bytes.fromhex(signature.removeprefix("0x"))))


def run(stub: StubGateway | None, *args: str, key: str | None = "k-1", env: dict[str, str] | None = None) -> Result:
    base = ["--url", stub.url if stub else "http://127.0.0.1:9"]
    if key:
        base += ["--api-key", key]
    full_env = {
        "COLUMNS": "250",
        "SWAPCTL_URL": "",
        "SWAPCTL_API_KEY": "",
        "SWAPCTL_CHAINS": "",
        "SWAPCTL_CONFIG": str(EMPTY_CONFIG),
        **(env or {}),
    }
    return CliRunner().invoke(app, [*base, *args], env=full_env)


def test_help_lists_commands_and_exit_codes() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    for command in ("quote", "swap", "execute", "watch", "list", "get", "cancel", "reveal", "assets", "Exit codes"):
        assert command in result.output


@pytest.mark.parametrize("command", ["quote", "swap", "execute", "watch", "list", "get", "cancel", "reveal", "assets"])
def test_every_command_takes_json_and_none_takes_decimals(command: str) -> None:
    result = CliRunner().invoke(app, [command, "-h"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "--json" in result.output
    assert "--decimals" not in result.output and "--dst-decimals" not in result.output


def test_quote_in_token_units(stub: StubGateway) -> None:
    stub.reply("POST", "/api/v1/quotes", QUOTE)
    result = run(stub, "quote", BASE_TUSD, NEAR_TUSD, "25.5", "--slippage-bps", "50")
    assert result.exit_code == 0, result.output
    assert stub.paths() == ["GET /api/v1/assets", "POST /api/v1/quotes"]
    assert stub.bodies("POST", "/api/v1/quotes") == [
        {
            "src": {"chain": "base", "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
            "dst": {"chain": "near", "token": "token.test.near"},
            "src_amount": "25500000",
            "slippage_bps": 50,
        }
    ]
    assert stub.requests[0].headers["X-API-Key"] == "k-1"
    out = flat(result.stdout)
    for expected in (
        "auction start 25.755 (25755000)",
        "auction now 25.7 (25700000)",
        "auction end 25.3725 (25372500)",
        "protocol fee 0.0255 (25500)",
        "network fee 0.002 (2000)",
        "min received 25.245637 (25245637)",
        "valid until",
        "refund guaranteed by",
        "50 bps (0.5 %)",
        "quote id (--quote-id) q-1",
    ):
        assert expected in out, out


def test_quote_in_base_units_with_the_flag(stub: StubGateway) -> None:
    stub.reply("POST", "/api/v1/quotes", QUOTE)
    result = run(stub, "quote", BASE_TUSD, NEAR_TUSD, "25500000", "--base-units", "--json")
    assert result.exit_code == 0, result.output
    assert stub.bodies("POST", "/api/v1/quotes")[0]["src_amount"] == "25500000"
    assert json.loads(result.stdout)["quote_id"] == "q-1"


def test_a_fraction_of_base_units_is_a_usage_error(stub: StubGateway) -> None:
    result = run(stub, "quote", BASE_TUSD, NEAR_TUSD, "25.5", "--base-units")
    assert result.exit_code == 2
    assert "--base-units" in result.stderr
    assert stub.requests == []


def test_symbols_name_tokens_and_the_sources_decimals_read_the_amount(stub: StubGateway) -> None:
    stub.reply("POST", "/api/v1/quotes", QUOTE)
    for src, dst in (
        ("base:TUSD", "near:TUSD"),
        ("base:tusd", "near:token.test.near"),
        (BASE_TUSD.lower(), "near:TUSD"),
    ):
        result = run(stub, "quote", src, dst, "25")
        assert result.exit_code == 0, result.output
    for body in stub.bodies("POST", "/api/v1/quotes"):
        assert body["src"] == {"chain": "base", "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}
        assert body["dst"] == {"chain": "near", "token": "token.test.near"}
        assert body["src_amount"] == "25000000"
    # One request for the token list per command run.
    assert stub.paths().count("GET /api/v1/assets") == 3


def test_near_to_base_native_in_each_tokens_own_decimals(stub: StubGateway) -> None:
    """1 NEAR is 10^24 yoctoNEAR; the auction is in ETH's 18 decimals (no flag to get wrong)."""
    native = {
        **QUOTE,
        "src": {"chain": "near", "token": "native"},
        "dst": {"chain": "base", "token": "native"},
        "src_amount": str(10**24),
        "auction": {**QUOTE["auction"], "start_amount": "1010000000000000"},
    }
    stub.reply("POST", "/api/v1/quotes", native)
    for src, dst in (("near", "base:ETH"), ("near:NEAR", "base"), ("near:native", "base:native")):
        result = run(stub, "quote", src, dst, "1")
        assert result.exit_code == 0, result.output
        assert "auction start 0.00101 (1010000000000000)" in flat(result.stdout)
    for body in stub.bodies("POST", "/api/v1/quotes"):
        assert (body["src"], body["dst"]) == (
            {"chain": "near", "token": "native"},
            {"chain": "base", "token": "native"},
        )
        assert body["src_amount"] == str(10**24)


def test_native_eth_as_source_is_refused_before_anything_is_priced(stub: StubGateway) -> None:
    for src in ("base", "base:ETH", "base:native"):
        result = run(stub, "quote", src, "near:TUSD", "1")
        assert result.exit_code == 2, result.output
        err = flat(result.stderr)
        assert err.startswith(f"error: SRC: {src}: ETH on base cannot be what the maker pays"), err
        assert "ERC-20" in err
        assert "can be swapped from: base:TUSD (0x5FbD…0aa3), near:NEAR, near:TUSD (token.test.near)" in err
    # As a destination it is fine.
    stub.reply("POST", "/api/v1/quotes", QUOTE)
    assert run(stub, "quote", "near:TUSD", "base:ETH", "1").exit_code == 0
    assert stub.paths().count("POST /api/v1/quotes") == 1


def test_a_token_the_gateway_does_not_list_is_refused(stub: StubGateway) -> None:
    result = run(stub, "swap", "base:USDC", "near:TUSD", "1", *SWAP_ARGS)
    assert result.exit_code == 2, result.output
    assert "DST" not in result.stderr and "SRC: base:USDC is not a token the gateway quotes on base" in flat(
        result.stderr
    )
    assert "quoted: base:TUSD" in flat(result.stderr)
    dst_wrong = run(stub, "swap", "base:TUSD", "near:0xabc", "1", *SWAP_ARGS)
    assert dst_wrong.exit_code == 2 and "DST: near:0xabc is not a token" in flat(dst_wrong.stderr)
    too_fine = run(stub, "swap", "base:TUSD", "near:TUSD", "1.0000001", *SWAP_ARGS)
    assert too_fine.exit_code == 2 and "AMOUNT: '1.0000001' has more than 6 decimal places" in flat(too_fine.stderr)
    assert stub.paths() == ["GET /api/v1/assets"] * 3


def test_assets_command(stub: StubGateway) -> None:
    table = run(stub, "assets")
    assert table.exit_code == 0, table.output
    rows = [flat(line).strip() for line in table.stdout.splitlines()]
    assert rows[0] == "type chain token decimals source destination"
    assert "base:TUSD base 0x5FbDB2315678afecb367f032d93F642f64180aa3 6 yes yes" in rows
    assert "base:ETH base native 18 no yes" in rows
    assert "near:NEAR near native 24 yes yes" in rows
    as_json = run(stub, "assets", "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == ASSETS


def test_bad_chain_is_a_usage_error(stub: StubGateway) -> None:
    result = run(stub, "quote", "eth:0x1", NEAR_TUSD, "1")
    assert result.exit_code == 2
    assert "SRC" in result.stderr


def test_gateway_error_is_one_line_naming_the_field(stub: StubGateway) -> None:
    error = {
        "code": "INVALID_ARGUMENT",
        "reason": "INVALID_REQUEST",
        "message": "receiver: required",
        "field": "receiver",
    }
    stub.reply("POST", "/api/v1/sessions", {"error": error}, status=400)
    result = run(stub, "swap", BASE_TUSD, NEAR_TUSD, "1", *SWAP_ARGS)
    assert result.exit_code == 3
    assert result.stderr == (
        'error: field "receiver" (--receiver): required [HTTP 400 INVALID_ARGUMENT INVALID_REQUEST]\n'
    )


def test_wrong_key(stub: StubGateway) -> None:
    error = {
        "code": "UNAUTHENTICATED",
        "reason": "API_KEY_INVALID",
        "message": "missing or unknown API key",
        "field": None,
    }
    stub.reply("GET", "/api/v1/sessions/s-1", {"error": error}, status=401)
    result = run(stub, "get", "s-1", key=None, env={"SWAPCTL_API_KEY": "from-env"})
    assert result.exit_code == 4
    assert "check --api-key or SWAPCTL_API_KEY" in result.stderr
    assert stub.requests[0].headers["X-API-Key"] == "from-env"


def test_server_error_without_api_body(stub: StubGateway) -> None:
    stub.reply("GET", "/api/v1/sessions", "upstream exploded", status=502)
    result = run(stub, "list")
    assert result.exit_code == 6
    assert "upstream exploded [HTTP 502]" in result.stderr


def test_connection_refused() -> None:
    result = run(None, "list")
    assert result.exit_code == 5
    assert result.stderr.startswith("error: cannot connect to the gateway at http://127.0.0.1:9 (connection refused)")


def test_signed_swap_follows_to_completed(stub: StubGateway, keys: Path) -> None:
    stub.reply("POST", "/api/v1/sessions", happy_until("initialized"), status=201)
    stub.reply("POST", "/api/v1/sessions/s-1/execute", happy_until("executing"))
    stub.ws_scripts = [
        [
            subscribed("s-1"),
            update(happy_until("source_locked"), "1-0"),
            update(happy_until("both_locked"), "2-0"),
            update(happy_until("completed", secret="bb" * 32), "3-0"),
            STAY,
        ]
    ]
    result = run(stub, "swap", BASE_TUSD, NEAR_TUSD, "25.5", "--sign", "--keys", str(keys), *SWAP_ARGS)
    assert result.exit_code == 0, result.output
    # swapctl signed the session's order with the maker's key and handed only the signature to the gateway.
    [executed] = stub.bodies("POST", "/api/v1/sessions/s-1/execute")
    assert set(executed) == {"signature"} and signer_of(executed["signature"]) == MAKER_ADDRESS
    assert MAKER_KEY.removeprefix("0x") not in json.dumps([r.body for r in stub.requests])
    assert "swapctl signed the order with the maker's key" in result.stdout
    body = stub.bodies("POST", "/api/v1/sessions")[0]
    assert body["src_amount"] == "25500000"
    assert body["maker"] == "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    assert body["receiver"] == "receiver.test.near"
    assert len(body["request_id"]) == 36
    assert stub.ws_subscriptions == [{"op": "subscribe", "channel": "session", "args": ["s-1"]}]
    assert stub.ws_headers[0]["X-API-Key"] == "k-1"
    out = result.stdout
    lines = out.splitlines()
    for state in ("initialized", "executing", "source_locked", "both_locked", "revealing_secret", "completed"):
        assert any(f"  {state} " in line or line.rstrip().endswith(state) for line in lines), out
    assert f"tx base {BASE_TX}" in out
    assert f"tx near {NEAR_TX}" in out
    assert "completed: receiver.test.near received 25.7 (25700000) (minimum was 25.245637 (25245637))" in out


def test_swap_that_ends_refunded_exits_1(stub: StubGateway, keys: Path) -> None:
    stub.reply("POST", "/api/v1/sessions", happy_until("initialized"), status=201)
    stub.reply("POST", "/api/v1/sessions/s-1/execute", happy_until("executing"))
    refunded = session(
        "refunded",
        ["initialized", "executing", "source_locking", "source_locked", "refunding", "refunded"],
        version=6,
        error={"reason": "DESTINATION_LOCK_FAILED", "message": "the destination lock failed"},
    )
    stub.ws_scripts = [[update(refunded, "9-0"), STAY]]
    result = run(stub, "swap", BASE_TUSD, NEAR_TUSD, "1", "--sign", "--keys", str(keys), *SWAP_ARGS)
    assert result.exit_code == 1, result.output
    assert "refunding" in result.stdout
    assert "the swap ended refunded: the destination lock failed [DESTINATION_LOCK_FAILED]" in result.stdout


def test_a_refunding_swap_shows_when_each_refund_window_opens(stub: StubGateway) -> None:
    now = int(time.time())
    steps = ["initialized", "executing", "source_locking", "source_locked", "refunding"]
    refunding = session(
        "refunding", steps, version=5, src_cancellation_at=now + 72, dst_cancellation_at=now - 5, src_lock_id="0xab"
    )
    refunded = session("refunded", [*steps, "refunded"], version=6, src_cancellation_at=now + 72)
    stub.reply("GET", "/api/v1/sessions/s-1", refunding)
    stub.ws_scripts = [[update(refunding, "5-0"), update(refunded, "6-0"), STAY]]
    watched = run(stub, "watch", "s-1")
    assert watched.exit_code == 1, watched.output
    line = next(line for line in watched.stdout.splitlines() if "refund window" in line)
    opens = time.strftime("%H:%M:%S", time.localtime(now + 72))
    assert re.fullmatch(
        rf"source refund window opens {opens} \(in 1m 1\ds\); destination refund window open since \S+", line
    ), line
    # Printed once while nothing changes, though the same session came twice.
    assert len([line for line in watched.stdout.splitlines() if "refund window" in line]) == 1
    got = run(stub, "get", "s-1")
    assert re.search(rf"source refund window opens {opens} \(in 1m 1\ds\)", flat(got.stdout)), got.stdout


def test_swap_without_dev_prints_the_maker_action(stub: StubGateway, tmp_path: object) -> None:
    stub.reply("POST", "/api/v1/sessions", happy_until("initialized"), status=201)
    result = run(stub, "swap", BASE_TUSD, NEAR_TUSD, "1", "--no-wait", "--request-id", "r-7", *SWAP_ARGS)
    assert result.exit_code == 0, result.output
    assert stub.bodies("POST", "/api/v1/sessions")[0]["request_id"] == "r-7"
    out = result.stdout
    assert "EIP-712" in out
    assert '"primaryType": "Order"' in out
    assert "spender 0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" in out
    assert "swapctl execute s-1 --signature" in out
    assert stub.paths() == ["GET /api/v1/assets", "POST /api/v1/sessions"]


def test_swap_waits_for_execute_from_elsewhere(stub: StubGateway) -> None:
    stub.reply("POST", "/api/v1/sessions", happy_until("initialized"), status=201)
    stub.ws_scripts = [[update(happy_until("executing"), "1-0"), update(happy_until("completed"), "2-0"), STAY]]
    result = run(stub, "swap", BASE_TUSD, NEAR_TUSD, "1", *SWAP_ARGS)
    assert result.exit_code == 0, result.output
    assert "waiting for the maker's step" in result.stdout


def test_near_maker_action(stub: StubGateway) -> None:
    near_call = {
        "contract": "htlc.test.near",
        "method": "ft_transfer_call",
        "args": {"amount": "1"},
        "deposit": "1",
        "gas": 3,
    }
    created = happy_until("initialized", maker_action={"near_call": near_call}, maker="maker.test.near")
    stub.reply("POST", "/api/v1/sessions", created, status=201)
    result = run(stub, "swap", NEAR_TUSD, BASE_TUSD, "1", "--no-wait", *SWAP_ARGS)
    assert result.exit_code == 0, result.output
    assert "htlc.test.near.ft_transfer_call" in result.stdout
    assert "swapctl execute s-1" in result.stdout


def test_watch_resumes_from_the_last_cursor(stub: StubGateway) -> None:
    stub.reply("GET", "/api/v1/sessions/s-1", happy_until("executing"))
    stub.ws_scripts = [
        [subscribed("s-1"), update(happy_until("source_locked"), "5-0")],  # then the connection drops
        [subscribed("s-1"), update(happy_until("completed"), "9-0"), STAY],
    ]
    result = run(stub, "watch", "s-1")
    assert result.exit_code == 0, result.output
    assert stub.ws_subscriptions == [
        {"op": "subscribe", "channel": "session", "args": ["s-1"]},
        {"op": "subscribe", "channel": "session", "args": [{"session_id": "s-1", "cursor": "5-0"}]},
    ]
    assert "reconnecting" in result.stdout


def test_watch_ignores_older_versions(stub: StubGateway) -> None:
    stub.reply("GET", "/api/v1/sessions/s-1", happy_until("both_locked"))
    stub.ws_scripts = [[update(happy_until("executing"), "1-0"), update(happy_until("completed"), "2-0"), STAY]]
    result = run(stub, "watch", "s-1")
    assert result.exit_code == 0, result.output


def test_watch_of_a_finished_session_needs_no_websocket(stub: StubGateway) -> None:
    stub.reply("GET", "/api/v1/sessions/s-1", happy_until("completed"))
    result = run(stub, "watch", "s-1", "--cursor", "3-0")
    assert result.exit_code == 0, result.output
    assert stub.ws_subscriptions == []


def test_watch_unknown_session(stub: StubGateway) -> None:
    error = {"code": "NOT_FOUND", "reason": "SESSION_NOT_FOUND", "message": "no session nope", "field": None}
    stub.reply("GET", "/api/v1/sessions/nope", {"error": error}, status=404)
    result = run(stub, "watch", "nope")
    assert result.exit_code == 3
    assert result.stderr == "error: no session nope [HTTP 404 NOT_FOUND SESSION_NOT_FOUND]\n"


def test_watch_error_event_is_fatal_unless_transient(stub: StubGateway) -> None:
    stub.reply("GET", "/api/v1/sessions/s-1", happy_until("executing"))
    stub.ws_scripts = [
        [ws_error("UNAVAILABLE", "session s-1: the session service is unavailable; retry later"), STAY],
        [ws_error("SESSION_NOT_FOUND", "session s-1: gone"), STAY],
    ]
    result = run(stub, "watch", "s-1")
    assert result.exit_code == 3
    assert "the gateway refused to follow session s-1: session s-1: gone [SESSION_NOT_FOUND]" in result.stderr
    assert len(stub.ws_subscriptions) == 2


def test_watch_gives_up_when_the_websocket_stays_down(stub: StubGateway) -> None:
    stub.reply("GET", "/api/v1/sessions/s-1", happy_until("executing"))
    stub.ws_scripts = [[] for _ in range(20)]  # every connection closes right after the subscription
    result = run(stub, "watch", "s-1")
    assert result.exit_code == 5
    assert "resume with: swapctl watch s-1" in result.stderr


def test_execute_checks_the_signature_locally(stub: StubGateway) -> None:
    result = run(stub, "execute", "s-1", "--signature", "0x1234")
    assert result.exit_code == 2
    assert "130 hex" in result.stderr
    assert stub.requests == []


def test_execute_with_signature(stub: StubGateway) -> None:
    stub.reply("POST", "/api/v1/sessions/s-1/execute", happy_until("executing"))
    result = run(stub, "execute", "s-1", "--signature", SIGNATURE, "--request-id", "r-1")
    assert result.exit_code == 0, result.output
    assert stub.bodies("POST", "/api/v1/sessions/s-1/execute") == [{"signature": SIGNATURE, "request_id": "r-1"}]
    assert "executing" in result.stdout


def test_list_get_cancel(stub: StubGateway) -> None:
    stub.reply(
        "GET",
        "/api/v1/sessions",
        {"sessions": [happy_until("completed"), happy_until("executing", session_id="s-2")], "next_page_token": "20"},
    )
    stub.reply("GET", "/api/v1/sessions/s-1", happy_until("both_locked"))
    stub.reply("POST", "/api/v1/sessions/s-1/cancel", session("cancelled", ["initialized", "cancelled"], version=2))

    listed = run(stub, "list", "--maker", "0xabc", "--page-size", "2")
    assert listed.exit_code == 0, listed.output
    assert stub.requests[0].query == {"maker": "0xabc", "page_size": "2"}
    assert "s-2" in listed.stdout
    assert flat(listed.stdout).startswith(
        "session state route pays receives created s-1 completed base->near 25.5 25.7"
    )
    assert "swapctl list --page-token 20" in listed.stdout

    got = run(stub, "get", "s-1")
    assert got.exit_code == 0, got.output
    assert "pays 25.5 (25500000)" in flat(got.stdout)
    assert BASE_TX in got.stdout
    assert NEAR_TX in got.stdout
    assert "both_locked" in got.stdout

    as_json = run(stub, "get", "s-1", "--json")
    assert '"state": "both_locked"' in as_json.stdout
    assert stub.paths()[-1] == "GET /api/v1/sessions/s-1"  # JSON needs no token list

    cancelled = run(stub, "cancel", "s-1")
    assert cancelled.exit_code == 0, cancelled.output
    assert stub.bodies("POST", "/api/v1/sessions/s-1/cancel") == [{}]
    assert "cancelled" in cancelled.stdout


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("amount", "99500000", "order's amount"),
        ("maker", "0x90F79bf6EB2c4f870365E785982E1f101E93b906", "order's maker"),
        ("token", "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0", "order's token"),
        ("hashlock", "0x" + "ee" * 32, "order's hashlock"),
        ("safetyDeposit", "1000000000000000000", "order's safety deposit"),
        (
            "timelocks",
            {"withdrawal": 10, "publicWithdrawal": 100, "cancellation": 10**8, "publicCancellation": 10**8 + 100},
            "cancellation timelock",
        ),
    ],
)
def test_sign_refuses_an_order_that_is_not_the_sessions(
    stub: StubGateway, keys: Path, field: str, value: object, named: str
) -> None:
    """A gateway that hands the maker another order than the session's terms gets nothing signed, nothing sent."""
    forged = happy_until("initialized")
    typed = json.loads(json.dumps(ORDER_TYPED_DATA))
    typed["message"][field] = value
    forged["maker_action"]["sign_order"]["typed_data"] = typed
    stub.reply("POST", "/api/v1/sessions", forged, status=201)
    result = run(stub, "swap", BASE_TUSD, NEAR_TUSD, "1", "--sign", "--keys", str(keys), *SWAP_ARGS)
    assert result.exit_code == 3, result.output
    assert f"not signed: the maker's step {named} is" in result.stderr
    assert result.stderr.rstrip().endswith("(session s-1)")
    assert stub.bodies("POST", "/api/v1/sessions/s-1/execute") == []


def test_sign_needs_a_keys_file_only_its_owner_reads(stub: StubGateway, keys: Path) -> None:
    keys.chmod(0o644)
    shared = run(stub, "swap", BASE_TUSD, NEAR_TUSD, "1", "--sign", "--keys", str(keys), *SWAP_ARGS)
    assert shared.exit_code == 2 and "--keys" in shared.output and "chmod 600" in flat(shared.output)
    missing = run(stub, "swap", BASE_TUSD, NEAR_TUSD, "1", "--sign", *SWAP_ARGS)
    assert missing.exit_code == 2 and "Keys file" in flat(missing.output)
    assert stub.requests == []  # refused before anything was sent


def test_execute_sign_signs_the_sessions_order(stub: StubGateway, keys: Path) -> None:
    stub.reply("GET", "/api/v1/sessions/s-1", happy_until("initialized"))
    stub.reply("POST", "/api/v1/sessions/s-1/execute", happy_until("executing"))
    result = run(stub, "execute", "s-1", "--sign", "--keys", str(keys), "--json")
    assert result.exit_code == 0, result.output
    [executed] = stub.bodies("POST", "/api/v1/sessions/s-1/execute")
    assert signer_of(executed["signature"]) == MAKER_ADDRESS
    both = run(stub, "execute", "s-1", "--sign", "--keys", str(keys), "--signature", SIGNATURE)
    assert both.exit_code == 2 and "not both" in both.output


def test_maker_mode_keeps_the_secret_and_sends_only_its_hash(stub: StubGateway, tmp_path: Path) -> None:
    chains = tmp_path / "chains.json"
    chains.write_text('{"near": {"rpc_url": "http://127.0.0.1:9", "htlc": "htlc.test.near"}}')
    error = {"code": "INVALID_ARGUMENT", "reason": "INVALID_ARGUMENT", "message": "maker: no", "field": "maker"}
    stub.reply("POST", "/api/v1/sessions", {"error": error}, status=400)
    maker_args = SWAP_ARGS[:4]
    result = run(
        stub,
        "swap",
        BASE_TUSD,
        NEAR_TUSD,
        "1",
        *maker_args,
        "--chains",
        str(chains),
        env={"SWAPCTL_STATE_DIR": str(tmp_path / "state")},
    )
    assert result.exit_code == 3, result.output
    [body] = stub.bodies("POST", "/api/v1/sessions")
    assert body["secret_mode"] == "maker" and "secret" not in body
    [saved] = (tmp_path / "state" / "secrets").glob("*.json")
    held = json.loads(saved.read_text())
    assert hashlib.sha256(bytes.fromhex(held["secret"])).hexdigest() == body["hashlock"] == saved.stem
    assert held["receiver"] == "receiver.test.near" and held["dst_chain"] == "near"


def test_json_follow_prints_one_line_per_version_and_nothing_else(stub: StubGateway, keys: Path) -> None:
    stub.reply("POST", "/api/v1/sessions", happy_until("initialized"), status=201)
    stub.reply("POST", "/api/v1/sessions/s-1/execute", happy_until("executing"))
    stub.ws_scripts = [
        [
            subscribed("s-1"),
            update(happy_until("source_locked"), "1-0"),
            update(happy_until("source_locked"), "1-1"),  # the same version again (a replay): printed once
            update(happy_until("completed", secret="bb" * 32), "3-0"),
            STAY,
        ]
    ]
    result = run(stub, "swap", BASE_TUSD, NEAR_TUSD, "1", "--sign", "--keys", str(keys), "--json", *SWAP_ARGS)
    assert result.exit_code == 0, result.output
    sessions = [json.loads(line) for line in result.stdout.splitlines()]
    states = [s["state"] for s in sessions]
    assert states == ["executing", "source_locked", "completed"], result.stdout
    assert "session s-1 created" in result.stderr


def test_short_help_option() -> None:
    result = CliRunner().invoke(app, ["swap", "-h"], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and "--secret-mode" in result.output and "--json" in result.output
    assert "--install-completion" in CliRunner().invoke(app, ["-h"], env={"COLUMNS": "250"}).output


def test_the_config_file_supplies_url_key_and_chains(stub: StubGateway, tmp_path: Path) -> None:
    """What `make run` writes: swapctl then works without --url, --api-key or --chains."""
    (tmp_path / "chains.json").write_text('{"near": {"rpc_url": "http://127.0.0.1:9", "htlc": "htlc.test.near"}}')
    config = tmp_path / "swapctl.json"
    config.write_text(json.dumps({"url": stub.url, "api_key": "from-config", "chains": "chains.json"}))
    stub.reply("GET", "/api/v1/sessions", {"sessions": [], "next_page_token": None})
    env = {
        "COLUMNS": "250",
        "SWAPCTL_URL": "",
        "SWAPCTL_API_KEY": "",
        "SWAPCTL_CHAINS": "",
        "SWAPCTL_CONFIG": str(config),
    }
    listed = CliRunner().invoke(app, ["list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert stub.requests[-1].headers["X-API-Key"] == "from-config"
    # The chains file comes from the config too: maker mode gets as far as the gateway.
    error = {"code": "INVALID_ARGUMENT", "reason": "INVALID_ARGUMENT", "message": "maker: no", "field": "maker"}
    stub.reply("POST", "/api/v1/sessions", {"error": error}, status=400)
    env["SWAPCTL_STATE_DIR"] = str(tmp_path / "state")
    swapped = CliRunner().invoke(app, ["swap", BASE_TUSD, NEAR_TUSD, "1", *SWAP_ARGS[:4]], env=env)
    assert swapped.exit_code == 3, swapped.output
    # An option still wins over the file.
    CliRunner().invoke(app, ["--api-key", "from-flag", "list"], env=env)
    assert stub.requests[-1].headers["X-API-Key"] == "from-flag"


def test_a_config_found_in_the_directory_counts_only_when_it_is_the_users_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `.localnet/swapctl.json` others may write could point the maker's check at chains of their choosing."""
    local = tmp_path / ".localnet"
    local.mkdir()
    (local / "chains.json").write_text("{}")
    (local / "swapctl.json").write_text(json.dumps({"url": "http://127.0.0.1:1", "chains": "chains.json"}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWAPCTL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nowhere"))
    for path in (local / "swapctl.json", local / "chains.json"):
        path.chmod(0o644)
    mine = load_config()
    assert mine.url == "http://127.0.0.1:1" and mine.chains == Path(".localnet") / "chains.json"
    (local / "chains.json").chmod(0o666)
    assert load_config().chains is None  # the chains file others may write is not trusted
    (local / "swapctl.json").chmod(0o666)
    assert load_config() == ClientConfig()  # nor a config others may write


def test_a_token_the_list_lacks_shows_in_base_units(stub: StubGateway) -> None:
    other = {"chain": "near", "token": "usdc.test.near"}
    stub.reply("GET", "/api/v1/sessions/s-1", happy_until("completed", dst=other))
    got = run(stub, "get", "s-1")
    assert got.exit_code == 0, got.output
    out = flat(got.stdout)
    assert "pays 25.5 (25500000)" in out and "receives 25700000" in out
    # A gateway without the token list: everything in base units, and a note why.
    del stub.replies[("GET", "/api/v1/assets")]
    bare = run(stub, "get", "s-1")
    assert bare.exit_code == 0, bare.output
    assert "pays 25500000" in flat(bare.stdout) and "amounts in base units" in bare.stderr


def test_execute_watch_json(stub: StubGateway) -> None:
    stub.reply("POST", "/api/v1/sessions/s-1/execute", happy_until("executing"))
    stub.ws_scripts = [[update(happy_until("completed"), "2-0"), STAY]]
    result = run(stub, "execute", "s-1", "--signature", SIGNATURE, "--watch", "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["state"] for line in result.stdout.splitlines()] == ["executing", "completed"]


def test_maker_and_receiver_come_from_the_config_by_chain(stub: StubGateway, tmp_path: Path, keys: Path) -> None:
    """What `make run` writes: `swapctl swap base:TUSD near:TUSD 25 --sign` works as printed."""
    config = tmp_path / "swapctl.json"
    accounts = {
        "maker": {"base": MAKER_ADDRESS, "near": "maker.test.near"},
        "receiver": {"base": "0x90F79bf6EB2c4f870365E785982E1f101E93b906", "near": "receiver.test.near"},
    }
    config.write_text(json.dumps({"url": stub.url, "api_key": "from-config", "keys": keys.name, **accounts}))
    stub.reply("POST", "/api/v1/sessions", happy_until("initialized"), status=201)
    stub.reply("POST", "/api/v1/sessions/s-1/execute", happy_until("executing"))
    stub.ws_scripts = [[update(happy_until("completed"), "3-0"), STAY]]
    env = {"COLUMNS": "250", "SWAPCTL_URL": "", "SWAPCTL_API_KEY": "", "SWAPCTL_CONFIG": str(config)}
    base_near = CliRunner().invoke(
        app, ["swap", "base:TUSD", "near:TUSD", "25", "--sign", "--secret-mode", "service"], env=env
    )
    assert base_near.exit_code == 0, base_near.output
    # The config's keys file signed it.
    [executed] = stub.bodies("POST", "/api/v1/sessions/s-1/execute")
    assert signer_of(executed["signature"]) == MAKER_ADDRESS
    near_base = CliRunner().invoke(
        app, ["swap", "near", "base:ETH", "2", "--no-wait", "--secret-mode", "service"], env=env
    )
    assert near_base.exit_code == 0, near_base.output
    first, second = stub.bodies("POST", "/api/v1/sessions")
    assert (first["maker"], first["receiver"]) == (accounts["maker"]["base"], accounts["receiver"]["near"])
    assert (second["maker"], second["receiver"]) == (accounts["maker"]["near"], accounts["receiver"]["base"])
    assert second["src_amount"] == str(2 * 10**24)
    # Without either, the option is named before anything is sent.
    config.write_text(json.dumps({"url": stub.url}))
    sent = len(stub.requests)
    missing = CliRunner().invoke(app, ["swap", "base:TUSD", "near:TUSD", "25", "--sign"], env=env)
    assert missing.exit_code == 2 and "--maker" in missing.output
    assert len(stub.requests) == sent


def test_execute_sign_refuses_a_maker_mode_session_whose_secret_this_machine_does_not_hold(
    stub: StubGateway, keys: Path, tmp_path: Path
) -> None:
    """Whoever knows a hashlock's secret could take the locked funds: swapctl signs a secret-mode-maker order
    only under a hashlock whose secret it holds."""
    state = {"SWAPCTL_STATE_DIR": str(tmp_path / "state")}
    secret = "5e" * 32
    hashlock = hashlib.sha256(bytes.fromhex(secret)).hexdigest()
    typed = json.loads(json.dumps(ORDER_TYPED_DATA))
    typed["message"]["hashlock"] = "0x" + hashlock
    maker_session = happy_until("initialized", secret_mode="maker", hashlock=hashlock)
    maker_session["maker_action"]["sign_order"]["typed_data"] = typed
    stub.reply("GET", "/api/v1/sessions/s-1", maker_session)
    stub.reply("POST", "/api/v1/sessions/s-1/execute", happy_until("executing"))
    refused = run(stub, "execute", "s-1", "--sign", "--keys", str(keys), env=state)
    assert refused.exit_code == 3, refused.output
    assert "this machine holds no secret for its hashlock" in flat(refused.stderr)
    assert stub.bodies("POST", "/api/v1/sessions/s-1/execute") == []

    secrets = tmp_path / "state" / "secrets"
    secrets.mkdir(parents=True)
    held = {"secret": secret, "hashlock": hashlock, "receiver": "r", "dst_chain": "near", "dst_token": "t"}
    (secrets / f"{hashlock}.json").write_text(json.dumps({**held, "session_id": "s-1", "released": False}))
    signed = run(stub, "execute", "s-1", "--sign", "--keys", str(keys), env=state)
    assert signed.exit_code == 0, signed.output
    [executed] = stub.bodies("POST", "/api/v1/sessions/s-1/execute")
    signable = encode_typed_data(full_message=typed)
    signature = bytes.fromhex(executed["signature"].removeprefix("0x"))
    assert Account.recover_message(signable, signature=signature) == MAKER_ADDRESS
