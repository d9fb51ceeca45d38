"""A local NEAR JSON-RPC devnet speaking nearcore's protocol: it runs wasm contracts (with wasmtime), the swap's
HTLC and test token being the wasm built from contracts/near.

`python -m swap_devnet.near serve` runs it; `NearDevnetProcess` (a child process) and `ThreadedDevnet`
(a background thread) run it from Python; `DevnetServer` plus `bootstrap` run it in the current event loop.
"""

from swap_devnet.near.bootstrap import (
    DEFAULT_FUNDING,
    DEFAULT_MINT,
    DEFAULT_SEED,
    FT_SYMBOL,
    TOKEN_DECIMALS,
    BootstrapError,
    NearAccount,
    NearDeployment,
    bootstrap,
)
from swap_devnet.near.chain import NEAR, Chain, ChainConfig
from swap_devnet.near.ids import lock_id_for
from swap_devnet.near.keys import KeyPair
from swap_devnet.near.process import DevnetControls, DevnetError, NearDevnetProcess, ThreadedDevnet
from swap_devnet.near.rpc import DevnetServer, RpcError

__all__ = [
    "DEFAULT_FUNDING",
    "DEFAULT_MINT",
    "DEFAULT_SEED",
    "NEAR",
    "TOKEN_DECIMALS",
    "FT_SYMBOL",
    "BootstrapError",
    "Chain",
    "ChainConfig",
    "DevnetControls",
    "DevnetError",
    "DevnetServer",
    "KeyPair",
    "NearAccount",
    "NearDeployment",
    "NearDevnetProcess",
    "RpcError",
    "ThreadedDevnet",
    "bootstrap",
    "lock_id_for",
]
