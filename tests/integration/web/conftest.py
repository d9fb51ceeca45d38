"""A local stack and a dev-mode gateway in front of it for the browser tests (started only when they run)."""

from __future__ import annotations

import pytest
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack


@pytest.fixture(scope="package")
def page_stack(dev_stack: LocalStack) -> LocalStack:
    return dev_stack


@pytest.fixture(scope="package")
def page_gateway(dev_gateway: GatewayProcess) -> GatewayProcess:
    return dev_gateway
