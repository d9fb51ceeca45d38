"""The whole stack for the swap tests: anvil, the NEAR devnet, Redis and the four services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from swap.session.v1 import session_pb2_grpc
from swap_devnet.stack import LocalStack, StackOptions

TRACED = ("chain-base", "chain-near", "quote", "session")


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    work_dir = Path(tmp_path_factory.mktemp("stack"))
    # Every service writes its spans to <work_dir>/<service>.spans.jsonl.
    tracing = {
        name: {f"{name.replace('-', '_').upper()}_TRACE_EXPORTER": f"file:{work_dir / name}.spans.jsonl"}
        for name in TRACED
    }
    options = StackOptions(
        work_dir=work_dir,
        anvil_block_time=0.5,
        poll_interval_s=0.1,
        # A destination withdrawal window that opens 3 s after the lock leaves the tests a moment to
        # cancel while both legs are locked.
        extra_env={
            "chain-base": tracing["chain-base"],
            "chain-near": tracing["chain-near"],
            "quote": {"QUOTE_DST_WITHDRAWAL_AFTER_S": "3", "QUOTE_VALIDITY_S": "60", **tracing["quote"]},
            # A tenant's open sessions are capped low, so test_swaps reaches TENANT_LIMIT with a few creates
            # (calls without x-tenant, all the other tests, are not counted per tenant).
            "session": {"SESSION_LEASE_TTL_S": "2", "SESSION_MAX_ACTIVE_PER_TENANT": "6", **tracing["session"]},
        },
    )
    with LocalStack(options) as running:
        yield running


@pytest.fixture(scope="package")
async def sessions(stack: LocalStack) -> AsyncIterator[session_pb2_grpc.SessionServiceStub]:
    async with stack.channel("session") as channel:
        yield session_pb2_grpc.SessionServiceStub(channel)
