"""A local stack and a dev-mode gateway in front of it for the browser tests (started only when they run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack, StackOptions

from tests.fixtures.gateway import gateway_env


@pytest.fixture(scope="package")
def page_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = StackOptions(work_dir=Path(tmp_path_factory.mktemp("web-stack")), poll_interval_s=0.1)
    with LocalStack(options) as running:
        yield running


@pytest.fixture(scope="package")
def page_gateway(page_stack: LocalStack, gateway_logs: Path) -> Iterator[GatewayProcess]:
    with GatewayProcess("gateway-web", gateway_env(page_stack), gateway_logs) as proc:
        yield proc
