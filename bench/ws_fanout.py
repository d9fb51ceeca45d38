"""Many WebSocket subscribers to one session through the gateway, and how far apart in time they hear each
update.

Every subscriber opens /ws?api_key=..., subscribes to the session and records, per session version, when
the update arrived (the client's clock) and the gateway's `timestamp` on it (when the gateway sent it to
that subscriber). The maker then signs the order (as swapctl --sign does) and executes, and the saga drives
the session through a whole swap. For each version, each subscriber's delay is its arrival minus the first
subscriber's arrival; the same is computed from the gateway's timestamps, which leaves out the client's own
receive loop.

The subscribers are spread over a few client processes (CLIENT_PROCESSES), each with its own event loop: one
loop reading 1,000 sockets in turn adds its own reading time to the spread it measures. Arrival times are
`time.perf_counter()`, CLOCK_MONOTONIC on Linux, one clock for every process of the machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import resource
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
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
# Client processes the subscribers are spread over: one per core of this 2-core machine.
CLIENT_PROCESSES = 2
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


async def _subscribe_all(url: str, session_id: str, count: int, initial_version: int, ready: Connection) -> Any:
    """One client process's share: `count` subscribers, ready once each holds the initial version; then each
    listens until the session ends. Returns every subscriber's (arrived, stamped)."""
    subscribers = [Subscriber() for _ in range(count)]
    for first in range(0, count, CONNECT_BATCH):
        await asyncio.gather(*(s.connect(url, session_id) for s in subscribers[first : first + CONNECT_BATCH]))
    listeners = [asyncio.ensure_future(s.listen()) for s in subscribers]
    try:
        deadline = time.monotonic() + 60
        while not all(initial_version in s.arrived for s in subscribers):
            failed = [task for task in listeners if task.done()]
            if failed:
                failed[0].result()
            if time.monotonic() > deadline:
                got = sum(1 for s in subscribers if initial_version in s.arrived)
                raise TimeoutError(f"only {got}/{count} subscribers got the session")
            await asyncio.sleep(0.05)
        ready.send("ready")
        await asyncio.gather(*listeners)
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*(s.ws.close() for s in subscribers if s.ws is not None), return_exceptions=True)
    return [(s.arrived, s.stamped) for s in subscribers]


def _client_process(url: str, session_id: str, count: int, initial_version: int, conn: Connection) -> None:
    try:
        conn.send(("done", asyncio.run(_subscribe_all(url, session_id, count, initial_version, conn))))
    except BaseException as err:  # reported to the parent, which fails the section
        conn.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


async def _receive(conn: Connection, timeout_s: float) -> Any:
    if not await asyncio.to_thread(conn.poll, timeout_s):
        raise TimeoutError(f"a WebSocket client process said nothing in {timeout_s:.0f} s")
    message = conn.recv()
    if isinstance(message, tuple) and message[0] == "error":
        raise RuntimeError(f"a WebSocket client process failed: {message[1]}")
    return message


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
        spawn = multiprocessing.get_context("spawn")
        shares = [
            options.subscribers // CLIENT_PROCESSES + (i < options.subscribers % CLIENT_PROCESSES)
            for i in range(CLIENT_PROCESSES)
        ]
        pipes: list[Connection] = []
        workers = []
        connect_start = time.perf_counter()
        for share in shares:
            ours, theirs = spawn.Pipe()
            worker = spawn.Process(target=_client_process, args=(url, session_id, share, initial_version, theirs))
            worker.start()
            theirs.close()
            pipes.append(ours)
            workers.append(worker)
        try:
            # Every subscriber has its snapshot of the initial version before the session moves.
            for pipe in pipes:
                await _receive(pipe, 90)
            connect_s = time.perf_counter() - connect_start
            signer = MakerSigner(load_keys(stack.maker_keys_file), load_chains(stack.chains_file))
            signature = signer.sign_order(session)
            acted = await client.post(f"/api/v1/sessions/{session_id}/execute", json={"signature": signature})
            if acted.status_code != 200:
                raise RuntimeError(f"execute: HTTP {acted.status_code}: {acted.text[:300]}")
            heard: list[tuple[dict[int, float], dict[int, int]]] = []
            for pipe in pipes:
                _, got = await _receive(pipe, options.timeout_s)
                heard.extend(got)
        finally:
            for worker in workers:
                worker.join(timeout=10)
                if worker.is_alive():
                    worker.kill()
        final = await client.get(f"/api/v1/sessions/{session_id}")
    state = final.json().get("state")
    arrived = _spread([got for got, _ in heard], initial_version, 1000.0)
    stamped = _spread([{v: float(t) for v, t in sent.items()} for _, sent in heard], initial_version, 1.0)
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
            "client": (
                f"websockets, {CLIENT_PROCESSES} processes with an event loop each; connections opened 50 at a time"
            ),
            "route": "gateway /ws directly (not through Envoy), api_key query parameter",
            "driven_by": "the maker's signature (swapctl.maker), POST /api/v1/sessions/{id}/execute, the saga",
        },
        "fd_limits": limits,
        **result,
    }
