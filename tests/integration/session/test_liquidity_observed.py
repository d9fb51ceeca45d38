"""The resolver's liquidity as the chain services export it on /metrics: every watched balance equals what the
chain says, follows a transfer within a probe interval, and the floors are the stack's settings.

This file sorts before the swap tests of the package, so no swap moves the resolver's balances meanwhile."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families
from py_near.account import Account as NearAccount
from swap_devnet.evm import TOKEN_DECIMALS, send_transaction
from swap_devnet.stack import LocalStack

from tests.integration.swaps import Balances

pytestmark = pytest.mark.integration

GIFT = 10**TOKEN_DECIMALS  # 1 TUSD, from the maker to the resolver on each chain
DEV_FLOOR = 10_000 * 10**TOKEN_DECIMALS  # swap_devnet.stack's CHAIN_*_MIN_LIQUIDITY for TUSD
REFRESH_BOUND_S = 20.0  # the health probe reads the balances every 5 s


def gauge(stack: LocalStack, service: str, name: str, **labels: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.metrics_ports[service]}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def settled(stack: LocalStack, service: str, chain: str, token: str, read: Callable[[], int]) -> int:
    """The balance read from the chain once the scraped gauge equals it (float64: exact for TUSD amounts)."""
    deadline = time.monotonic() + REFRESH_BOUND_S
    while True:
        on_chain = read()
        scraped = gauge(stack, service, "swap_resolver_balance", chain=chain, token=token)
        if scraped == float(on_chain):
            return on_chain
        assert time.monotonic() < deadline, f"{service} exports {token} = {scraped}, the chain says {on_chain}"
        await asyncio.sleep(0.5)


async def test_scraped_resolver_balances_equal_the_chains_and_follow_a_transfer(stack: LocalStack) -> None:
    assert stack.evm is not None and stack.near is not None and stack.near_devnet is not None
    balances = Balances(stack)
    evm, near, devnet = stack.evm, stack.near, stack.near_devnet
    base_resolver, near_resolver = evm.resolver.address, near.resolver.account_id

    def base_tusd() -> int:
        return balances.base(base_resolver)

    def near_tusd() -> int:
        return balances.near_tusd(near_resolver)

    await settled(stack, "chain-base", "base", "native", lambda: int(balances.w3.eth.get_balance(base_resolver)))
    await settled(stack, "chain-near", "near", "native", lambda: devnet.balance(near_resolver))
    base_before = await settled(stack, "chain-base", "base", evm.token, base_tusd)
    near_before = await settled(stack, "chain-near", "near", near.token_id, near_tusd)
    assert base_before > 0 and near_before > 0
    assert gauge(stack, "chain-base", "swap_resolver_liquidity_floor", chain="base", token=evm.token) == DEV_FLOOR
    assert gauge(stack, "chain-near", "swap_resolver_liquidity_floor", chain="near", token=near.token_id) == DEV_FLOOR
    # No floor for native: the gas alert (SwapResolverLiquidityLow) covers it.
    assert gauge(stack, "chain-base", "swap_resolver_liquidity_floor", chain="base", token="native") is None

    send_transaction(balances.w3, evm.maker.private_key, balances.token.functions.transfer(base_resolver, GIFT))
    maker = NearAccount(near.maker.account_id, near.maker.private_key, near.rpc_url)
    await maker.startup()
    try:
        sent = await maker.function_call(
            near.token_id, "ft_transfer", {"receiver_id": near_resolver, "amount": str(GIFT)}, 30 * 10**12, 1
        )
    finally:
        await maker.shutdown()
    assert "Failure" not in (sent.status or {}), sent.status

    assert await settled(stack, "chain-base", "base", evm.token, base_tusd) == base_before + GIFT
    assert await settled(stack, "chain-near", "near", near.token_id, near_tusd) == near_before + GIFT
