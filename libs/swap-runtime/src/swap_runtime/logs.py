"""JSON lines on stdout, each carrying the service name and the request / session ids in scope."""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

from swap_runtime import context

# Hex longer than a hash is calldata or key material: a withdrawal's calldata carries the secret.
_LONG_HEX = re.compile(r"(0x)?[0-9a-fA-F]{65,}")
# Extras some libraries attach for terminals (uvicorn's `color_message`): ANSI escapes have no place in JSON.
_TERMINAL_EXTRAS = ("color_message",)


def redact(text: str) -> str:
    return _LONG_HEX.sub("<redacted>", text)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.request_id = context.request_id.get()
        record.session_id = context.session_id.get()
        # Redact the message as it will be printed: arguments are where calldata usually arrives.
        record.msg = redact(record.getMessage())
        record.args = None
        for name in _TERMINAL_EXTRAS:
            record.__dict__.pop(name, None)
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks keep their frames but lose exception text that could carry calldata.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def _formatter() -> JsonFormatter:
    """ISO 8601 times in UTC with their offset (2026-11-30T12:00:00.123+00:00), so lines from machines in
    different zones sort and compare."""
    formatter = JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(request_id)s %(session_id)s",
        rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
    )
    formatter.formatTime = _utc_time  # type: ignore[method-assign]
    return formatter


def _utc_time(record: logging.LogRecord, datefmt: str | None = None) -> str:
    return dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")


def configure_logging(
    service: str, level: str = "INFO", file: Path | None = None, file_max_mb: int = 50, file_backups: int = 5
) -> None:
    """Route every logger to JSON lines on stdout and, when `file` is set, also to that file, rotated at
    `file_max_mb` with `file_backups` old files kept (idempotent: replaces earlier handlers)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            RotatingFileHandler(file, maxBytes=file_max_mb * 1024 * 1024, backupCount=file_backups, encoding="utf-8")
        )
    for handler in handlers:
        handler.addFilter(_ContextFilter(service))
        handler.setFormatter(_formatter())
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level.upper())
