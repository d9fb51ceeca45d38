"""chain-base's lock index against a real anvil: a GetLock of an escrow the service knows reads its state
and checks its blocks are canonical instead of scanning logs from the deployment block, and a reorg
that moves the escrow's creation sends it back to the scan. Node calls are counted per view."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from chain_base.escrows import Escrows
from chain_base.model import ZERO_ADDRESS, DstParams, Timelocks
from chain_base.rpc import Rpc, connect
from chain_base.tx import FeePolicy, TxSender
from hexbytes import HexBytes
from swap_devnet.evm import EvmDeployment, sha256_hashlock
from web3 import Web3
from web3.types import Nonce, RPCEndpoint, TxParams, Wei

pytestmark = pytest.mark.integration
T = TypeVar("T")


class CountingRpc(Rpc):
    """Counts every node call by name."""

    def __init__(self, rpc_url: str) -> None:
        super().__init__(connect(rpc_url), attempts=3)
        self.calls: Counter[str] = Counter()

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        self.calls[what] += 1
        return await super().call(what, fn)


@pytest.fixture
async def escrows(base_chain: EvmDeployment) -> AsyncIterator[Callable[[], Escrows]]:
    """In-process Escrows on the chain-base service's anvil, sending as the deployer (an account no other
    test sends from, so its nonces are this test's alone)."""
    opened: list[Rpc] = []

    def make() -> Escrows:
        rpc = CountingRpc(base_chain.rpc_url)
        opened.append(rpc)
        fees = FeePolicy(10**7, 2.0)
        sender = TxSender(rpc, base_chain.deployer.private_key, base_chain.chain_id, fees, 0.05, 5.0, 30.0)
        return Escrows(rpc, sender, base_chain.escrow_src, base_chain.escrow_dst, base_chain.deploy_block)

    yield make
    for rpc in opened:
        await rpc.close()


def _calls(escrows: Escrows) -> Counter[str]:
    rpc = escrows._rpc
    assert isinstance(rpc, CountingRpc)
    return rpc.calls


def _params(chain: EvmDeployment) -> DstParams:
    return DstParams(
        beneficiary=chain.receiver.address,
        token=ZERO_ADDRESS,
        amount=10**15,
        hashlock=sha256_hashlock(os.urandom(32)),
        timelocks=Timelocks(10, 20, 100, 200),
        safety_deposit=0,
        salt=int.from_bytes(os.urandom(8), "big"),
    )


async def test_known_lock_is_viewed_without_a_log_scan(
    escrows: Callable[[], Escrows], base_chain: EvmDeployment
) -> None:
    own = escrows()
    escrow_id, sent = await own.create_dst(_params(base_chain))
    assert sent

    # The service that created it knows it from its receipt: one read of its state, and the head block (whose
    # hash is the creation block's own while no block followed it; a head read already in flight is shared).
    _calls(own).clear()
    view = await own.view(escrow_id)
    assert view is not None and view.created is not None
    assert _calls(own) <= Counter({"getEscrow": 1, "get_block": 1}) and _calls(own)["getEscrow"] == 1

    # Another instance (a restarted service) scans once, then knows it too.
    fresh = escrows()
    scanned = await fresh.view(escrow_id)
    assert _calls(fresh) == Counter({"getEscrow": 2, "get_logs": 1, "get_block": 1})
    _calls(fresh).clear()
    again = await fresh.view(escrow_id)
    assert _calls(fresh) == Counter({"getEscrow": 1, "get_block": 1})
    assert scanned == again == view


async def test_reorged_creation_is_found_again_by_a_scan(
    escrows: Callable[[], Escrows], base_chain: EvmDeployment
) -> None:
    w3 = Web3(Web3.HTTPProvider(base_chain.rpc_url))
    own = escrows()
    params = _params(base_chain)
    escrow_id, _ = await own.create_dst(params)
    before = await own.view(escrow_id)
    assert before is not None and before.created is not None
    created_at = before.created.block_number
    assert created_at == w3.eth.block_number

    # The block is replaced by one holding the same escrow's creation (same nonce, same terms): same height,
    # another hash.
    deployer = base_chain.deployer.address
    sent: TxParams = {
        "from": deployer,
        "value": Wei(params.amount),
        "nonce": Nonce(w3.eth.get_transaction_count(deployer) - 1),
        "gas": 300_000,
    }
    tx = base_chain.escrow_dst_contract(w3).functions.createDstEscrow(params.as_tuple()).build_transaction(sent)
    reorg = w3.provider.make_request(RPCEndpoint("anvil_reorg"), [1, [[tx, 0]]])
    assert "error" not in reorg, reorg
    replaced = HexBytes(w3.eth.get_block(created_at)["hash"]).to_0x_hex()
    assert replaced != before.created.block_hash

    _calls(own).clear()
    after = await own.view(escrow_id)
    assert after is not None and after.created is not None
    assert (after.created.block_number, after.created.block_hash) == (created_at, replaced)
    assert _calls(own)["get_logs"] == 1  # the stale index entry sent it back to the scan

    # A reorg that drops the creation altogether leaves the escrow absent.
    reorg = w3.provider.make_request(RPCEndpoint("anvil_reorg"), [1, []])
    assert "error" not in reorg, reorg
    if await own.read(escrow_id) is not None:
        pytest.skip("this anvil re-mined the reorged transaction")
    assert await own.view(escrow_id) is None
