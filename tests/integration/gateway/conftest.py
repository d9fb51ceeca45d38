"""One local stack for the gateway tests (anvil, NEAR devnet, Redis, the four services) and one gateway
process in front of it, dev mode on; tests that need other settings start gateways of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack

from tests.fixtures.gateway import API_KEY


@pytest.fixture(scope="package")
def stack(dev_stack: LocalStack) -> LocalStack:
    return dev_stack


@pytest.fixture(scope="package")
def gateway(dev_gateway: GatewayProcess) -> GatewayProcess:
    return dev_gateway


@pytest.fixture
async def api(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the shared gateway that sends the test API key."""
    async with httpx.AsyncClient(base_url=gateway.url, headers={"X-API-Key": API_KEY}, timeout=60) as client:
        yield client
