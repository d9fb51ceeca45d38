"""Suite-wide fixtures: each real part (anvil, the NEAR devnet, Redis, the services) lives in its own
plugin module under tests/fixtures and is started once per session on free loopback ports."""

import pytest

pytest_plugins = [
    "tests.fixtures.evm",
    "tests.fixtures.near",
    "tests.fixtures.services",
    "tests.fixtures.chain_near",
    "tests.fixtures.redis",
    "tests.fixtures.quote",
    "tests.fixtures.gateway",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The chaos runs first: minutes long, it then runs beside the rest of the suite on the other worker
    (`make test` runs two, pytest-xdist) instead of after it."""
    items.sort(key=lambda item: 0 if item.nodeid.startswith("tests/integration/chaos/") else 1)
