"""Suite-wide fixtures: each real part (anvil, the NEAR devnet, Redis, the services) lives in its own
plugin module under tests/fixtures and is started once per session on free loopback ports."""

pytest_plugins = [
    "tests.fixtures.evm",
    "tests.fixtures.near",
    "tests.fixtures.services",
    "tests.fixtures.chain_near",
    "tests.fixtures.redis",
    "tests.fixtures.quote",
    "tests.fixtures.gateway",
]
