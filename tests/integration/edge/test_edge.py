"""The whole product as a user meets it: everything behind Envoy, `make run`'s demo swap, a NEAR -> BASE
swap over REST and the WebSocket through Envoy, and a browser-style gRPC-Web call reaching the session
service — balances checked on both chains."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import httpx
import pytest
import websockets
from swap.session.v1 import session_pb2
from swap_devnet.demo import demo_swap
from swap_devnet.stack import LocalStack

from tests.integration.edge.conftest import KEY
from tests.integration.grpc_web import GRPC_WEB, grpc_web_frame, grpc_web_frames
from tests.integration.swaps import Balances, maker_step

pytestmark = pytest.mark.integration
ENDED = {"completed", "refunded", "cancelled", "failed", "timeout"}


def test_make_run_demo_swap_completes_through_envoy(stack: LocalStack) -> None:
    assert stack.evm is not None and stack.near is not None
    balances = Balances(stack)
    before = balances.snapshot()
    assert demo_swap(stack, "25") == 0
    after = balances.snapshot()
    assert after["base_maker"] == before["base_maker"] - 25_000_000
    assert after["base_resolver"] == before["base_resolver"] + 25_000_000
    received = after["near_receiver"] - before["near_receiver"]
    assert received > 0 and after["near_resolver"] == before["near_resolver"] - received


async def test_near_to_base_over_rest_and_websocket_through_envoy(stack: LocalStack) -> None:
    assert stack.evm is not None and stack.near is not None and stack.envoy is not None
    balances = Balances(stack)
    maker = stack.near.maker.account_id
    before = (balances.near_tusd(maker), balances.base(stack.evm.receiver.address))
    headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=stack.envoy.url, headers=headers, timeout=30) as http:
        created = await http.post(
            "/api/v1/sessions",
            json={
                "src": {"chain": "near", "token": stack.near.token.account_id},
                "dst": {"chain": "base", "token": stack.evm.token},
                "src_amount": "10000000",
                "maker": maker,
                "receiver": stack.evm.receiver.address,
            },
        )
        assert created.status_code == 201, created.text
        session = created.json()
        assert (
            session["state"] == "initialized" and session["maker_action"]["near_call"]["method"] == "ft_transfer_call"
        )
        sid = session["session_id"]
        ws_url = stack.envoy.url.replace("http://", "ws://") + f"/ws?api_key={KEY}"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"op": "subscribe", "channel": "session", "args": [sid]}))
            acted = await maker_step(http, stack, session)
            assert acted.status_code == 200, acted.text
            states: list[str] = []
            while not states or states[-1] not in ENDED:
                message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if message["event"] == "update":
                    state = message["args"][0]["session"]["state"]
                    if not states or states[-1] != state:
                        states.append(state)
        assert states[-1] == "completed", states
        final = (await http.get(f"/api/v1/sessions/{sid}")).json()

    for step in ("source_locked", "both_locked", "revealing_secret"):
        assert step in states
    dst_amount = int(final["dst_amount"])
    assert dst_amount >= int(final["quote"]["min_received"])
    assert balances.near_tusd(maker) == before[0] - 10_000_000
    assert balances.base(stack.evm.receiver.address) == before[1] + dst_amount

    # A browser's gRPC-Web call through Envoy reaches the session service and reads the same session.
    request = session_pb2.GetSessionRequest(session_id=sid).SerializeToString()
    async with httpx.AsyncClient(base_url=stack.envoy.url, timeout=10) as http:
        reply = await http.post(
            "/swap.session.v1.SessionService/GetSession",
            content=grpc_web_frame(request),
            headers={"Content-Type": GRPC_WEB, "X-Grpc-Web": "1", "X-API-Key": KEY},
        )
    messages, trailers = grpc_web_frames(reply.content)
    assert trailers.get("grpc-status", reply.headers.get("grpc-status")) == "0", (trailers, reply.headers)
    got = session_pb2.GetSessionResponse.FromString(messages[0]).session
    assert got.session_id == sid and got.state == session_pb2.SESSION_STATE_COMPLETED


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)")
def test_gateway_metrics_pass_promtool(stack: LocalStack) -> None:
    assert stack.gateway is not None
    text = httpx.get(f"{stack.gateway.url}/metrics", timeout=5).text
    assert "gateway_http_requests_total" in text
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert "error while linting" not in result.stderr.lower(), result.stderr
