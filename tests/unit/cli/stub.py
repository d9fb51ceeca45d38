"""A scripted stand-in for the gateway on a free loopback port, in a thread of its own so that swapctl
(which runs its own event loop) talks to it over real HTTP and WebSocket connections.

REST answers come from `replies[(method, path)]` (status, body, headers), GET /api/v1/assets answering
`ASSETS` unless a test says otherwise; every request is recorded in `requests`. Each WebSocket connection
plays the next script of `ws_scripts` once the client subscribes:
a list of messages to send, ending with the connection closed unless the script says "stay".
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from swap_devnet.procs import free_port

Json = dict[str, Any]
STAY = "stay"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


# The devnet's tokens as GET /api/v1/assets lists them.
ASSETS: Json = {
    "assets": [
        {
            "chain": "base",
            "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "symbol": "TUSD",
            "decimals": 6,
            "source": True,
            "destination": True,
        },
        {"chain": "base", "token": "native", "symbol": "ETH", "decimals": 18, "source": False, "destination": True},
        {"chain": "near", "token": "native", "symbol": "NEAR", "decimals": 24, "source": True, "destination": True},
        {
            "chain": "near",
            "token": "token.test.near",
            "symbol": "TUSD",
            "decimals": 6,
            "source": True,
            "destination": True,
        },
    ]
}


@dataclass
class StubGateway:
    replies: dict[tuple[str, str], tuple[int, Any, dict[str, str]]] = field(
        default_factory=lambda: {("GET", "/api/v1/assets"): (200, ASSETS, {})}
    )
    requests: list[Recorded] = field(default_factory=list)
    ws_scripts: list[list[Any]] = field(default_factory=list)
    ws_subscriptions: list[Json] = field(default_factory=list)
    ws_headers: list[dict[str, str]] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(
        self, method: str, path: str, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.replies[(method, path)] = (status, body, headers or {})

    def bodies(self, method: str, path: str) -> list[Any]:
        return [r.body for r in self.requests if r.method == method and r.path == path]

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    # --- server ---

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        self.requests.append(Recorded(request.method, request.path, dict(request.query), dict(request.headers), body))
        found = self.replies.get((request.method, request.path))
        if found is None:
            return web.json_response(
                {
                    "error": {
                        "code": "NOT_FOUND",
                        "reason": "ROUTE_NOT_FOUND",
                        "message": "no such route",
                        "field": None,
                    }
                },
                status=404,
            )
        status, payload, headers = found
        if isinstance(payload, str | bytes):
            return web.Response(status=status, body=payload, headers=headers)
        return web.json_response(payload, status=status, headers=headers)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws_headers.append(dict(request.headers))
        script = self.ws_scripts.pop(0) if self.ws_scripts else []
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            command = json.loads(msg.data)
            if command.get("op") != "subscribe":
                continue
            self.ws_subscriptions.append(command)
            for item in script:
                if item == STAY:
                    continue
                await ws.send_str(json.dumps(item))
                await asyncio.sleep(0.01)
            if STAY not in script:
                await ws.close()
                break
        return ws

    def __enter__(self) -> StubGateway:
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the stub gateway did not start")
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        app.router.add_route("*", "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._started.set()
        self._loop.run_forever()

    def __exit__(self, *exc: object) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        fut.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def update(session: Json, cursor: str) -> Json:
    return {"event": "update", "channel": "session", "args": [{"cursor": cursor, "session": session}], "timestamp": 0}


def subscribed(session_id: str) -> Json:
    return {"event": "subscribed", "channel": "session", "args": [session_id], "timestamp": 0}


def ws_error(reason: str, message: str) -> Json:
    return {"event": "error", "channel": "session", "args": [{"reason": reason, "message": message}], "timestamp": 0}


QUOTE: Json = {
    "quote_id": "q-1",
    "src": {"chain": "base", "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
    "dst": {"chain": "near", "token": "token.test.near"},
    "src_amount": "25500000",
    "market_rate": "1000000000000000000",
    "auction": {
        "start_amount": "25755000",
        "end_amount": "25372500",
        "start_time": 1_700_000_000,
        "duration_s": 60,
        "current_amount": "25700000",
    },
    "protocol_fee": "25500",
    "network_fee": "2000",
    "slippage_bps": 50,
    "min_received": "25245637",
    "issued_at": 1_700_000_000,
    "valid_until": 1_700_000_030,
    "refund_guaranteed_by": 1_700_003_600,
    "timelocks": {
        "src": {
            "withdrawal_after_s": 10,
            "public_withdrawal_after_s": 100,
            "cancellation_after_s": 1000,
            "public_cancellation_after_s": 1100,
        },
        "dst": {
            "withdrawal_after_s": 10,
            "public_withdrawal_after_s": 90,
            "cancellation_after_s": 800,
            "public_cancellation_after_s": 900,
        },
        "reveal_margin_s": 10,
    },
    "src_safety_deposit": "0",
    "dst_safety_deposit": "0",
}

MAKER_ADDRESS = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
# anvil's well-known account 2, whose address is MAKER_ADDRESS: the maker's key of the --sign tests.
MAKER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
# The EIP-712 order a session with the stub's terms asks the maker to sign (chain_base.orders' shape).
ORDER_TYPED_DATA: Json = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Order": [
            {"name": "maker", "type": "address"},
            {"name": "resolver", "type": "address"},
            {"name": "token", "type": "address"},
            {"name": "amount", "type": "uint256"},
            {"name": "hashlock", "type": "bytes32"},
            {"name": "timelocks", "type": "Timelocks"},
            {"name": "safetyDeposit", "type": "uint256"},
            {"name": "dstTermsHash", "type": "bytes32"},
            {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"},
        ],
        "Timelocks": [
            {"name": "withdrawal", "type": "uint32"},
            {"name": "publicWithdrawal", "type": "uint32"},
            {"name": "cancellation", "type": "uint32"},
            {"name": "publicCancellation", "type": "uint32"},
        ],
    },
    "primaryType": "Order",
    "domain": {
        "name": "SwapEscrowSrc",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    },
    "message": {
        "maker": MAKER_ADDRESS,
        "resolver": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "amount": "25500000",
        "hashlock": "0x" + "aa" * 32,
        "timelocks": {"withdrawal": 10, "publicWithdrawal": 100, "cancellation": 1000, "publicCancellation": 1100},
        "safetyDeposit": "0",
        "dstTermsHash": "0x" + "cd" * 32,
        "nonce": "7",
        "deadline": "1700000600",
    },
}

BASE_TX = "0x" + "ab" * 32
NEAR_TX = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
SIGNATURE = "0x" + "11" * 65


def session(state: str, steps: list[str], *, version: int, session_id: str = "s-1", **extra: Any) -> Json:
    txs = {"source_locked": ("base", BASE_TX), "both_locked": ("near", NEAR_TX)}
    body: Json = {
        "session_id": session_id,
        "state": state,
        "src": QUOTE["src"],
        "dst": QUOTE["dst"],
        "src_amount": "25500000",
        "dst_amount": "25700000",
        "maker": MAKER_ADDRESS,
        "receiver": "receiver.test.near",
        "hashlock": "aa" * 32,
        "quote": QUOTE,
        "maker_action": {
            "sign_order": {
                "typed_data": ORDER_TYPED_DATA,
                "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "spender": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
                "allowance": "25500000",
            }
        },
        "src_lock_id": None,
        "dst_lock_id": None,
        "steps": [
            {
                "state": s,
                "at": 1_700_000_000 + i,
                "chain": txs[s][0] if s in txs else None,
                "tx_hash": txs[s][1] if s in txs else None,
                "note": "",
            }
            for i, s in enumerate(steps)
        ],
        "error": None,
        "created_at": 1_700_000_000,
        "updated_at": 1_700_000_000 + len(steps),
        "secret": None,
        "version": version,
    }
    body.update(extra)
    return body


HAPPY = [
    "initialized",
    "executing",
    "source_locking",
    "source_locked",
    "destination_locking",
    "both_locked",
    "revealing_secret",
    "completed",
]


def happy_until(state: str, **extra: Any) -> Json:
    steps = HAPPY[: HAPPY.index(state) + 1]
    return session(state, steps, version=len(steps), **extra)
