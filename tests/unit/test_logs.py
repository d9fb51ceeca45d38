"""JSON log lines: context ids on every line, calldata redacted, optional rotating file."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from swap_runtime import context
from swap_runtime.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_lines_carry_ids_redact_calldata_and_rotate(tmp_path: Path) -> None:
    log_file = tmp_path / "svc.log"
    configure_logging("svc", "INFO", log_file, file_max_mb=1, file_backups=2)
    context.request_id.set("req-1")
    context.session_id.set("sess-1")
    calldata = "0x" + "ab" * 100
    logging.getLogger("swap.test").info("sent %s", calldata)
    line = json.loads(log_file.read_text().splitlines()[0])
    assert (line["service"], line["request_id"], line["session_id"]) == ("svc", "req-1", "sess-1")
    assert calldata not in line["message"] and "<redacted>" in line["message"]

    for _ in range(3000):  # ~1.2 MiB: past the 1 MiB limit, so the file rotates
        logging.getLogger("swap.test").info("x" * 400)
    assert (tmp_path / "svc.log.1").exists()
    assert not (tmp_path / "svc.log.3").exists()


@pytest.mark.usefixtures("restore_logging")
def test_times_are_utc_with_their_offset_and_terminal_extras_are_dropped(tmp_path: Path) -> None:
    log_file = tmp_path / "svc.log"
    configure_logging("svc", "INFO", log_file)
    # What uvicorn does for its access and error lines: the same message again, with ANSI colours.
    logging.getLogger("uvicorn.error").info("Started", extra={"color_message": "\x1b[32mStarted\x1b[0m"})
    line = json.loads(log_file.read_text().splitlines()[0])
    stamp = dt.datetime.fromisoformat(line["time"])
    assert stamp.utcoffset() == dt.timedelta(0) and line["time"].endswith("+00:00")
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 60
    assert "color_message" not in line and "\x1b" not in log_file.read_text()
