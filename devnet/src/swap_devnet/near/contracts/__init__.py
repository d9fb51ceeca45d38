"""Contract models the devnet runs in place of wasm: the NEP-141 test token and the swap HTLC."""

from swap_devnet.near.contracts import htlc, nep141
from swap_devnet.near.contracts.base import (
    Args,
    Contract,
    ContractPanic,
    HostContext,
    PromiseRef,
    call,
    contract_code,
    contract_for_code,
    known_models,
    register,
    view,
)

__all__ = [
    "Args",
    "Contract",
    "ContractPanic",
    "HostContext",
    "PromiseRef",
    "call",
    "contract_code",
    "contract_for_code",
    "htlc",
    "known_models",
    "nep141",
    "register",
    "view",
]
