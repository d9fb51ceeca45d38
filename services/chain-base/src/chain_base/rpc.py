"""The EVM JSON-RPC connection: one AsyncWeb3 with retries on transport faults (tenacity), one keep-alive HTTP
session, and the latest block read once for every caller that asks at the same time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from swap_runtime.errors import Unavailable
from swap_runtime.metrics import CHAIN_RPC_ERRORS, CHAIN_RPC_LATENCY
from swap_runtime.singleflight import SingleFlight
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import TimeExhausted
from web3.types import BlockData, RPCEndpoint

log = logging.getLogger(__name__)
T = TypeVar("T")

# Faults of the transport, not answers of the node: worth another try.
TRANSIENT = (aiohttp.ClientError, ConnectionError, TimeoutError, TimeExhausted, OSError)


class _SessionProvider(AsyncHTTPProvider):
    """web3's HTTP provider, posting through one aiohttp session it holds (keep-alive connections to the node).
    web3's own session cache takes a threading lock through the default executor on every request: a thread
    hop per node call, a tenth of this service's CPU under load."""

    session: aiohttp.ClientSession | None = None

    async def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        if self.session is None or self.endpoint_uri is None:
            return await super()._make_request(method, request_data)
        kwargs = dict(self.get_request_kwargs())
        async with self.session.post(str(self.endpoint_uri), data=request_data, **kwargs) as reply:
            reply.raise_for_status()
            return await reply.read()


def connect(rpc_url: str, timeout_s: float = 10.0) -> AsyncWeb3[AsyncHTTPProvider]:
    # web3's own retry would double ours; tenacity below owns retrying.
    provider = _SessionProvider(
        rpc_url,
        request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout_s)},
        exception_retry_configuration=None,
    )
    w3: AsyncWeb3[AsyncHTTPProvider] = AsyncWeb3(provider)
    # Both check what this service already fixes itself (chain id at start, its own tx fields) and each
    # costs an extra eth_chainId / ENS round trip per call.
    w3.middleware_onion.remove("validation")
    w3.middleware_onion.remove("ens_name_to_address")
    return w3


class Rpc:
    """Runs node calls with exponential backoff on transport faults; gives up as Unavailable."""

    def __init__(self, w3: AsyncWeb3[AsyncHTTPProvider], attempts: int) -> None:
        self.w3 = w3
        self._attempts = attempts
        self._latest_flight: SingleFlight[str, BlockData] = SingleFlight()
        self._latest: tuple[float, BlockData] | None = None

    async def latest_block(self, max_age_s: float = 0.0) -> BlockData:
        """The latest block. Callers asking while a read is in flight share it (under load, one request serves
        every lock view and chain-info call of that moment); with `max_age_s`, a block read that recently is
        answered from memory (fees: a block or two old only moves the base fee by 12.5% a block, inside the
        fee cap's margin). A shared read is at most one round trip older than the call: a head that is a
        moment behind only ever makes a window look later and a lock less confirmed than it is."""
        cached = self._latest
        if max_age_s > 0 and cached is not None and time.monotonic() - cached[0] <= max_age_s:
            return cached[1]
        return await self._latest_flight.run("latest", self._read_latest)

    def latest_seen(self) -> int:
        """The number of the latest block read so far (0 before the first)."""
        return int(self._latest[1]["number"]) if self._latest is not None else 0

    async def _read_latest(self) -> BlockData:
        w3 = self.w3
        block = await self.call("get_block", lambda: w3.eth.get_block("latest"))
        self._latest = (time.monotonic(), block)
        return block

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        with CHAIN_RPC_LATENCY.labels("base", what).time():
            return await self._call(what, fn)

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(TRANSIENT),
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.2, max=5),
                reraise=True,
            ):
                with attempt:
                    # Shielded: web3 guards its cached HTTP session with a threading lock taken in an
                    # executor, and a request cancelled mid-acquire (a client hanging up) can leave that
                    # lock held, freezing every later call. A shielded request always runs to its end.
                    return await asyncio.shield(fn())
        except TRANSIENT as exc:
            log.warning("rpc unavailable", extra={"call": what, "error": repr(exc)})
            CHAIN_RPC_ERRORS.labels("base", what).inc()
            raise Unavailable(f"EVM RPC unavailable during {what}", reason="CHAIN_RPC_UNAVAILABLE") from exc
        raise AssertionError("unreachable")

    async def keep_alive(self) -> None:
        """Reuses connections to the node: web3's own session opens a new one per call (force_close)."""
        session = aiohttp.ClientSession(raise_for_status=True, connector=aiohttp.TCPConnector(limit=64))
        provider = self.w3.provider
        if isinstance(provider, _SessionProvider):
            provider.session = session
        else:
            await provider.cache_async_session(session)

    async def close(self) -> None:
        provider = self.w3.provider
        if isinstance(provider, _SessionProvider) and provider.session is not None:
            await provider.session.close()
            provider.session = None
        await provider.disconnect()
