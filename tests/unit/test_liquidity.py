"""The resolver's liquidity gauges (swap_runtime.liquidity) and the chain settings that choose their tokens."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chain_base.config import ChainBaseSettings
from chain_near.config import ChainNearSettings
from prometheus_client import REGISTRY
from pydantic import SecretStr, ValidationError
from swap_runtime.liquidity import Liquidity

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
_BASE: dict[str, Any] = {
    "escrow_src": "0x" + "11" * 20,
    "escrow_dst": "0x" + "22" * 20,
    "resolver_key": SecretStr("0x" + "33" * 32),
}
_NEAR: dict[str, Any] = {
    "htlc_account": "htlc.test.near",
    "resolver_account": "resolver.test.near",
    "resolver_key": SecretStr("k"),
}


def gauge(name: str, chain: str, token: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"chain": chain, "token": token})


class Balances:
    def __init__(self, **values: int) -> None:
        self.values = values
        self.reads: list[str] = []
        self.failing: set[str] = set()

    async def read(self, token: str) -> int:
        self.reads.append(token)
        if token in self.failing:
            raise RuntimeError(f"{token} does not answer")
        return self.values[token]


async def test_one_read_per_token_sets_balances_and_floors() -> None:
    balances = Balances(native=7, tusd=1_000, other=5)
    liquidity = Liquidity("unit-a", ["tusd", "tusd", "native"], {"tusd": 2_000, "other": 0}, balances.read)
    assert liquidity.tokens == ("native", "tusd", "other")
    assert gauge("swap_resolver_liquidity_floor", "unit-a", "tusd") == 2_000
    assert gauge("swap_resolver_liquidity_floor", "unit-a", "other") == 0
    assert gauge("swap_resolver_liquidity_floor", "unit-a", "native") is None  # no floor, no alert
    await liquidity.refresh()
    assert sorted(balances.reads) == ["native", "other", "tusd"]
    assert gauge("swap_resolver_balance", "unit-a", "native") == 7
    assert gauge("swap_resolver_balance", "unit-a", "tusd") == 1_000
    balances.values["tusd"] = 3_000
    await liquidity.refresh()
    assert gauge("swap_resolver_balance", "unit-a", "tusd") == 3_000


async def test_a_failed_token_read_keeps_its_last_value_and_the_probe_passing() -> None:
    balances = Balances(native=7, tusd=1_000, other=5)
    liquidity = Liquidity("unit-b", ["tusd", "other"], {}, balances.read)
    await liquidity.refresh()
    balances.failing.add("tusd")
    balances.values.update(native=8, tusd=1, other=6)
    await liquidity.refresh()
    assert gauge("swap_resolver_balance", "unit-b", "tusd") == 1_000
    assert gauge("swap_resolver_balance", "unit-b", "other") == 6
    assert gauge("swap_resolver_balance", "unit-b", "native") == 8


async def test_a_failed_native_read_fails_the_probe_after_setting_the_tokens() -> None:
    balances = Balances(native=7, tusd=1_000)
    balances.failing.add("native")
    liquidity = Liquidity("unit-c", ["tusd"], {}, balances.read)
    with pytest.raises(RuntimeError, match="native does not answer"):
        await liquidity.refresh()
    assert gauge("swap_resolver_balance", "unit-c", "tusd") == 1_000
    assert gauge("swap_resolver_balance", "unit-c", "native") is None


def test_base_settings_checksum_tokens() -> None:
    settings = ChainBaseSettings(
        **_BASE, tokens=[TOKEN.lower(), "native"], min_liquidity={TOKEN.lower(): 10, "native": "5"}
    )
    assert settings.tokens == [TOKEN]
    assert settings.min_liquidity == {TOKEN: 10, "native": 5}
    with pytest.raises(ValidationError, match="neither"):
        ChainBaseSettings(**_BASE, tokens=["tusd"])
    with pytest.raises(ValidationError):
        ChainBaseSettings(**_BASE, min_liquidity={TOKEN: -1})


def test_base_settings_read_the_floors_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAIN_BASE_MIN_LIQUIDITY", json.dumps({TOKEN: "1000000000000"}))
    assert ChainBaseSettings(**_BASE).min_liquidity == {TOKEN: 10**12}


def test_near_settings_trim_tokens_and_floors() -> None:
    settings = ChainNearSettings(**_NEAR, min_liquidity={" token.test.near ": 10**12})
    assert settings.tokens == []
    assert settings.min_liquidity == {"token.test.near": 10**12}
    assert ChainNearSettings(**_NEAR, tokens=["native", " usdc.near "]).tokens == ["usdc.near"]
