"""One local stack behind Envoy for the edge tests, with a key per tenant: the stack's own key (whose tenant
is derived from it), two tenants and an operator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from swap_devnet.stack import LocalStack, StackOptions

KEY = "edge-test-key"
KEY_A = "edge-key-alice"
KEY_B = "edge-key-bob"
KEY_OPS = "edge-key-ops"
WRONG_KEY = "edge-key-wrong"


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    gateway = {
        "GATEWAY_API_KEYS": f"{KEY},alice:{KEY_A},bob:{KEY_B},ops:{KEY_OPS}",
        "GATEWAY_OPERATOR_TENANTS": "ops",
        # The probes without a key must meet the key check, not the strangers' rate limit.
        "GATEWAY_ANON_RATE_LIMIT": "100000/minute",
    }
    options = StackOptions(
        work_dir=Path(tmp_path_factory.mktemp("edge")),
        poll_interval_s=0.1,
        edge=True,
        api_key=KEY,
        extra_env={"gateway": gateway},
    )
    with LocalStack(options) as running:
        yield running
