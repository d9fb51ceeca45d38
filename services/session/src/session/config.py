"""session settings, from SESSION_* environment variables (see deploy/env.example)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode
from swap_runtime.quote_token import QuoteVerifier, public_key
from swap_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

# Well known and therefore worthless: only ever used with SESSION_DEV_MODE=true on a local devnet.
_DEV_KEY = base64.b64encode(b"swap-orchestrator-dev-only-key!!").decode()


class SessionSettings(ServiceSettings, env_prefix="SESSION_"):
    tls_clients: str = Field(
        "gateway,envoy,operator",
        description="Certificate names allowed to call (comma-separated): the edge, which sets the caller's tenant, "
        "and the operator's tools.",
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis: sessions, update streams, indexes.")
    key_prefix: str = Field("swap:", description="Prefix of every Redis key this service writes.")
    retention_s: int = Field(
        30 * 24 * 3600,
        ge=60,
        description="Seconds an ended session stays readable (get, list, watch) before it expires.",
    )
    redis_max_connections: int = Field(
        200,
        ge=10,
        description="Redis connections of the saga, the leases and the unary RPCs (WatchSession has its own pool).",
    )
    watch_redis_max_connections: int = Field(
        1000,
        ge=1,
        description="Redis connections of WatchSession streams, each holds one; at or above "
        "SESSION_WATCH_MAX_STREAMS no stream ever waits for one.",
    )
    watch_pool_timeout_s: float = Field(
        5.0,
        gt=0,
        description="Seconds a WatchSession stream waits for a Redis connection when its pool is smaller than "
        "SESSION_WATCH_MAX_STREAMS; then it fails with RESOURCE_EXHAUSTED.",
    )
    watch_max_streams: int = Field(
        1000, ge=1, description="Open WatchSession streams per replica; past it RESOURCE_EXHAUSTED (TOO_MANY_WATCHERS)."
    )
    watch_max_per_client: int = Field(
        50,
        ge=1,
        description="Open WatchSession streams per client (the x-tenant metadata, else the peer's host) per "
        "replica; past it RESOURCE_EXHAUSTED (TOO_MANY_WATCHERS).",
    )
    secret_key: SecretStr | None = Field(None, description="Base64 of 32 bytes: AES-256-GCM key for swap secrets.")
    dev_mode: bool = Field(False, description="Allows the built-in dev secret key. Never in production.")
    chain_base_addr: str = Field("127.0.0.1:50051", description="chain-base gRPC address.")
    chain_near_addr: str = Field("127.0.0.1:50052", description="chain-near gRPC address.")
    quote_addr: str = Field("127.0.0.1:50053", description="quote gRPC address.")
    quote_public_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated hex Ed25519 public keys whose signed quotes this service accepts (the quote "
        "service's QUOTE_SIGNING_KEY; list the old and the new key while rotating). Required.",
    )
    rpc_attempts: int = Field(5, ge=1, description="Tries per call to another service on transport faults.")
    rpc_timeout_s: float = Field(60.0, gt=0, description="Deadline of one call to another service.")
    retry_delay_s: float = Field(1.0, gt=0, description="Seconds before a saga step that failed is tried again.")
    sweep_interval_s: float = Field(
        30.0, gt=0, description="Seconds between reconciliation reads of a waiting session (for a missed event)."
    )
    clock_skew_s: int = Field(
        2, ge=0, description="Seconds the two chains' clocks may disagree; added to every time-left check."
    )
    head_stale_s: float = Field(
        3.0, gt=0, description="A chain head older than this (from the event stream) is read again with GetChainInfo."
    )
    order_deadline_s: int = Field(600, gt=0, description="Seconds the maker has to sign / lock after Create.")
    lease_ttl_s: float = Field(
        10.0, gt=0, description="A replica's hold on a session; another replica takes over this long after a death."
    )
    replica_id: str = Field(
        "", description="This replica's stable id for leases (default: host name and port); unique per replica."
    )
    max_active_per_maker: int = Field(
        5, ge=1, description="Open sessions one maker may have (within each tenant: MAKER_LIMIT past it)."
    )
    max_active_per_tenant: int = Field(
        100, ge=1, description="Open sessions one tenant (the edge's x-tenant) may have (TENANT_LIMIT past it)."
    )
    max_active_total: int = Field(1000, ge=1, description="Open sessions in all.")

    @field_validator("quote_public_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):  # the JSON form env.example shows
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("quote_public_keys")
    @classmethod
    def _public_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            try:
                public_key(key)
            except ValueError as err:
                raise ValueError(f"SESSION_QUOTE_PUBLIC_KEYS: {err}") from None
        return [key.lower().removeprefix("0x") for key in value]

    def quote_verifier(self) -> QuoteVerifier:
        return QuoteVerifier(public_key(key) for key in self.quote_public_keys)

    @model_validator(mode="after")
    def _require_quote_keys(self) -> Self:
        if not self.quote_public_keys:
            raise ValueError("SESSION_QUOTE_PUBLIC_KEYS is required: the quote service's Ed25519 public key(s), hex")
        return self

    @model_validator(mode="after")
    def _require_key(self) -> Self:
        if self.secret_key is None:
            if not self.dev_mode:
                raise ValueError("SESSION_SECRET_KEY is required (base64 of 32 bytes) unless SESSION_DEV_MODE=true")
            self.secret_key = SecretStr(_DEV_KEY)
        if len(self.key_bytes()) != 32:
            raise ValueError("SESSION_SECRET_KEY must be base64 of exactly 32 bytes")
        return self

    def key_bytes(self) -> bytes:
        assert self.secret_key is not None
        return base64.b64decode(self.secret_key.get_secret_value())
