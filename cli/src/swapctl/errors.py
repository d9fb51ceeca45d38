"""Exit codes and the one-line rendering of every failure swapctl reports."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Documented in docs/cli.md; scripts depend on these numbers, so they never change meaning."""

    OK = 0
    NOT_COMPLETED = 1  # the swap ended in a terminal state other than completed
    USAGE = 2  # bad arguments (click's own code for usage errors)
    REJECTED = 3  # the gateway refused the request (4xx other than 401/403)
    AUTH = 4  # missing or wrong API key (401/403)
    UNREACHABLE = 5  # no connection, or no answer in time
    SERVER = 6  # the gateway or a service behind it failed (5xx), or answered something that is not the API
    INTERRUPTED = 130  # Ctrl-C; the session itself goes on


class CliError(Exception):
    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.message = one_line(message)
        self.exit_code = exit_code


class ApiError(CliError):
    """An error answer of the gateway; `field` is the request field it names, if any."""

    def __init__(
        self,
        status: int,
        *,
        code: str | None,
        reason: str | None,
        message: str,
        field: str | None,
        retry_after: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.reason = reason
        self.field = field
        self.retry_after = retry_after
        self.detail = message
        super().__init__(self._render(hint), exit_code_for_status(status))

    def _render(self, hint: str | None) -> str:
        text = one_line(self.detail) or "no message"
        if self.field:
            # The gateway's own validation messages already start with the field; say it once.
            text = text.removeprefix(f"{self.field}: ")
            text = f'field "{self.field}"{f" ({hint})" if hint else ""}: {text}'
        tags = [f"HTTP {self.status}"]
        if self.code:
            tags.append(self.code)
        if self.reason and self.reason != self.code:
            tags.append(self.reason)
        text = f"{text} [{' '.join(tags)}]"
        if self.retry_after:
            text += f"; retry after {self.retry_after} s"
        if self.status in (401, 403):
            text += "; check --api-key or SWAPCTL_API_KEY"
        return text


def exit_code_for_status(status: int) -> ExitCode:
    if status in (401, 403):
        return ExitCode.AUTH
    if 400 <= status < 500:
        return ExitCode.REJECTED
    return ExitCode.SERVER


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def api_error(
    status: int,
    body: bytes,
    *,
    retry_after: str | None = None,
    field_hints: Mapping[str, str] | None = None,
) -> ApiError:
    """The gateway's {"error": {...}} body as an ApiError; any other body is quoted, shortened."""
    payload: Any = None
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        field = error.get("field")
        field_name = field if isinstance(field, str) and field else None
        return ApiError(
            status,
            code=_str_or_none(error.get("code")),
            reason=_str_or_none(error.get("reason")),
            message=str(error.get("message") or ""),
            field=field_name,
            retry_after=retry_after,
            hint=(field_hints or {}).get(field_name or "") or _hint_for_prefix(field_name, field_hints),
        )
    snippet = one_line(body.decode("utf-8", "replace"))[:200]
    return ApiError(
        status,
        code=None,
        reason=None,
        message=f"the gateway answered without an API error body: {snippet}" if snippet else "empty answer",
        field=None,
        retry_after=retry_after,
    )


def _hint_for_prefix(field: str | None, hints: Mapping[str, str] | None) -> str | None:
    """`src.token` falls back to the hint of `src` when only the whole object maps to one argument."""
    if not field or not hints:
        return None
    head = field.split(".", 1)[0].split("[", 1)[0]
    return hints.get(head)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
