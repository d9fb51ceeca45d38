"""/health: every dependency of the gateway with its state and probe latency, and one status a balancer acts on."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from swap_devnet.procs import GatewayProcess, free_port

from tests.fixtures.gateway import GatewayFactory, gateway_env

pytestmark = pytest.mark.integration

ALL = ("chain_base", "chain_near", "memory", "quote", "redis", "session")


def states(body: dict[str, Any]) -> dict[str, str]:
    return {name: check["state"] for name, check in body["checks"].items()}


async def test_all_ok_against_the_dev_stack(gateway: GatewayProcess) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        reply = await client.get("/health")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ok", body
    assert states(body) == dict.fromkeys(ALL, "ok")
    for check in body["checks"].values():
        assert 0 <= check["latency_ms"] < 1000, body
    assert body["checks"]["memory"]["detail"].startswith("rss "), body


async def test_a_dead_chain_service_degrades(stack: Any, gateway_factory: GatewayFactory) -> None:
    dead = f"127.0.0.1:{free_port()}"
    gateway = gateway_factory(
        "gateway-dead-chain", gateway_env(stack, GATEWAY_CHAIN_NEAR_ADDR=dead, GATEWAY_HEALTH_TIMEOUT_S="0.5")
    )
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        reply = await client.get("/health")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "degraded", body
    assert states(body) == {**dict.fromkeys(ALL, "ok"), "chain_near": "down"}
    assert body["checks"]["chain_near"]["detail"], body
    assert body["checks"]["chain_near"]["latency_ms"] <= 1500, body


async def test_chains_skipped_when_unset_and_memory_over_the_limit(stack: Any, gateway_factory: GatewayFactory) -> None:
    # Any Python process with FastAPI loaded is well past 1 MiB.
    gateway = gateway_factory(
        "gateway-small",
        gateway_env(stack, GATEWAY_CHAIN_BASE_ADDR="", GATEWAY_CHAIN_NEAR_ADDR="", GATEWAY_MEMORY_LIMIT_MB="1"),
    )
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        reply = await client.get("/health")
    body = reply.json()
    assert reply.status_code == 200 and body["status"] == "degraded", body
    assert states(body) == {"memory": "degraded", "quote": "ok", "redis": "ok", "session": "ok"}


async def test_session_down_is_503_and_results_are_cached(stack: Any, gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(
        "gateway-no-session",
        gateway_env(stack, GATEWAY_SESSION_ADDR=f"127.0.0.1:{free_port()}", GATEWAY_HEALTH_CACHE_S="30"),
    )
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        first, second = await asyncio.gather(client.get("/health"), client.get("/health"))
        third = await client.get("/health")
    assert first.status_code == 503 and first.json()["status"] == "down", first.text
    assert states(first.json())["session"] == "down"
    # Within the cache window the same probes are served again, latencies included.
    assert second.json() == first.json() == third.json()
