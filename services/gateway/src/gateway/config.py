"""gateway settings, from GATEWAY_* environment variables (see docs/gateway.md). Lists are comma-separated."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from limits import parse_many
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode
from swap_runtime.settings import ServiceSettings

from gateway.auth import TENANT_NAME, split_entry

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class GatewaySettings(ServiceSettings, env_prefix="GATEWAY_"):
    host: str = Field("127.0.0.1", description="Interface the HTTP server binds.")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port; 0 picks a free one (logged as 'listening').")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Also serve the metrics on this port; /metrics on the HTTP port is always there."
    )

    session_addr: str = Field("127.0.0.1:50054", description="session gRPC address.")
    quote_addr: str = Field("127.0.0.1:50053", description="quote gRPC address.")
    rpc_timeout_s: float = Field(30.0, gt=0, description="Deadline of one unary call to the session / quote service.")
    chain_base_addr: str = Field(
        "", description="chain-base gRPC address, probed by /health (its health follows the BASE RPC); empty = skipped."
    )
    chain_near_addr: str = Field(
        "", description="chain-near gRPC address, probed by /health (its health follows the NEAR RPC); empty = skipped."
    )
    health_timeout_s: float = Field(1.0, gt=0, description="Deadline of each /health probe; they run in parallel.")
    health_cache_s: float = Field(1.0, ge=0, description="Seconds one /health result is reused; 0 = probe every time.")
    memory_limit_mb: int = Field(
        256, ge=1, description="Memory the gateway may use (its container limit); /health is degraded above 90%."
    )

    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis: rate-limit windows and create idempotency.")
    key_prefix: str = Field("swap:gateway:", description="Prefix of every Redis key this service writes.")
    rate_limit: str = Field(
        "120/minute",
        description='Requests per tenant in "limits" notation ("120/minute", "10/second;1000/hour"); empty = off.',
    )
    anon_rate_limit: str = Field(
        "60/minute",
        description="Requests without a valid API key per client address (limits notation); empty = off.",
    )
    rate_limit_fail_open_reads: bool = Field(
        True, description="When Redis does not answer, let GET/HEAD requests through (else 503)."
    )
    rate_limit_fail_open_writes: bool = Field(
        False, description="When Redis does not answer, let POST (and other write) requests through (else 503)."
    )
    trusted_proxies: str = Field(
        "127.0.0.1",
        description="Peers whose X-Forwarded-For names the client (uvicorn's forwarded_allow_ips; '*' = any).",
    )

    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description='Plain API keys (development), "tenant:key" or "key"; hashed at start, never kept in clear.',
    )
    api_key_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description='SHA-256 hex digests of the accepted API keys (production), "tenant:digest" or "digest".',
    )
    operator_tenants: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Tenants that may see and act on every tenant's sessions."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser; empty = none."
    )
    max_body_bytes: int = Field(65_536, ge=1, description="Largest request body (and WebSocket message) accepted.")

    page_chains_file: Path | None = Field(
        None,
        description="The chains the web page reads destination locks from in secret mode maker (swapctl's chains "
        "file format, docs/cli.md): served at /chains.json; their RPC origins are added to the page's CSP.",
    )

    ws_ping_s: float = Field(
        20.0, gt=0, description="Seconds between WebSocket pings; a peer silent as long is closed."
    )
    ws_per_message_deflate: bool = Field(
        False,
        description="Offer WebSocket compression (permessage-deflate). Off: every frame of the fan-out would be "
        "deflated once per subscriber, which costs more CPU than the JSON saves on the wire.",
    )
    ws_max_subscriptions: int = Field(50, ge=1, description="Sessions one WebSocket connection may watch at once.")
    ws_queue_messages: int = Field(
        256,
        ge=1,
        description="Messages a WebSocket connection may have waiting to be sent; a client that lets more pile "
        "up (it does not read) is closed with code 1013, SLOW_CONSUMER, and never slows the others.",
    )

    def page_chains(self) -> dict[str, Any]:
        """The page's chains ({} when none are configured, and the page then offers service mode only)."""
        if self.page_chains_file is None:
            return {}
        data = json.loads(self.page_chains_file.read_text())
        return {name: value for name, value in data.items() if name in ("base", "near") and isinstance(value, dict)}

    @field_validator("api_keys", "api_key_hashes", "cors_origins", "operator_tenants", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @field_validator("api_key_hashes")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        entries = []
        for entry in value:
            tenant, digest = split_entry(entry)
            digest = digest.lower().removeprefix("0x")
            if not _SHA256_HEX.fullmatch(digest):
                raise ValueError("each API key hash must be 64 hex digits (SHA-256), optionally after 'tenant:'")
            entries.append(f"{tenant}:{digest}" if tenant else digest)
        return entries

    @field_validator("operator_tenants")
    @classmethod
    def _tenant_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not TENANT_NAME.fullmatch(name):
                raise ValueError(f"tenant names are 1..64 of A-Za-z0-9._- (got {name[:70]!r})")
        return value

    @field_validator("rate_limit", "anon_rate_limit")
    @classmethod
    def _limit_notation(cls, value: str) -> str:
        if value.strip():
            parse_many(value)
        return value.strip()
