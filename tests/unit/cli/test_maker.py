"""swapctl --sign's checks of a NEAR source's maker call: what the session asked for or nothing is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from swapctl.errors import CliError, ExitCode
from swapctl.maker import MAX_NEAR_FEE, MakerKeys, MakerSigner, load_keys
from swapctl.verify import ChainAccess

HTLC = "htlc.test.near"
TOKEN = "token.test.near"
HASHLOCK = "aa" * 32
KEYS = MakerKeys(Path("keys.json"), near_account="maker.test.near", near_key="ed25519:x")
CHAINS = {"near": ChainAccess("http://127.0.0.1:9", HTLC)}
SRC_TIMELOCKS = {
    "withdrawal_after_s": 10,
    "public_withdrawal_after_s": 20,
    "cancellation_after_s": 100,
    "public_cancellation_after_s": 200,
}


def near_session(token: str = TOKEN, **call: Any) -> dict[str, Any]:
    terms = {
        "nonce": "1",
        "beneficiary": "resolver.test.near",
        "hashlock": HASHLOCK,
        # Nanoseconds after the lock lands, as the HTLC takes them.
        "timelocks": {k.removesuffix("_after_s"): str(v * 10**9) for k, v in SRC_TIMELOCKS.items()},
        "safety_deposit": "0",
    }
    if token == "native":
        near_call = {"contract": HTLC, "method": "lock_native", "args": terms, "deposit": "2000", "gas": 30}
    else:
        args = {"receiver_id": HTLC, "amount": "1000", "msg": json.dumps(terms)}
        near_call = {"contract": token, "method": "ft_transfer_call", "args": args, "deposit": "1", "gas": 60}
    near_call.update(call)
    prepay = {"contract": HTLC, "method": "deposit_native", "args": {}, "deposit": "5", "gas": 30}
    return {
        "session_id": "s-1",
        "maker": "maker.test.near",
        "src": {"chain": "near", "token": token},
        "src_amount": "1000",
        "hashlock": HASHLOCK,
        "quote": {"timelocks": {"src": SRC_TIMELOCKS}},
        "maker_action": {"near_call": near_call, "near_prepay": prepay},
    }


def test_the_sessions_call_is_made_after_its_top_up() -> None:
    calls = MakerSigner(KEYS, CHAINS).check_near_calls(near_session())
    assert [c["method"] for c in calls] == ["deposit_native", "ft_transfer_call"]
    native = MakerSigner(KEYS, CHAINS).check_near_calls(near_session("native"))
    assert [c["method"] for c in native] == ["deposit_native", "lock_native"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"contract": "evil.test.near"}, "contract"),
        ({"method": "ft_transfer"}, "method"),
        ({"args": {"receiver_id": "evil.test.near", "amount": "1000", "msg": "{}"}}, "receiver"),
        ({"args": {"receiver_id": HTLC, "amount": "1001", "msg": "{}"}}, "amount"),
        ({"args": {"receiver_id": HTLC, "amount": "1000", "msg": json.dumps({"hashlock": "bb" * 32})}}, "hashlock"),
        ({"args": {"receiver_id": HTLC, "amount": "1000", "msg": "not json"}}, "message"),
    ],
)
def test_a_call_that_is_not_the_sessions_is_refused(change: dict[str, Any], named: str) -> None:
    with pytest.raises(CliError) as caught:
        MakerSigner(KEYS, CHAINS).check_near_calls(near_session(**change))
    assert caught.value.exit_code is ExitCode.REJECTED
    assert f"not signed: the maker's step {named} is" in caught.value.message


def _terms(session: dict[str, Any]) -> dict[str, Any]:
    call = session["maker_action"]["near_call"]
    terms: dict[str, Any] = call["args"] if call["method"] == "lock_native" else json.loads(call["args"]["msg"])
    return terms


@pytest.mark.parametrize("token", [TOKEN, "native"])
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"timelocks": {"cancellation": str(10**8 * 10**9)}}, "cancellation timelock"),
        ({"timelocks": {"public_cancellation": "200"}}, "public_cancellation timelock"),  # seconds, not ns
        ({"timelocks": {"withdrawal": "0"}}, "withdrawal timelock"),
        ({"safety_deposit": "5000"}, "safety deposit"),
    ],
)
def test_terms_that_are_not_the_quotes_are_refused(token: str, change: dict[str, Any], named: str) -> None:
    """A longer cancellation would hold the maker's funds longer if the swap fails; a safety deposit would
    take more from the maker than the session asked."""
    session = near_session(token)
    terms = _terms(session)
    for key, value in change.items():
        terms[key] = {**terms[key], **value} if isinstance(value, dict) else value
    call = session["maker_action"]["near_call"]
    if call["method"] == "ft_transfer_call":
        call["args"]["msg"] = json.dumps(terms)
    with pytest.raises(CliError) as caught:
        MakerSigner(KEYS, CHAINS).check_near_calls(session)
    assert f"not signed: the maker's step {named} is" in caught.value.message


def test_a_deposit_or_top_up_beyond_the_storage_fee_is_refused() -> None:
    with pytest.raises(CliError, match="deposit beyond the amount"):
        MakerSigner(KEYS, CHAINS).check_near_calls(near_session("native", deposit=str(1000 + MAX_NEAR_FEE + 1)))
    session = near_session()
    session["maker_action"]["near_prepay"]["deposit"] = str(MAX_NEAR_FEE + 1)
    with pytest.raises(CliError, match="top-up deposit"):
        MakerSigner(KEYS, CHAINS).check_near_calls(session)


def test_a_top_up_elsewhere_and_a_short_native_deposit_are_refused() -> None:
    session = near_session()
    session["maker_action"]["near_prepay"]["contract"] = "evil.test.near"
    with pytest.raises(CliError, match="top-up contract"):
        MakerSigner(KEYS, CHAINS).check_near_calls(session)
    with pytest.raises(CliError, match="deposit"):
        MakerSigner(KEYS, CHAINS).check_near_calls(near_session("native", deposit="999"))


def test_another_makers_session_and_a_missing_chain_are_refused() -> None:
    other = near_session()
    other["maker"] = "someone.test.near"
    with pytest.raises(CliError, match="maker"):
        MakerSigner(KEYS, CHAINS).check_near_calls(other)
    with pytest.raises(CliError, match="Chains file") as caught:
        MakerSigner(KEYS, {}).check_near_calls(near_session())
    assert caught.value.exit_code is ExitCode.USAGE


def test_keys_file_shapes(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"near": {"account_id": "maker.test.near"}}))
    path.chmod(0o600)
    with pytest.raises(CliError, match="lacks 'private_key'"):
        load_keys(path)
    path.write_text(json.dumps({"near": {"account_id": "m.test.near", "private_key": "ed25519:k"}}))
    keys = load_keys(path)
    assert (keys.base_key, keys.near_account, keys.near_key) == (None, "m.test.near", "ed25519:k")
    with pytest.raises(CliError, match='no "base" key'):
        MakerSigner(keys, {}).sign_order({"maker_action": {"sign_order": {"typed_data": {}}}})
