"""Price sources: the static table, and the HTTP source against a real local price API stub (retries, cache,
shared fetches, the answers it refuses)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from quote.price_source import HttpPriceSource, StaticPriceSource
from swap_devnet.procs import free_port
from swap_runtime.errors import FailedPrecondition, Unavailable

from tests.fixtures.quote import PriceStub

MakeSource = Callable[..., HttpPriceSource]


@pytest.fixture
async def http_source(price_stub: PriceStub) -> AsyncIterator[MakeSource]:
    """make(**options) -> an HttpPriceSource of the stub, closed after the test (no cache, no backoff by default)."""
    made: list[HttpPriceSource] = []

    def make(*, attempts: int = 3, timeout_s: float = 2.0, cache_ttl_s: float = 0.0) -> HttpPriceSource:
        source = HttpPriceSource(
            price_stub.url, attempts=attempts, timeout_s=timeout_s, cache_ttl_s=cache_ttl_s, backoff_s=0
        )
        made.append(source)
        return source

    yield make
    for source in made:
        await source.close()


async def test_static_prices() -> None:
    source = StaticPriceSource({"TUSD": Decimal(1), "NEAR": Decimal("3.25")})
    assert await source.usd_price("NEAR") == Decimal("3.25")
    with pytest.raises(FailedPrecondition) as err:
        await source.usd_price("DOGE")
    assert err.value.reason == "PRICE_UNAVAILABLE"


@pytest.mark.parametrize("price", [Decimal(0), Decimal(-1), Decimal("NaN")])
def test_static_prices_must_be_positive(price: Decimal) -> None:
    with pytest.raises(ValueError, match="positive"):
        StaticPriceSource({"X": price})


async def test_http_price(price_stub: PriceStub, http_source: MakeSource) -> None:
    price_stub.prices["NEAR"] = "3.141592653589793238"
    source = http_source()
    assert await source.usd_price("NEAR") == Decimal("3.141592653589793238")
    assert await source.usd_price("TUSD") == Decimal(1)
    assert price_stub.requests == ["NEAR", "TUSD"]


async def test_http_retries_server_errors(price_stub: PriceStub, http_source: MakeSource) -> None:
    price_stub.fail_next = 2
    assert await http_source(attempts=3).usd_price("ETH") == Decimal(3000)
    assert price_stub.requests == ["ETH"] * 3


async def test_http_gives_up_after_its_attempts(price_stub: PriceStub, http_source: MakeSource) -> None:
    price_stub.fail_next = 10
    with pytest.raises(Unavailable) as err:
        await http_source(attempts=3).usd_price("ETH")
    assert err.value.reason == "PRICE_SOURCE_UNAVAILABLE"
    assert len(price_stub.requests) == 3


async def test_http_retries_timeouts(price_stub: PriceStub, http_source: MakeSource) -> None:
    price_stub.delay_s = 0.5
    with pytest.raises(Unavailable) as err:
        await http_source(attempts=2, timeout_s=0.1).usd_price("ETH")
    assert err.value.reason == "PRICE_SOURCE_UNAVAILABLE"
    assert len(price_stub.requests) == 2


async def test_http_unreachable() -> None:
    source = HttpPriceSource(f"http://127.0.0.1:{free_port()}", attempts=2, backoff_s=0, cache_ttl_s=0)
    try:
        with pytest.raises(Unavailable) as err:
            await source.usd_price("ETH")
        assert err.value.reason == "PRICE_SOURCE_UNAVAILABLE"
    finally:
        await source.close()


async def test_http_unknown_symbol_is_not_retried(price_stub: PriceStub, http_source: MakeSource) -> None:
    with pytest.raises(FailedPrecondition) as err:
        await http_source(attempts=3).usd_price("DOGE")
    assert err.value.reason == "PRICE_UNAVAILABLE"
    assert price_stub.requests == ["DOGE"]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '["ETH", "3000"]',
        '{"symbol": "BTC", "usd": "3000"}',
        '{"symbol": "ETH"}',
        '{"symbol": "ETH", "usd": 3000.5}',
        '{"symbol": "ETH", "usd": "three"}',
        '{"symbol": "ETH", "usd": "0"}',
        '{"symbol": "ETH", "usd": "-1"}',
        '{"symbol": "ETH", "usd": "Infinity"}',
    ],
)
async def test_http_refuses_unusable_answers(price_stub: PriceStub, http_source: MakeSource, body: str) -> None:
    price_stub.bodies["ETH"] = body
    with pytest.raises(Unavailable) as err:
        await http_source().usd_price("ETH")
    assert err.value.reason == "PRICE_SOURCE_INVALID"
    assert price_stub.requests == ["ETH"]


async def test_http_cache_reuses_a_price_for_its_ttl(price_stub: PriceStub, http_source: MakeSource) -> None:
    source = http_source(cache_ttl_s=0.3)
    assert await source.usd_price("NEAR") == Decimal(3)
    price_stub.prices["NEAR"] = "4"
    assert await source.usd_price("NEAR") == Decimal(3)
    assert price_stub.requests == ["NEAR"]
    await asyncio.sleep(0.4)
    assert await source.usd_price("NEAR") == Decimal(4)
    assert price_stub.requests == ["NEAR", "NEAR"]


async def test_http_cache_keeps_no_failures(price_stub: PriceStub, http_source: MakeSource) -> None:
    source = http_source(cache_ttl_s=30, attempts=1)
    price_stub.fail_next = 1
    with pytest.raises(Unavailable):
        await source.usd_price("NEAR")
    assert await source.usd_price("NEAR") == Decimal(3)
    assert len(price_stub.requests) == 2


async def test_http_concurrent_requests_share_one_fetch(price_stub: PriceStub, http_source: MakeSource) -> None:
    price_stub.delay_s = 0.1
    source = http_source(cache_ttl_s=5)
    prices = await asyncio.gather(*(source.usd_price("ETH") for _ in range(20)))
    assert prices == [Decimal(3000)] * 20
    assert price_stub.requests == ["ETH"]
