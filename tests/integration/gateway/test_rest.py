"""Quotes and sessions through REST, and the services' gRPC errors as HTTP errors with field / reason."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from swap_devnet.stack import LocalStack
from swap_runtime.quote_token import QuoteSigner, new_key_pair, private_key

from tests.integration.swaps import maker_step

pytestmark = pytest.mark.integration

AMOUNT = "10000000"  # 10 TUSD


def base_to_near(stack: LocalStack, **changes: Any) -> dict[str, Any]:
    assert stack.evm is not None and stack.near is not None
    body: dict[str, Any] = {
        "src": {"chain": "base", "token": stack.evm.token},
        "dst": {"chain": "near", "token": stack.near.token.account_id},
        "src_amount": AMOUNT,
        "maker": stack.evm.maker.address,
        "receiver": stack.near.receiver.account_id,
    }
    body.update(changes)
    return body


def error_of(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    error: dict[str, Any] = reply.json()["error"]
    return error


async def test_quote(api: httpx.AsyncClient, stack: LocalStack) -> None:
    body = base_to_near(stack)
    del body["maker"], body["receiver"]
    reply = await api.post("/api/v1/quotes", json={**body, "slippage_bps": 100, "urgency": 1.5})
    assert reply.status_code == 200, reply.text
    quote = reply.json()
    # The quote_id is the quote, signed by the quote service (base64url).
    assert re.fullmatch(r"[A-Za-z0-9_-]{300,}", quote["quote_id"])
    assert quote["src"] == body["src"] and quote["dst"] == body["dst"]
    assert quote["src_amount"] == AMOUNT and quote["slippage_bps"] == 100
    assert (
        int(quote["auction"]["start_amount"]) >= int(quote["auction"]["end_amount"]) >= int(quote["min_received"]) > 0
    )
    assert quote["valid_until"] > quote["issued_at"] > 0
    tl = quote["timelocks"]
    assert tl["dst"]["cancellation_after_s"] + tl["reveal_margin_s"] < tl["src"]["cancellation_after_s"]

    unknown = error_of(
        await api.post("/api/v1/quotes", json={**body, "dst": {"chain": "near", "token": "no.near"}}), 400
    )
    assert unknown["code"] == "INVALID_ARGUMENT" and unknown["field"] == "dst.token"
    same_chain = error_of(await api.post("/api/v1/quotes", json={**body, "dst": body["src"]}), 400)
    assert same_chain["field"] == "dst.chain"
    urgency = error_of(await api.post("/api/v1/quotes", json={**body, "urgency": 0.1}), 400)
    assert urgency["field"] == "urgency" and urgency["code"] == "INVALID_ARGUMENT"


async def test_assets_list_what_can_be_swapped_and_with_which_decimals(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    assert stack.evm is not None and stack.near is not None
    reply = await api.get("/api/v1/assets")
    assert reply.status_code == 200, reply.text
    assets = {(a["chain"], a["token"].lower()): a for a in reply.json()["assets"]}
    tusd_base = assets[("base", stack.evm.token.lower())]
    tusd_near = assets[("near", stack.near.token.account_id)]
    for tusd in (tusd_base, tusd_near):
        assert (tusd["symbol"], tusd["decimals"], tusd["source"], tusd["destination"]) == ("TUSD", 6, True, True)
    near = assets[("near", "native")]
    assert (near["symbol"], near["decimals"], near["source"], near["destination"]) == ("NEAR", 24, True, True)
    eth = assets[("base", "native")]
    assert (eth["symbol"], eth["decimals"], eth["source"], eth["destination"]) == ("ETH", 18, False, True)
    assert set(tusd_base) == {"chain", "token", "symbol", "decimals", "source", "destination"}
    # The key is needed like on every /api/v1 route.
    async with httpx.AsyncClient(base_url=str(api.base_url)) as stranger:
        assert (await stranger.get("/api/v1/assets")).status_code == 401


async def test_native_eth_cannot_be_a_source(api: httpx.AsyncClient, stack: LocalStack) -> None:
    assert stack.near is not None
    body = {
        "src": {"chain": "base", "token": "native"},
        "dst": {"chain": "near", "token": stack.near.token.account_id},
        "src_amount": str(10**16),
    }
    error = error_of(await api.post("/api/v1/quotes", json=body), 400)
    assert (error["code"], error["field"]) == ("INVALID_ARGUMENT", "src.token"), error
    assert "source locks hold ERC-20 tokens" in error["message"], error
    # As a destination it is quoted.
    back = {"src": body["dst"], "dst": body["src"], "src_amount": "10000000"}
    assert (await api.post("/api/v1/quotes", json=back)).status_code == 200


async def test_session_create_get_list_cancel(api: httpx.AsyncClient, stack: LocalStack) -> None:
    assert stack.evm is not None
    quote = (
        await api.post(
            "/api/v1/quotes", json={k: v for k, v in base_to_near(stack).items() if k in {"src", "dst", "src_amount"}}
        )
    ).json()
    created = await api.post("/api/v1/sessions", json=base_to_near(stack, quote_id=quote["quote_id"]))
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["state"] == "initialized"
    assert session["order_deadline"] > session["created_at"], "a time of the source chain, ahead"
    assert session["quote"]["quote_id"] == quote["quote_id"]
    assert re.fullmatch(r"[0-9a-f]{64}", session["hashlock"])
    assert session["secret"] is None and session["error"] is None and session["dst_lock_id"] is None
    assert session["version"] >= 0 and session["steps"][0]["state"] == "initialized"
    order = session["maker_action"]["sign_order"]
    assert order["typed_data"]["primaryType"] and order["allowance"] == AMOUNT
    assert order["token"] == stack.evm.token

    got = await api.get(f"/api/v1/sessions/{session['session_id']}")
    assert got.status_code == 200 and got.json() == session

    listed = await api.get("/api/v1/sessions", params={"maker": stack.evm.maker.address, "page_size": 1})
    assert listed.status_code == 200
    page = listed.json()
    assert len(page["sessions"]) == 1 and page["next_page_token"]
    assert page["sessions"][0]["session_id"] == session["session_id"]  # newest first
    # The next page is the same after a new session was created: tokens mark an item, not an offset.
    second = (
        await api.get(
            "/api/v1/sessions",
            params={"maker": stack.evm.maker.address, "page_size": 1, "page_token": page["next_page_token"]},
        )
    ).json()
    newer = (await api.post("/api/v1/sessions", json=base_to_near(stack))).json()
    again = (
        await api.get(
            "/api/v1/sessions",
            params={"maker": stack.evm.maker.address, "page_size": 1, "page_token": page["next_page_token"]},
        )
    ).json()
    assert again["sessions"] == second["sessions"] and newer["session_id"] not in {
        s["session_id"] for s in again["sessions"]
    }
    await api.post(f"/api/v1/sessions/{newer['session_id']}/cancel", json={})
    everything = (await api.get("/api/v1/sessions", params={"page_size": 100})).json()
    assert session["session_id"] in {s["session_id"] for s in everything["sessions"]}

    # A cancel records the maker's intent and answers with the session as it was; the saga ends it.
    cancelled = await api.post(f"/api/v1/sessions/{session['session_id']}/cancel", json={})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "initialized"
    # ...and says so: the cancel is recorded, the state has not moved yet.
    assert cancelled.json()["pending_intent"] == "cancel"
    for _ in range(100):
        state = (await api.get(f"/api/v1/sessions/{session['session_id']}")).json()["state"]
        if state == "cancelled":
            break
        await asyncio.sleep(0.1)
    assert state == "cancelled"
    again = error_of(await api.post(f"/api/v1/sessions/{session['session_id']}/cancel"), 400)
    assert again["code"] == "FAILED_PRECONDITION" and again["reason"] == "SESSION_ENDED" and again["field"] is None
    late = error_of(await maker_step(api, stack, session), 400)
    assert late["reason"] == "SESSION_NOT_EXECUTABLE"


async def test_create_with_a_repeated_request_id_is_200_with_the_same_session(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    body = base_to_near(stack, request_id=f"req-{uuid.uuid4().hex}")
    first = await api.post("/api/v1/sessions", json=body)
    assert first.status_code == 201, first.text
    second = await api.post("/api/v1/sessions", json=body)
    assert second.status_code == 200, second.text
    assert second.json()["session_id"] == first.json()["session_id"]
    await api.post(f"/api/v1/sessions/{first.json()['session_id']}/cancel", json={})


async def test_idempotency_key_header_and_a_changed_body_conflicts(api: httpx.AsyncClient, stack: LocalStack) -> None:
    key = f"idem-{uuid.uuid4().hex}"
    first = await api.post("/api/v1/sessions", json=base_to_near(stack), headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    # The header and the body's request_id are the same thing.
    same = await api.post("/api/v1/sessions", json=base_to_near(stack, request_id=key))
    assert same.status_code == 200 and same.json()["session_id"] == first.json()["session_id"]
    changed = await api.post(
        "/api/v1/sessions", json=base_to_near(stack, src_amount="20000000"), headers={"Idempotency-Key": key}
    )
    error = error_of(changed, 409)
    assert (error["code"], error["reason"], error["field"]) == ("ALREADY_EXISTS", "IDEMPOTENCY_CONFLICT", "request_id")
    assert first.json()["session_id"] in error["message"]
    both = await api.post(
        "/api/v1/sessions", json=base_to_near(stack, request_id="other"), headers={"Idempotency-Key": key}
    )
    assert error_of(both, 400)["field"] == "request_id"
    await api.post(f"/api/v1/sessions/{first.json()['session_id']}/cancel", json={})


async def test_service_errors_keep_field_and_reason(api: httpx.AsyncClient, stack: LocalStack) -> None:
    assert stack.evm is not None
    missing = error_of(await api.get("/api/v1/sessions/" + "0" * 32), 404)
    assert missing == {
        "code": "NOT_FOUND",
        "reason": "SESSION_NOT_FOUND",
        "message": f"no session {'0' * 32}",
        "field": None,
    }
    maker = error_of(await api.post("/api/v1/sessions", json=base_to_near(stack, maker="not-an-address")), 400)
    assert maker["code"] == "INVALID_ARGUMENT" and maker["field"] == "maker" and maker["reason"] == "INVALID_ARGUMENT"
    amount = error_of(await api.post("/api/v1/sessions", json=base_to_near(stack, src_amount="1.5")), 400)
    assert amount["field"] == "src_amount"
    not_a_quote = error_of(await api.post("/api/v1/sessions", json=base_to_near(stack, quote_id="f" * 32)), 400)
    assert not_a_quote["code"] == "INVALID_ARGUMENT" and not_a_quote["field"] == "quote_id"
    other_seed, _ = new_key_pair()
    signed_elsewhere = QuoteSigner(private_key(other_seed)).seal(b"\x08\x01")
    foreign_quote = error_of(
        await api.post("/api/v1/sessions", json=base_to_near(stack, quote_id=signed_elsewhere)), 404
    )
    assert foreign_quote["code"] == "NOT_FOUND" and foreign_quote["reason"] == "QUOTE_NOT_FOUND"
    assert foreign_quote["message"].startswith("quote_id: no such quote: signed with key")

    created = (await api.post("/api/v1/sessions", json=base_to_near(stack))).json()
    typed = created["maker_action"]["sign_order"]["typed_data"]
    wrong = Account.sign_message(encode_typed_data(full_message=typed), stack.evm.receiver.private_key)
    refused = await api.post(
        f"/api/v1/sessions/{created['session_id']}/execute", json={"signature": "0x" + bytes(wrong.signature).hex()}
    )
    error = error_of(refused, 400)
    assert error["field"] == "signature" and error["code"] == "INVALID_ARGUMENT"
    unsigned = error_of(await api.post(f"/api/v1/sessions/{created['session_id']}/execute", json={}), 400)
    assert unsigned["field"] == "signature"
    still = (await api.get(f"/api/v1/sessions/{created['session_id']}")).json()
    assert still["state"] == "initialized"
    await api.post(f"/api/v1/sessions/{created['session_id']}/cancel", json={})
