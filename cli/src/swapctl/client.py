"""The gateway's REST API (docs/api.md) over httpx, every failure turned into a CliError."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote as urlquote
from urllib.parse import urlsplit

import httpx

from swapctl import __version__
from swapctl.errors import CliError, ExitCode, api_error

API = "/api/v1"
Json = dict[str, Any]


class Gateway:
    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"the gateway URL {url!r} is not usable: expected http(s)://HOST[:PORT]", ExitCode.USAGE)
        self.api_key = api_key
        self.timeout = timeout
        headers = {"User-Agent": f"swapctl/{__version__}", "Accept": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        try:
            self._http = httpx.AsyncClient(
                base_url=self.url, headers=headers, timeout=timeout, transport=transport, follow_redirects=False
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as e:
            raise CliError(f"the gateway URL {url!r} is not usable: {e}", ExitCode.USAGE) from e

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Json | None = None,
        params: Mapping[str, str | int] | None = None,
        field_hints: Mapping[str, str] | None = None,
    ) -> Json:
        try:
            response = await self._http.request(method, path, json=body, params=params)
        except httpx.ConnectError as e:
            raise CliError(
                f"cannot connect to the gateway at {self.url} ({_cause(e)}); is it running? "
                "Set the address with --url or SWAPCTL_URL",
                ExitCode.UNREACHABLE,
            ) from e
        except httpx.TimeoutException as e:
            raise CliError(
                f"the gateway at {self.url} did not answer within {self.timeout:g} s (--timeout)", ExitCode.UNREACHABLE
            ) from e
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            raise CliError(f"the gateway URL {self.url!r} is not usable: {e}", ExitCode.USAGE) from e
        except httpx.TransportError as e:
            raise CliError(
                f"lost the connection to the gateway at {self.url}: {_cause(e)}", ExitCode.UNREACHABLE
            ) from e
        if response.is_success:
            try:
                data = response.json()
            except ValueError as e:
                raise CliError(
                    f"the gateway answered {method} {path} with HTTP {response.status_code} but not JSON",
                    ExitCode.SERVER,
                ) from e
            if not isinstance(data, dict):
                raise CliError(f"the gateway answered {method} {path} with JSON that is not an object", ExitCode.SERVER)
            return data
        raise api_error(
            response.status_code,
            response.content,
            retry_after=response.headers.get("Retry-After"),
            field_hints=field_hints,
        )

    async def assets(self) -> Json:
        return await self.request("GET", f"{API}/assets")

    async def quote(self, body: Json, field_hints: Mapping[str, str] | None = None) -> Json:
        return await self.request("POST", f"{API}/quotes", body=body, field_hints=field_hints)

    async def create_session(self, body: Json, field_hints: Mapping[str, str] | None = None) -> Json:
        return await self.request("POST", f"{API}/sessions", body=body, field_hints=field_hints)

    async def get_session(self, session_id: str) -> Json:
        return await self.request("GET", f"{API}/sessions/{_seg(session_id)}")

    async def list_sessions(self, *, maker: str | None, page_size: int | None, page_token: str | None) -> Json:
        params: dict[str, str | int] = {}
        if maker:
            params["maker"] = maker
        if page_size:
            params["page_size"] = page_size
        if page_token:
            params["page_token"] = page_token
        return await self.request("GET", f"{API}/sessions", params=params)

    async def execute(self, session_id: str, *, signature: str | None, request_id: str | None) -> Json:
        body: Json = {}
        if signature:
            body["signature"] = signature
        if request_id:
            body["request_id"] = request_id
        return await self.request(
            "POST", f"{API}/sessions/{_seg(session_id)}/execute", body=body, field_hints={"signature": "--signature"}
        )

    async def reveal_secret(self, session_id: str, secret: str) -> Json:
        return await self.request("POST", f"{API}/sessions/{_seg(session_id)}/secret", body={"secret": secret})

    async def cancel(self, session_id: str) -> Json:
        return await self.request("POST", f"{API}/sessions/{_seg(session_id)}/cancel", body={})


def _seg(value: str) -> str:
    return urlquote(value, safe="")


def _cause(e: BaseException) -> str:
    """The innermost reason, e.g. "connection refused", rather than httpx's wrapper text."""
    inner: BaseException = e
    for _ in range(10):
        nxt = inner.__cause__ or inner.__context__
        if nxt is None:
            break
        inner = nxt
    if isinstance(inner, ConnectionRefusedError) or "refused" in str(inner).lower():
        return "connection refused"
    text = str(inner) or str(e) or type(inner).__name__
    return text
