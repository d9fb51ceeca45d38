"""The REST client against httpx's MockTransport: requests as the API wants them, failures as CliErrors."""

from __future__ import annotations

import json

import httpx
import pytest
from swapctl.client import Gateway
from swapctl.errors import ApiError, CliError, ExitCode

from tests.unit.cli.stub import QUOTE, SIGNATURE, happy_until


def gateway(handler: httpx.MockTransport, key: str | None = "k-1") -> Gateway:
    return Gateway("http://gw.test/", key, timeout=2.0, transport=handler)


async def test_requests_carry_the_key_and_json() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=QUOTE)

    async with gateway(httpx.MockTransport(handle)) as gw:
        quote = await gw.quote({"src_amount": "1"})
    assert quote["quote_id"] == "q-1"
    assert seen[0].url == "http://gw.test/api/v1/quotes"
    assert seen[0].headers["X-API-Key"] == "k-1"
    assert json.loads(seen[0].content) == {"src_amount": "1"}


async def test_no_key_sends_no_header() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"sessions": [], "next_page_token": None})

    async with gateway(httpx.MockTransport(handle), key=None) as gw:
        await gw.list_sessions(maker="0xabc", page_size=5, page_token=None)
    assert "X-API-Key" not in seen[0].headers
    assert seen[0].url.params == httpx.QueryParams({"maker": "0xabc", "page_size": "5"})


async def test_execute_and_ids_in_paths() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=happy_until("executing"))

    async with gateway(httpx.MockTransport(handle)) as gw:
        await gw.execute("s/1", signature=SIGNATURE, request_id="r-1")
        await gw.execute("s-2", signature=None, request_id=None)
    assert seen[0].url.raw_path == b"/api/v1/sessions/s%2F1/execute"
    assert json.loads(seen[0].content) == {"signature": SIGNATURE, "request_id": "r-1"}
    assert json.loads(seen[1].content) == {}


async def test_api_error_names_the_cli_argument() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        error = {
            "code": "INVALID_ARGUMENT",
            "reason": "INVALID_SIGNATURE",
            "message": "bad signature",
            "field": "signature",
        }
        return httpx.Response(400, json={"error": error})

    async with gateway(httpx.MockTransport(handle)) as gw:
        with pytest.raises(ApiError) as caught:
            await gw.execute("s-1", signature=SIGNATURE, request_id=None)
    assert (
        caught.value.message
        == 'field "signature" (--signature): bad signature [HTTP 400 INVALID_ARGUMENT INVALID_SIGNATURE]'
    )


async def test_connection_refused() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with gateway(httpx.MockTransport(handle)) as gw:
        with pytest.raises(CliError) as caught:
            await gw.get_session("s-1")
    assert caught.value.exit_code is ExitCode.UNREACHABLE
    assert caught.value.message == (
        "cannot connect to the gateway at http://gw.test (connection refused); is it running? "
        "Set the address with --url or SWAPCTL_URL"
    )


async def test_timeout() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with gateway(httpx.MockTransport(handle)) as gw:
        with pytest.raises(CliError) as caught:
            await gw.get_session("s-1")
    assert caught.value.exit_code is ExitCode.UNREACHABLE
    assert "did not answer within 2 s" in caught.value.message


async def test_success_that_is_not_json() -> None:
    async with gateway(httpx.MockTransport(lambda r: httpx.Response(200, text="<html>"))) as gw:
        with pytest.raises(CliError) as caught:
            await gw.get_session("s-1")
    assert caught.value.exit_code is ExitCode.SERVER


async def test_unknown_session_is_not_found_with_the_reason() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        error = {"code": "NOT_FOUND", "reason": "SESSION_NOT_FOUND", "message": "no session s-1", "field": None}
        return httpx.Response(404, json={"error": error})

    async with gateway(httpx.MockTransport(handle)) as gw:
        with pytest.raises(ApiError) as caught:
            await gw.get_session("s-1")
    assert caught.value.message == "no session s-1 [HTTP 404 NOT_FOUND SESSION_NOT_FOUND]"


def test_unusable_url() -> None:
    with pytest.raises(CliError) as caught:
        Gateway("ftp://x", None)
    assert caught.value.exit_code is ExitCode.USAGE
