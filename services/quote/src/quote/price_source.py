"""USD prices by token symbol: a fixed table (local stacks, tests) or a simple HTTP price API.

The HTTP API answers GET {base_url}/price?symbol=X with {"symbol": "X", "usd": "1.23"}. Answers are cached
for a few seconds, because every quote needs four prices and a price feed moves slower than quotes arrive;
concurrent requests for the same symbol share one fetch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import aiohttp
from async_lru import alru_cache
from swap_runtime.errors import FailedPrecondition, Unavailable
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

log = logging.getLogger(__name__)


class PriceSource(Protocol):
    async def usd_price(self, symbol: str) -> Decimal:
        """The USD price of one whole token (not a base unit); > 0."""
        ...

    async def usd_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        """usd_price of each symbol, by symbol."""
        ...

    async def close(self) -> None: ...


def _unknown(symbol: str) -> FailedPrecondition:
    return FailedPrecondition(f"no USD price for {symbol}", reason="PRICE_UNAVAILABLE", metadata={"symbol": symbol})


class StaticPriceSource:
    def __init__(self, prices: Mapping[str, Decimal]) -> None:
        for symbol, price in prices.items():
            if not price.is_finite() or price <= 0:
                raise ValueError(f"price of {symbol} must be a positive number, got {price}")
        self._prices = dict(prices)

    async def usd_price(self, symbol: str) -> Decimal:
        try:
            return self._prices[symbol]
        except KeyError:
            raise _unknown(symbol) from None

    async def usd_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        # No task per symbol: a table lookup never waits.
        try:
            return {symbol: self._prices[symbol] for symbol in symbols}
        except KeyError as err:
            raise _unknown(str(err.args[0])) from None

    async def close(self) -> None:
        return None


class _Transient(Exception):
    """A failure worth another try: no connection, a timeout, a 5xx or a 429."""


class HttpPriceSource:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 2.0,
        attempts: int = 3,
        cache_ttl_s: float = 5.0,
        backoff_s: float = 0.1,
    ) -> None:
        self._url = base_url.rstrip("/") + "/price"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._session: aiohttp.ClientSession | None = None
        self._cached = alru_cache(maxsize=1024, ttl=cache_ttl_s)(self._fetch) if cache_ttl_s > 0 else None

    async def usd_price(self, symbol: str) -> Decimal:
        if self._cached is not None:
            return await self._cached(symbol)
        return await self._fetch(symbol)

    async def usd_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        wanted = list(symbols)
        return dict(zip(wanted, await asyncio.gather(*map(self.usd_price, wanted)), strict=True))

    async def close(self) -> None:
        if self._cached is not None:
            await self._cached.cache_close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession belongs to the event loop that is running when it is made.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)
        return self._session

    async def _fetch(self, symbol: str) -> Decimal:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff_s, max=2.0),
            retry=retry_if_exception_type(_Transient),
            before_sleep=before_sleep_log(log, logging.INFO),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    body = await self._get(symbol)
        except _Transient as err:
            log.warning("price source unavailable", extra={"symbol": symbol, "error": str(err)})
            raise Unavailable(
                f"price source unavailable for {symbol}: {err}", reason="PRICE_SOURCE_UNAVAILABLE"
            ) from None
        return self._parse(symbol, body)

    async def _get(self, symbol: str) -> Any:
        try:
            async with self._client().get(self._url, params={"symbol": symbol}) as reply:
                if reply.status == 429 or reply.status >= 500:
                    raise _Transient(f"HTTP {reply.status}")
                if reply.status == 404:
                    raise _unknown(symbol)
                if reply.status != 200:
                    raise Unavailable(
                        f"price source answered HTTP {reply.status} for {symbol}", reason="PRICE_SOURCE_INVALID"
                    )
                return await reply.json(content_type=None)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as err:
            raise _Transient(f"{type(err).__name__}: {err}") from err
        except ValueError as err:
            raise Unavailable(f"price source sent no JSON for {symbol}", reason="PRICE_SOURCE_INVALID") from err

    @staticmethod
    def _parse(symbol: str, body: Any) -> Decimal:
        invalid = Unavailable(f"price source sent no usable price for {symbol}", reason="PRICE_SOURCE_INVALID")
        if not isinstance(body, dict) or body.get("symbol") != symbol or not isinstance(body.get("usd"), str):
            raise invalid
        try:
            price = Decimal(body["usd"])
        except InvalidOperation:
            raise invalid from None
        if not price.is_finite() or price <= 0:
            raise invalid
        return price
