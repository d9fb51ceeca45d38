"""Many WebSocket subscribers to one session through the gateway, and how far apart in time they hear each
update.

Every subscriber opens /ws?api_key=..., subscribes to the session and records, per session version, when the
update reached its socket and when its client read it. The maker then signs the order (as swapctl --sign does)
and executes, and the saga drives the session through a whole swap. For each version, each subscriber's delay
is its time minus the first subscriber's.

Two clocks, two figures:
- `at_socket` (the goal's figure): the kernel's receive timestamp of the segment that completed the message
  (SO_TIMESTAMPNS on each TCP socket; with two segments in one read, the later one's, so never early). It is
  when the subscriber's machine had the update, which is what the gateway controls.
- `in_client`: when the client's loop read it. Here 1,000 subscribers share two client processes and the
  gateway's two cores, so this adds the clients' own reading, one socket after another; real subscribers,
  each on a machine of its own, read theirs at once.

The subscribers are spread over CLIENT_PROCESSES processes, each with a selector loop of plain non-blocking
sockets and the websockets library's sans-I/O client protocol (handshake, framing, answering pings).
Timestamps are CLOCK_REALTIME (the kernel's), one clock for every process of the machine.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import resource
import selectors
import socket
import struct
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import httpx
import orjson
from swap_devnet.stack import LocalStack
from swapctl.maker import MakerSigner, load_keys
from swapctl.verify import load_chains
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from bench.edge import API_KEY
from bench.stats import percentile

log = logging.getLogger("bench.ws_fanout")

AMOUNT = "10000000"
TERMINAL = {"completed", "refunded", "cancelled", "failed", "timeout"}
CONNECT_BATCH = 50
# Client processes the subscribers are spread over: one per core of this 2-core machine.
CLIENT_PROCESSES = 2
_FDS_PER_SUBSCRIBER = 3  # the client's socket, the gateway's, and headroom for the gateway's gRPC streams
# Linux's SO_TIMESTAMPNS (asm-generic/socket.h; Python's socket module does not name it): each read carries
# the kernel's receive time as a struct timespec (seconds, nanoseconds).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESTAMP = struct.Struct("qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESTAMP.size)


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
    """One WebSocket client on a plain socket: websockets' sans-I/O protocol does the handshake and framing."""

    def __init__(self, url: str, session_id: str) -> None:
        uri = parse_uri(url)
        self.protocol = ClientProtocol(uri, max_size=2**22)
        self.subscribe = orjson.dumps({"op": "subscribe", "channel": "session", "args": [session_id]})
        self.sock = socket.create_connection((uri.host, uri.port), timeout=30)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self.sock.setblocking(False)
        self.at_socket: dict[int, float] = {}
        self.in_client: dict[int, float] = {}
        self.final = False

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def readable(self) -> None:
        """Reads what arrived; records each update's version with the kernel's and the client's time."""
        try:
            data, ancillary, _, _ = self.sock.recvmsg(1 << 18, _ANCILLARY)
        except BlockingIOError:
            return
        now = time.time()
        kernel = now
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESTAMP.unpack(payload[: _TIMESTAMP.size])
                kernel = seconds + nanoseconds / 1e9
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for received in self.protocol.events_received():
            if isinstance(received, Response):
                if received.status_code != 101:
                    raise RuntimeError(f"handshake: HTTP {received.status_code}")
                self.protocol.send_text(self.subscribe)
            elif isinstance(received, Frame) and received.opcode is Opcode.TEXT:
                self._message(orjson.loads(received.data), kernel, now)
        self._flush()  # the subscribe, pongs: a few bytes, into an empty send buffer
        if not data and not self.final:
            raise RuntimeError("the gateway closed a subscriber's connection")

    def _message(self, message: dict[str, Any], kernel: float, now: float) -> None:
        if message.get("event") == "error":
            raise RuntimeError(f"subscriber got an error: {message}")
        if message.get("event") != "update":
            return
        for item in message["args"]:
            version = int(item["session"]["version"])
            self.at_socket.setdefault(version, kernel)
            self.in_client.setdefault(version, now)
            if item["session"]["state"] in TERMINAL:
                self.final = True


def _subscribe_all(
    url: str, session_id: str, count: int, initial_version: int, ready: Connection, timeout_s: float
) -> list[tuple[dict[int, float], dict[int, float]]]:
    """One client process's share: `count` subscribers, ready once each holds the initial version; then each
    listens until the session ends. Returns every subscriber's (at_socket, in_client)."""
    selector = selectors.DefaultSelector()
    subscribers: list[Subscriber] = []
    try:
        for first in range(0, count, CONNECT_BATCH):
            batch = [Subscriber(url, session_id) for _ in range(min(CONNECT_BATCH, count - first))]
            for subscriber in batch:
                selector.register(subscriber.sock, selectors.EVENT_READ, subscriber)
            subscribers += batch
        said_ready = False
        deadline = time.monotonic() + 60
        while not all(s.final for s in subscribers):
            for key, _ in selector.select(timeout=0.5):
                key.data.readable()
            if not said_ready:
                if all(initial_version in s.at_socket for s in subscribers):
                    ready.send("ready")
                    said_ready, deadline = True, time.monotonic() + timeout_s
                elif time.monotonic() > deadline:
                    got = sum(1 for s in subscribers if initial_version in s.at_socket)
                    raise TimeoutError(f"only {got}/{count} subscribers got the session")
            elif time.monotonic() > deadline:
                raise TimeoutError(f"the session did not end in {timeout_s:.0f} s")
    finally:
        for subscriber in subscribers:
            subscriber.sock.close()
        selector.close()
    return [(s.at_socket, s.in_client) for s in subscribers]


def _client_process(
    url: str, session_id: str, count: int, initial_version: int, timeout_s: float, conn: Connection
) -> None:
    try:
        conn.send(("done", _subscribe_all(url, session_id, count, initial_version, conn, timeout_s)))
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
            worker = spawn.Process(
                target=_client_process, args=(url, session_id, share, initial_version, options.timeout_s, theirs)
            )
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
            heard: list[tuple[dict[int, float], dict[int, float]]] = []
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
    at_socket = _spread([got for got, _ in heard], initial_version, 1000.0)
    in_client = _spread([got for _, got in heard], initial_version, 1000.0)
    return {
        "session_final_state": state,
        "connect_and_subscribe_s": round(connect_s, 2),
        "delay_after_first_subscriber": {"at_socket": at_socket, "in_client": in_client},
        "p99_ms": at_socket["p99_ms"],
        "p99_in_client_ms": in_client["p99_ms"],
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
                f"websockets' sans-I/O client on plain sockets, {CLIENT_PROCESSES} processes with a selector loop "
                "each; connections opened 50 at a time"
            ),
            "p99_ms": "at_socket: the kernel's receive timestamps (SO_TIMESTAMPNS); in_client: when the loop read it",
            "route": "gateway /ws directly (not through Envoy), api_key query parameter",
            "driven_by": "the maker's signature (swapctl.maker), POST /api/v1/sessions/{id}/execute, the saga",
        },
        "fd_limits": limits,
        **result,
    }
