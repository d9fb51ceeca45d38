"""The resolver's liquidity on one chain, as gauges: its balance of every token the chain service serves
(`swap_resolver_balance`) and, where the operator set one, the floor below which it cannot cover the next
swap (`swap_resolver_liquidity_floor`). The chain services refresh the balances from their health probe;
docs/chain-services.md ("Resolver liquidity") has the settings and the alert."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from swap_runtime.metrics import RESOLVER_BALANCE, RESOLVER_LIQUIDITY_FLOOR

log = logging.getLogger(__name__)

NATIVE = "native"

# The resolver's balance of one token ("native" or the chain's token id), in base units.
ReadBalance = Callable[[str], Awaitable[int]]


class Liquidity:
    """Balance gauges for the native coin, `tokens` and every token with a floor; floor gauges as given."""

    def __init__(self, chain: str, tokens: Iterable[str], floors: Mapping[str, int], read: ReadBalance) -> None:
        self.chain = chain
        self.tokens = tuple(dict.fromkeys([NATIVE, *tokens, *floors]))  # in order, each once
        self._read = read
        for token, floor in floors.items():
            RESOLVER_LIQUIDITY_FLOOR.labels(chain, token).set(floor)

    async def refresh(self) -> None:
        """Reads each balance once, all at the same time, and sets the gauges of those read.

        A failed native read raises: it was the probe's liveness read of the chain before tokens were watched,
        and stays one. A failed token read is logged and leaves that token's last value, so one token contract
        that stopped answering does not take the service out of serving the others (transport faults count in
        swap_chain_rpc_errors_total, and fail the native read too)."""
        results = await asyncio.gather(*(self._read(token) for token in self.tokens), return_exceptions=True)
        native_error: BaseException | None = None
        for token, result in zip(self.tokens, results, strict=True):
            if not isinstance(result, BaseException):
                RESOLVER_BALANCE.labels(self.chain, token).set(result)
            elif token == NATIVE or not isinstance(result, Exception):
                native_error = native_error or result
            else:
                log.warning(
                    "resolver balance read failed",
                    extra={"chain": self.chain, "token": token, "error": repr(result)},
                )
        if native_error is not None:
            raise native_error
