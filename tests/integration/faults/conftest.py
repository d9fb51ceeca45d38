"""A stack of its own for fault injection: chain RPCs behind proxies the tests can cut."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from swap.session.v1 import session_pb2_grpc
from swap_devnet.stack import LocalStack, StackOptions


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = StackOptions(
        work_dir=Path(tmp_path_factory.mktemp("faults")),
        anvil_block_time=0.5,
        poll_interval_s=0.1,
        proxy_chains=True,
        # Deeper than the deepest reorg these tests make (5): what a chain with such reorgs needs.
        base_confirmations=6,
        extra_env={
            "quote": {"QUOTE_DST_WITHDRAWAL_AFTER_S": "3", "QUOTE_VALIDITY_S": "60"},
            "session": {"SESSION_LEASE_TTL_S": "2", "SESSION_RPC_TIMEOUT_S": "10"},
            "chain-base": {"CHAIN_BASE_TX_RESEND_AFTER_S": "2", "CHAIN_BASE_RPC_ATTEMPTS": "3"},
            "chain-near": {"CHAIN_NEAR_RPC_ATTEMPTS": "3"},
        },
    )
    with LocalStack(options) as running:
        yield running


@pytest.fixture(scope="package")
async def sessions(stack: LocalStack) -> AsyncIterator[session_pb2_grpc.SessionServiceStub]:
    async with stack.channel("session") as channel:
        yield session_pb2_grpc.SessionServiceStub(channel)
