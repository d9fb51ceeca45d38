"""chain-base settings, from CHAIN_BASE_* environment variables (see deploy/env.example)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from eth_utils.address import is_address, to_checksum_address
from pydantic import Field, SecretStr, model_validator
from swap_runtime.liquidity import NATIVE
from swap_runtime.settings import ServiceSettings


class ChainBaseSettings(ServiceSettings, env_prefix="CHAIN_BASE_"):
    tls_clients: str = Field(
        "session",
        description="Certificate names allowed to call (comma-separated): only the session service moves the "
        "resolver's funds.",
    )
    rpc_url: str = Field("http://127.0.0.1:8545", description="EVM JSON-RPC endpoint.")
    chain_id: int = Field(31337, description="Expected chain id; the service refuses another chain.")
    escrow_src: str = Field("", description="EscrowSrc contract address.")
    escrow_dst: str = Field("", description="EscrowDst contract address.")
    start_block: int = Field(0, ge=0, description="Block the escrows were deployed in (event scans start here).")
    resolver_key: SecretStr | None = Field(None, description="Resolver private key (0x-hex).")
    resolver_key_file: Path | None = Field(None, description="File holding the resolver key, instead of the env.")
    confirmations: int = Field(2, ge=1, description="Blocks (counting its own) before a lock is final.")
    poll_interval_s: float = Field(1.0, gt=0, description="Seconds between head / receipt polls.")
    reorg_window: int = Field(64, ge=1, description="Blocks behind head checked for replaced hashes.")
    log_chunk: int = Field(2000, ge=1, description="Most blocks per eth_getLogs call.")
    tx_resend_after_s: float = Field(
        30.0, gt=0, description="Seconds a sent tx may be missing before it is signed again."
    )
    inclusion_bound_s: int = Field(
        60,
        ge=1,
        description="Worst-case seconds from sending a tx to its inclusion, guaranteed by resending "
        "(GetChainInfo.inclusion_bound_s); must exceed tx_resend_after_s.",
    )
    redis_url: str = Field(
        "",
        description="Redis for the send journal: the transactions sent for lock steps until their receipt is known, "
        "so a restarted service resumes them instead of sending a step twice. Empty keeps them in memory: a step in "
        "flight when the service stops may then be sent again (the second transaction reverts, costing its gas).",
    )
    redis_prefix: str = Field(
        "swap:",
        description='Key prefix; journal entries live under "<prefix>chain-base:<chain id>:<resolver>:sent:<step>".',
    )
    tx_timeout_s: float = Field(300.0, gt=0, description="Seconds to wait for a tx receipt before giving up.")
    priority_fee_gwei: float = Field(0.01, ge=0, description="EIP-1559 tip when the node suggests none.")
    max_fee_multiplier: float = Field(2.0, ge=1, description="maxFee = base fee x this + tip.")
    rpc_attempts: int = Field(5, ge=1, description="Tries per RPC call on connection faults.")
    tokens: list[str] = Field(
        default_factory=list,
        description="ERC-20 tokens the resolver pays destination locks in (JSON list of addresses): each one's "
        "balance is exported as swap_resolver_balance, as native always is.",
    )
    min_liquidity: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        description='Per token ("native" or an ERC-20 address), the balance in base units below which the '
        'resolver cannot cover the next swap (JSON: {"0x...": 1000000000000}): exported as '
        "swap_resolver_liquidity_floor for the SwapResolverTokenLiquidityLow alert, the token watched as if in "
        "CHAIN_BASE_TOKENS. A token without a floor is never alerted on.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        tokens = (_token(token) for token in self.tokens)
        self.tokens = list(dict.fromkeys(token for token in tokens if token != NATIVE))
        self.min_liquidity = {_token(token): floor for token, floor in self.min_liquidity.items()}
        if self.inclusion_bound_s <= self.tx_resend_after_s:
            # A bound at or below the resend interval promises inclusion before the service would even
            # notice a dropped transaction and send it again.
            raise ValueError(
                f"CHAIN_BASE_INCLUSION_BOUND_S ({self.inclusion_bound_s}) must be greater than "
                f"CHAIN_BASE_TX_RESEND_AFTER_S ({self.tx_resend_after_s})"
            )
        if not self.escrow_src or not self.escrow_dst:
            raise ValueError("CHAIN_BASE_ESCROW_SRC and CHAIN_BASE_ESCROW_DST are required")
        if self.resolver_key is None and self.resolver_key_file is None:
            raise ValueError("CHAIN_BASE_RESOLVER_KEY or CHAIN_BASE_RESOLVER_KEY_FILE is required")
        return self

    def resolver_private_key(self) -> str:
        if self.resolver_key is not None:
            return self.resolver_key.get_secret_value()
        assert self.resolver_key_file is not None
        return self.resolver_key_file.read_text().strip()


def _token(value: str) -> str:
    """The token label of the balance gauges: "native", or an ERC-20 address, checksummed."""
    value = value.strip()
    if value == NATIVE:
        return NATIVE
    if not is_address(value):
        raise ValueError(f'token {value!r} is neither "native" nor an EVM address')
    return str(to_checksum_address(value))
