"""A local stack and a dev-mode gateway in front of it for swapctl's end-to-end tests."""

from __future__ import annotations

import pytest
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack


@pytest.fixture(scope="package")
def cli_stack(dev_stack: LocalStack) -> LocalStack:
    return dev_stack


@pytest.fixture(scope="package")
def cli_gateway(dev_gateway: GatewayProcess) -> GatewayProcess:
    return dev_gateway
