"""Following one session over the gateway's WebSocket (/ws) until it ends, resuming after a disconnect.

Each `update` carries a cursor; after a reconnect the subscription names the last one seen, so the gateway
replays whatever happened in between and nothing is missed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from swapctl.errors import CliError, ExitCode, one_line

Json = dict[str, Any]

TERMINAL_STATES = frozenset({"completed", "cancelled", "refunded", "failed", "timeout"})
# Error reasons after which a fresh subscription may succeed; any other error ends the watch.
_TRANSIENT_REASONS = ("UNAVAILABLE", "DEADLINE", "EXHAUSTED", "INTERNAL", "ABORTED")
DEFAULT_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def ws_url(http_url: str) -> str:
    parts = urlsplit(http_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path + "/ws", "", ""))


class SessionFollower:
    """Calls `on_session` with every newer snapshot of the session; `run` returns the terminal one.

    `on_reconnect(attempt, delay_s)` is told about each reconnect so a display can say so.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None,
        session_id: str,
        *,
        on_session: Callable[[Json], None],
        cursor: str | None = None,
        known: Json | None = None,
        on_reconnect: Callable[[int, float], None] | None = None,
        retry_delays: Sequence[float] | None = None,
        max_failures: int = 8,
        open_timeout: float = 10.0,
    ) -> None:
        self.url = ws_url(url)
        self.api_key = api_key
        self.session_id = session_id
        self.cursor = cursor
        self.on_session = on_session
        self.on_reconnect = on_reconnect
        self.retry_delays = tuple(DEFAULT_RETRY_DELAYS if retry_delays is None else retry_delays) or (1.0,)
        self.max_failures = max_failures
        self.open_timeout = open_timeout
        self.session: Json | None = known
        self.connections = 0

    async def run(self) -> Json:
        if self.session is not None and self.session.get("state") in TERMINAL_STATES:
            return self.session
        failures = 0
        while True:
            try:
                final = await self._follow_once()
            except InvalidStatus as e:
                status = e.response.status_code
                if status in (401, 403):
                    raise CliError(
                        f"the gateway refused the API key on the WebSocket [HTTP {status}]; "
                        "check --api-key or SWAPCTL_API_KEY",
                        ExitCode.AUTH,
                    ) from e
                if 400 <= status < 500 and status != 429:
                    raise CliError(
                        f"the gateway at {self.url} does not accept WebSocket subscriptions [HTTP {status}]",
                        ExitCode.REJECTED,
                    ) from e
                failures += 1
                error: Exception = e
            except InvalidURI as e:
                raise CliError(f"the WebSocket URL {self.url!r} is not usable: {e}", ExitCode.USAGE) from e
            except _Reconnect as e:
                failures = 1 if e.progressed else failures + 1
                error = e
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as e:
                failures += 1
                error = e
            else:
                return final
            if failures > self.max_failures:
                resume = f" --cursor {self.cursor}" if self.cursor else ""
                raise CliError(
                    f"lost the WebSocket to the gateway at {self.url} ({_describe(error)}); "
                    f"resume with: swapctl watch {self.session_id}{resume}",
                    ExitCode.UNREACHABLE,
                )
            delay = self.retry_delays[min(failures - 1, len(self.retry_delays) - 1)]
            if self.on_reconnect is not None:
                self.on_reconnect(failures, delay)
            await asyncio.sleep(delay)

    async def _follow_once(self) -> Json:
        headers = {"X-API-Key": self.api_key} if self.api_key else None
        progressed = False
        async with connect(
            self.url,
            additional_headers=headers,
            open_timeout=self.open_timeout,
            max_size=8 * 1024 * 1024,
            proxy=None,
        ) as ws:
            self.connections += 1
            await self._subscribe(ws)
            try:
                async for raw in ws:
                    progressed |= self._handle(raw)
                    if self.session is not None and self.session.get("state") in TERMINAL_STATES:
                        return self.session
            except ConnectionClosed as e:
                raise _Reconnect(progressed, f"the connection closed ({_describe(e)})") from e
        raise _Reconnect(progressed, "the gateway closed the connection")

    async def _subscribe(self, ws: ClientConnection) -> None:
        arg: str | Json = {"session_id": self.session_id, "cursor": self.cursor} if self.cursor else self.session_id
        await ws.send(json.dumps({"op": "subscribe", "channel": "session", "args": [arg]}))

    def _handle(self, raw: str | bytes) -> bool:
        """True when the message brought an update, which alone makes the failure count start over: a gateway
        that confirms subscriptions and then drops every connection must still end in a clear error."""
        try:
            message = json.loads(raw)
        except ValueError:
            return False
        if not isinstance(message, dict):
            return False
        event = message.get("event")
        args = message.get("args") or []
        if event == "subscribed":
            return False
        if event == "unsubscribed" and self.session_id in args:
            # The gateway ends a subscription at a terminal state, which the update before it carried;
            # ending one earlier means its upstream gave up, so a fresh subscription is the way on.
            raise _Reconnect(False, "the gateway ended the subscription")
        if event == "error":
            first = args[0] if args and isinstance(args[0], dict) else {}
            reason = str(first.get("reason") or "ERROR")
            text = one_line(str(first.get("message") or ""))
            if any(word in reason for word in _TRANSIENT_REASONS):
                raise _Reconnect(False, f"{reason}: {text}")
            code = ExitCode.AUTH if "AUTH" in reason or "API_KEY" in reason else ExitCode.REJECTED
            raise CliError(f"the gateway refused to follow session {self.session_id}: {text} [{reason}]", code)
        if event != "update":
            return False
        for item in args:
            if not isinstance(item, dict):
                continue
            session = item.get("session")
            if not isinstance(session, dict) or session.get("session_id") != self.session_id:
                continue
            if isinstance(item.get("cursor"), str):
                self.cursor = item["cursor"]
            if self._is_newer(session):
                self.session = session
                self.on_session(session)
        return True

    def _is_newer(self, session: Json) -> bool:
        if self.session is None:
            return True
        old, new = self.session.get("version"), session.get("version")
        if isinstance(old, int) and isinstance(new, int):
            return new >= old
        return True


class _Reconnect(Exception):
    """Ends one connection; the loop in `run` decides whether to try again."""

    def __init__(self, progressed: bool, why: str) -> None:
        super().__init__(why)
        self.progressed = progressed


def _describe(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower():
        return "connection refused"
    return one_line(str(e)) or type(e).__name__
