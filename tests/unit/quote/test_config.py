"""Settings from the environment: the token registry (JSON and devnet deployment files), the price source,
and the timelock plan checks made at start."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError
from quote.config import QuoteSettings
from quote.model import NATIVE, Chain, TimelockPlan, Timelocks, Token
from quote.pricing import Pricer
from quote.quoter import AmountLimit
from swap_runtime.quote_token import QuoteVerifier, new_key_pair, public_key

EVM_TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("QUOTE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QUOTE_SIGNING_KEY", "11" * 32)


def test_the_signing_key_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUOTE_SIGNING_KEY")
    with pytest.raises(ValidationError, match="QUOTE_SIGNING_KEY or QUOTE_SIGNING_KEY_FILE is required"):
        QuoteSettings()
    with pytest.raises(ValidationError, match="QUOTE_SIGNING_KEY: an Ed25519 private key must be 64 hex digits"):
        QuoteSettings(signing_key="abc")


def test_the_signing_key_from_a_file_signs_for_its_public_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("QUOTE_SIGNING_KEY")
    seed, public = new_key_pair()
    key_file = tmp_path / "signing.key"
    key_file.write_text(seed + "\n")
    monkeypatch.setenv("QUOTE_SIGNING_KEY_FILE", str(key_file))
    signer = QuoteSettings().signer()
    assert QuoteVerifier([public_key(public)]).open(signer.seal(b"terms")) == b"terms"
    key_file.write_text("not a key")
    with pytest.raises(ValueError, match="QUOTE_SIGNING_KEY_FILE="):
        QuoteSettings().signer()


def test_defaults_fit_the_chain_services_default_inclusion_bounds() -> None:
    s = QuoteSettings()
    # docs/safety.md: 20 (NEAR inclusion) + 240 + 60 (BASE inclusion) + 2 (skew) < 360, with 38 s to spare.
    assert s.timelock_plan() == TimelockPlan(Timelocks(2, 240, 360, 420), Timelocks(1, 120, 240, 300), 60)
    assert s.validity_s == 30
    assert s.prices == {"TUSD": Decimal(1), "ETH": Decimal(3000), "NEAR": Decimal(3)}
    registry = s.registry()
    # BASE source locks hold ERC-20 tokens only: native ETH is a destination only.
    assert registry.native(Chain.BASE) == Token(Chain.BASE, NATIVE, "ETH", 18, source=False)
    assert registry.native(Chain.NEAR) == Token(Chain.NEAR, NATIVE, "NEAR", 24)
    assert s.swap_terms().safety_deposits == {Chain.BASE: 10**15, Chain.NEAR: 10**22}
    assert s.amount_limits()["TUSD"] == AmountLimit(Decimal("0.1"), Decimal(1_000_000))


def test_tokens_and_tables_from_json_env(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = [
        {"chain": "base", "token": "0xabc0000000000000000000000000000000000001", "symbol": "TUSD", "decimals": 6},
        {"chain": "base", "token": "native", "symbol": "ETH", "decimals": 18},
        {"chain": "near", "token": "native", "symbol": "NEAR", "decimals": 24},
        {"chain": "near", "token": "tusd.test.near", "symbol": "TUSD", "decimals": 6},
    ]
    monkeypatch.setenv("QUOTE_TOKENS", json.dumps(tokens))
    monkeypatch.setenv("QUOTE_PRICES", '{"TUSD": "1.001", "ETH": "2500", "NEAR": "2.5"}')
    monkeypatch.setenv("QUOTE_LIMITS", '{"TUSD": {"min": "5"}}')
    monkeypatch.setenv("QUOTE_SRC_CANCELLATION_AFTER_S", "400")
    s = QuoteSettings()
    assert s.registry().find(Chain.NEAR, "tusd.test.near") == Token(Chain.NEAR, "tusd.test.near", "TUSD", 6)
    assert s.prices["TUSD"] == Decimal("1.001")
    assert s.amount_limits() == {"TUSD": AmountLimit(Decimal(5), None)}
    assert s.timelock_plan().src.cancellation_after_s == 400


def test_the_test_token_settings_add_the_test_tokens() -> None:
    registry = QuoteSettings(base_token_address=EVM_TOKEN, near_token_account="tusd.local").registry()
    assert registry.find(Chain.BASE, EVM_TOKEN.lower()) == Token(Chain.BASE, EVM_TOKEN, "TUSD", 6)
    assert registry.find(Chain.NEAR, "tusd.local") == Token(Chain.NEAR, "tusd.local", "TUSD", 6)


def test_static_prices_must_cover_the_registry() -> None:
    with pytest.raises(ValidationError, match="no price for NEAR"):
        QuoteSettings(prices={"ETH": Decimal(1), "TUSD": Decimal(1)})


def test_http_price_source_needs_a_url() -> None:
    with pytest.raises(ValidationError, match="QUOTE_PRICE_URL"):
        QuoteSettings(price_source="http")
    assert QuoteSettings(price_source="http", price_url="http://127.0.0.1:1").price_url


def test_registry_needs_the_natives() -> None:
    with pytest.raises(ValidationError, match="native token of base"):
        QuoteSettings(tokens=[{"chain": "near", "token": "native", "symbol": "NEAR", "decimals": 24}])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # dst cancellation 240 + margin 60 must stay below src cancellation
        ({"src_cancellation_after_s": 290, "src_public_withdrawal_after_s": 60}, "reveal_margin_s"),
        ({"reveal_margin_s": 120}, "reveal_margin_s"),
        ({"src_withdrawal_after_s": 250}, "src.public_withdrawal_after_s"),
        ({"dst_public_withdrawal_after_s": 240}, "dst.cancellation_after_s"),
        ({"dst_public_cancellation_after_s": 239}, "dst.public_cancellation_after_s"),
    ],
)
def test_timelock_plan_is_checked_at_start(overrides: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        QuoteSettings(**overrides)  # type: ignore[arg-type]


def test_the_documented_example_with_the_defaults() -> None:
    """docs/quote.md works 10 TUSD on BASE to TUSD on NEAR through the default settings."""
    s = QuoteSettings(near_token_account="tusd.test.near")
    pricer = Pricer(
        s.auction_policy(),
        s.fee_policy(),
        default_slippage_bps=s.default_slippage_bps,
        default_urgency=s.default_urgency,
    )
    src = Token(Chain.BASE, "0x1111111111111111111111111111111111111111", "TUSD", 6)
    dst = s.registry().find(Chain.NEAR, "tusd.test.near")
    assert dst is not None
    natives = {chain: s.registry().native(chain) for chain in Chain}
    p = pricer.price(
        src, dst, 10_000_000, s.prices, natives, slippage_bps=pricer.slippage(0), urgency=pricer.urgency(0), now=0
    )
    assert (p.market_rate, p.protocol_fee, p.network_fee) == (10**18, 10_000, 25_500)
    assert (p.auction.start_amount, p.auction.end_amount, p.auction.duration_s) == (10_064_500, 9_914_500, 60)
    assert p.min_received == 9_864_927
