"""Request-scoped context carried on every log line and across services in gRPC metadata."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
SESSION_ID_HEADER = "x-session-id"

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
session_id: ContextVar[str | None] = ContextVar("session_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    """Metadata for a call to another service, so its logs carry the same ids."""
    pairs: list[tuple[str, str]] = []
    if (rid := request_id.get()) is not None:
        pairs.append((REQUEST_ID_HEADER, rid))
    if (sid := session_id.get()) is not None:
        pairs.append((SESSION_ID_HEADER, sid))
    return tuple(pairs)
