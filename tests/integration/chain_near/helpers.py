"""What the chain-near tests read from the devnet beside the service's answers."""

from __future__ import annotations

from swap_devnet.near import NearDevnetProcess

STORAGE_FEE = 10**22  # the HTLC's storage_fee(): paid with every lock, in NEAR
TOMBSTONE_FEE = 12 * 10**20  # kept by the HTLC when a lock ends; the rest of the fee goes back


async def htlc_storage(devnet: NearDevnetProcess) -> int:
    """Bytes the HTLC stores: any lock made, withdrawn or refunded changes it."""
    view = await devnet.arpc(
        "query", {"request_type": "view_account", "finality": "optimistic", "account_id": devnet.htlc.account_id}
    )
    return int(view["storage_usage"])
