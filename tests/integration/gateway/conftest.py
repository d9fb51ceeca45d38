"""One local stack for the gateway tests (anvil, NEAR devnet, Redis, the four services) and one gateway
process in front of it, dev mode on; tests that need other settings start gateways of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack, StackOptions

from tests.fixtures.gateway import API_KEY, gateway_env


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = StackOptions(work_dir=Path(tmp_path_factory.mktemp("gateway-stack")), poll_interval_s=0.1)
    with LocalStack(options) as running:
        yield running


@pytest.fixture(scope="package")
def gateway(stack: LocalStack, gateway_logs: Path) -> Iterator[GatewayProcess]:
    with GatewayProcess("gateway", gateway_env(stack), gateway_logs) as proc:
        yield proc


@pytest.fixture
async def api(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the shared gateway that sends the test API key."""
    async with httpx.AsyncClient(base_url=gateway.url, headers={"X-API-Key": API_KEY}, timeout=60) as client:
        yield client
