"""chain-near settings, from CHAIN_NEAR_* environment variables (see docs/chain-near.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, model_validator
from swap_runtime.liquidity import NATIVE
from swap_runtime.settings import ServiceSettings


class ChainNearSettings(ServiceSettings, env_prefix="CHAIN_NEAR_"):
    tls_clients: str = Field(
        "session",
        description="Certificate names allowed to call (comma-separated): only the session service moves the "
        "resolver's funds.",
    )
    rpc_url: str = Field("http://127.0.0.1:3030", description="NEAR JSON-RPC endpoint.")
    network_id: str = Field(
        "", description="Expected network (chain) id from `status`; empty accepts what the node reports."
    )
    htlc_account: str = Field("", description="Account of the NEAR HTLC contract.")
    resolver_account: str = Field("", description="The resolver's account id; it funds and signs.")
    resolver_key: SecretStr | None = Field(None, description="Resolver full-access key, ed25519:<base58>.")
    resolver_key_file: Path | None = Field(
        None, description="File holding the resolver key (the key alone, or a near-cli JSON key file)."
    )
    signer_keys: int = Field(
        8, ge=1, le=64, description="Access keys sending in parallel (derived from the resolver key)."
    )
    poll_interval_s: float = Field(1.0, gt=0, description="Seconds between polls of the final head.")
    event_batch: int = Field(200, ge=1, le=1000, description="Most events a stream hands on between waits.")
    start_block: int = Field(
        0,
        ge=0,
        description="Block from which the HTLC's storage changes are followed for events (the block the HTLC was "
        "deployed in, or later). 0: the final block when the service starts, so earlier events are not reported.",
    )
    call_gas_tgas: int = Field(
        100, ge=50, le=300, description="TGas attached to HTLC calls (a payout and its callback need 50)."
    )
    ft_call_gas_tgas: int = Field(200, ge=50, le=300, description="TGas attached to ft_transfer_call.")
    inclusion_bound_s: int = Field(
        20,
        ge=1,
        description="Worst-case seconds from sending a transaction to its inclusion in a block "
        "(GetChainInfo.inclusion_bound_s); must exceed poll_interval_s.",
    )
    redis_url: str = Field(
        "",
        description="Redis for the send journal: the transactions sent for lock steps until their outcome is known, "
        "so a restarted service resumes them instead of sending a step twice. Empty keeps them in memory: a step in "
        "flight when the service stops may then be sent again (the second one fails on chain, costing its fee).",
    )
    redis_prefix: str = Field(
        "swap:", description='Key prefix; journal entries live under "<prefix>chain-near:<resolver>:sent:<step>".'
    )
    tx_timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for a transaction's outcome.")
    rpc_timeout_s: float = Field(30.0, gt=0, description="Seconds one JSON-RPC request may take.")
    rpc_attempts: int = Field(5, ge=1, description="Tries per RPC call on transport faults.")
    tokens: list[str] = Field(
        default_factory=list,
        description="NEP-141 tokens the resolver pays destination locks in (JSON list of account ids): each one's "
        "balance is exported as swap_resolver_balance, as native always is.",
    )
    min_liquidity: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        description='Per token ("native" or a NEP-141 account id), the balance in base units below which the '
        'resolver cannot cover the next swap (JSON: {"token.near": 1000000000000}): exported as '
        "swap_resolver_liquidity_floor for the SwapResolverTokenLiquidityLow alert, the token watched as if in "
        "CHAIN_NEAR_TOKENS. A token without a floor is never alerted on.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        tokens = (token.strip() for token in self.tokens)
        self.tokens = list(dict.fromkeys(token for token in tokens if token and token != NATIVE))
        self.min_liquidity = {token.strip(): floor for token, floor in self.min_liquidity.items()}
        if self.inclusion_bound_s <= self.poll_interval_s:
            # The service learns of an inclusion only at its next poll; a smaller bound cannot be kept.
            raise ValueError(
                f"CHAIN_NEAR_INCLUSION_BOUND_S ({self.inclusion_bound_s}) must be greater than "
                f"CHAIN_NEAR_POLL_INTERVAL_S ({self.poll_interval_s})"
            )
        if not self.htlc_account or not self.resolver_account:
            raise ValueError("CHAIN_NEAR_HTLC_ACCOUNT and CHAIN_NEAR_RESOLVER_ACCOUNT are required")
        if self.resolver_key is None and self.resolver_key_file is None:
            raise ValueError("CHAIN_NEAR_RESOLVER_KEY or CHAIN_NEAR_RESOLVER_KEY_FILE is required")
        return self

    def resolver_secret_key(self) -> str:
        if self.resolver_key is not None:
            return self.resolver_key.get_secret_value()
        assert self.resolver_key_file is not None
        text = self.resolver_key_file.read_text().strip()
        if text.startswith("{"):  # near-cli's credentials file
            key: str = json.loads(text)["private_key"]
            return key
        return text
