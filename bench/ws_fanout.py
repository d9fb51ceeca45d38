"""Many WebSocket subscribers to one session through the gateway, and how far apart in time they hear each
update.

Every subscriber opens /ws?api_key=..., subscribes to the session and records, per session version, when
the update arrived (the client's clock) and the gateway's `timestamp` on it (when the gateway sent it to
that subscriber). The maker then signs the order (as swapctl --sign does) and executes, and the saga drives
the session through a whole swap. For each version, each subscriber's delay is its arrival minus the first
subscriber's arrival; the same is computed from the gateway's timestamps, which leaves out the client's own
receive loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import websockets
from swap_devnet.stack import LocalStack
from swapctl.maker import MakerSigner, load_keys
from swapctl.verify import load_chains

from bench.edge import API_KEY
from bench.stats import percentile

log = logging.getLogger("bench.ws_fanout")

AMOUNT = "10000000"
TERMINAL = {"completed", "refunded", "cancelled", "failed", "timeout"}
CONNECT_BATCH = 50
_FDS_PER_SUBSCRIBER = 3  # the client's socket, the gateway's, and headroom for the gateway's gRPC streams


@dataclass(frozen=True)
class Options:
    subscribers: int
    timeout_s: float = 120.0


def raise_fd_limit(wanted: int) -> dict[str, Any]:
    """RLIMIT_NOFILE soft up to the hard limit when `wanted` descriptors would not fit. Processes started
    afterwards inherit it; the gateway was started before, so its own limit is reported as it is."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out: dict[str, Any] = {"soft_before": soft, "hard": hard}
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = hard if hard == resource.RLIM_INFINITY else min(hard, max(wanted, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        out["soft_after"] = new
    return out


def _process_fd_limit(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/limits") as limits:
            for line in limits:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError):
        return None
    return None


class Subscriber:
    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.stamped: dict[int, int] = {}
        self.final = asyncio.Event()
        self.ws: Any = None

    async def connect(self, url: str, session_id: str) -> None:
        self.ws = await websockets.connect(url, open_timeout=30, max_size=2**22)
        await self.ws.send(json.dumps({"op": "subscribe", "channel": "session", "args": [session_id]}))

    async def listen(self) -> None:
        async for text in self.ws:
            now = time.perf_counter()
            message = orjson.loads(text)  # the one loop reads every subscriber's copy: parse them cheaply
            if message.get("event") == "error":
                raise RuntimeError(f"subscriber got an error: {message}")
            if message.get("event") != "update":
                continue
            for item in message["args"]:
                version = int(item["session"]["version"])
                self.arrived.setdefault(version, now)
                self.stamped.setdefault(version, int(message["timestamp"]))
                if item["session"]["state"] in TERMINAL:
                    self.final.set()
                    return


def _spread(per_subscriber: list[dict[int, float]], skip_at_or_below: int, scale: float) -> dict[str, Any]:
    versions = sorted({v for got in per_subscriber for v in got if v > skip_at_or_below})
    delays: list[float] = []
    per_version: dict[str, float] = {}
    missing = 0
    for version in versions:
        times = [got[version] for got in per_subscriber if version in got]
        missing += len(per_subscriber) - len(times)
        first = min(times)
        these = [(t - first) * scale for t in times]
        delays.extend(these)
        per_version[str(version)] = round(max(these), 1)
    return {
        "versions": len(versions),
        "samples": len(delays),
        "missed": missing,
        "p50_ms": round(percentile(delays, 0.5), 1) if delays else None,
        "p99_ms": round(percentile(delays, 0.99), 1) if delays else None,
        "max_ms": round(max(delays), 1) if delays else None,
        "last_subscriber_ms_by_version": per_version,
    }


async def _fanout(stack: LocalStack, options: Options) -> dict[str, Any]:
    assert stack.gateway is not None and stack.evm is not None and stack.near is not None
    headers = {"X-API-Key": API_KEY}
    async with httpx.AsyncClient(base_url=stack.gateway.url, headers=headers, timeout=30.0) as client:
        created = await client.post(
            "/api/v1/sessions",
            json={
                "src": {"chain": "base", "token": stack.evm.token},
                "dst": {"chain": "near", "token": stack.near.token.account_id},
                "src_amount": AMOUNT,
                "maker": stack.evm.maker.address,
                "receiver": stack.near.receiver.account_id,
            },
        )
        if created.status_code != 201:
            raise RuntimeError(f"create: HTTP {created.status_code}: {created.text[:300]}")
        session = created.json()
        session_id, initial_version = session["session_id"], int(session["version"])
        url = f"{stack.gateway.ws_url}?api_key={API_KEY}"
        subscribers = [Subscriber() for _ in range(options.subscribers)]
        connect_start = time.perf_counter()
        for first in range(0, len(subscribers), CONNECT_BATCH):
            await asyncio.gather(*(s.connect(url, session_id) for s in subscribers[first : first + CONNECT_BATCH]))
        listeners = [asyncio.ensure_future(s.listen()) for s in subscribers]
        connect_s = time.perf_counter() - connect_start
        try:
            # Every subscriber has its snapshot of the initial version before the session moves.
            deadline = time.monotonic() + 60
            while not all(initial_version in s.arrived for s in subscribers):
                failed = [task for task in listeners if task.done()]
                if failed:
                    failed[0].result()
                if time.monotonic() > deadline:
                    ready = sum(1 for s in subscribers if initial_version in s.arrived)
                    raise TimeoutError(f"only {ready}/{len(subscribers)} subscribers got the session")
                await asyncio.sleep(0.05)
            signer = MakerSigner(load_keys(stack.maker_keys_file), load_chains(stack.chains_file))
            signature = signer.sign_order(session)
            acted = await client.post(f"/api/v1/sessions/{session_id}/execute", json={"signature": signature})
            if acted.status_code != 200:
                raise RuntimeError(f"execute: HTTP {acted.status_code}: {acted.text[:300]}")
            await asyncio.wait_for(asyncio.gather(*listeners), options.timeout_s)
        finally:
            for task in listeners:
                task.cancel()
            await asyncio.gather(*(s.ws.close() for s in subscribers if s.ws is not None), return_exceptions=True)
        final = await client.get(f"/api/v1/sessions/{session_id}")
    state = final.json().get("state")
    arrived = _spread([s.arrived for s in subscribers], initial_version, 1000.0)
    stamped = _spread([{v: float(t) for v, t in s.stamped.items()} for s in subscribers], initial_version, 1.0)
    return {
        "session_final_state": state,
        "connect_and_subscribe_s": round(connect_s, 2),
        "delay_after_first_subscriber": arrived,
        "p99_ms": arrived["p99_ms"],
        "gateway_send_spread": {k: v for k, v in stamped.items() if k != "last_subscriber_ms_by_version"},
    }


def run(stack: LocalStack, options: Options) -> dict[str, Any]:
    assert stack.gateway is not None and stack.gateway.pid is not None
    limits = raise_fd_limit(options.subscribers * _FDS_PER_SUBSCRIBER + 256)
    limits["gateway_soft"] = _process_fd_limit(stack.gateway.pid)
    result = asyncio.run(_fanout(stack, options))
    if result["session_final_state"] != "completed":
        raise RuntimeError(f"the driven session ended {result['session_final_state']}")
    return {
        "setup": {
            "subscribers": options.subscribers,
            "client": "websockets, one process, one event loop; connections opened 50 at a time",
            "route": "gateway /ws directly (not through Envoy), api_key query parameter",
            "driven_by": "the maker's signature (swapctl.maker), POST /api/v1/sessions/{id}/execute, the saga",
        },
        "fd_limits": limits,
        **result,
    }
