"""Contract tests share the session chain; every test runs inside a snapshot that is reverted afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from swap_devnet.evm import DevAccount, EvmDeployment, dev_account
from web3 import Web3
from web3.contract import Contract

STRANGER_INDEX = 4


@pytest.fixture(autouse=True)
def _isolated(evm_snapshot: str) -> Iterator[None]:
    yield


@pytest.fixture
def src(evm: EvmDeployment, w3: Web3) -> Contract:
    return evm.escrow_src_contract(w3)


@pytest.fixture
def dst(evm: EvmDeployment, w3: Web3) -> Contract:
    return evm.escrow_dst_contract(w3)


@pytest.fixture
def token(evm: EvmDeployment, w3: Web3) -> Contract:
    return evm.token_contract(w3)


@pytest.fixture
def stranger() -> DevAccount:
    """A funded account with no role in any swap."""
    return dev_account(STRANGER_INDEX)
