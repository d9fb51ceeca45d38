"""`make run` as a process: another checkout's `make down` leaves it alone, and a child that dies makes it say
which and exit non-zero instead of sitting silent; `make down` stops the stack its own pid file names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from swap_devnet.demo import pid_file, stop_running

pytestmark = pytest.mark.integration


def children(pid: int) -> dict[int, str]:
    """The direct children of `pid` and their command lines (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


@pytest.mark.timeout(240)
def test_a_crashed_child_stops_make_run_and_another_checkouts_down_does_not(tmp_path: Path) -> None:
    mine, other = tmp_path / "mine", tmp_path / "other"
    proc = subprocess.Popen(
        [sys.executable, "-m", "swap_devnet.demo", "--work-dir", str(mine)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "the stack is up" in line:
                break
        assert proc.poll() is None, "".join(lines)
        assert pid_file(mine).read_text().strip() == str(proc.pid)

        # Another checkout's `make down` has no stack: it says so and touches nothing.
        assert stop_running(other) == 0
        time.sleep(1.5)
        assert proc.poll() is None

        [gateway] = [pid for pid, cmd in children(proc.pid).items() if "gateway.main" in cmd]
        os.kill(gateway, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=60)
        output = "".join(lines) + rest
        assert proc.returncode != 0, output
        assert "gateway exited; stopping the stack" in output
        assert not pid_file(mine).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_down_stops_the_process_its_pid_file_names(tmp_path: Path) -> None:
    # Named like `make run` (the argument is only in its command line): down checks whom it signals.
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "swap_devnet.demo"])
    cmdline = Path(f"/proc/{running.pid}/cmdline")
    while b"swap_devnet.demo" not in cmdline.read_bytes():  # until the child has exec'd
        time.sleep(0.05)
    try:
        pid_file(tmp_path).write_text(f"{running.pid}\n")
        assert stop_running(tmp_path, timeout_s=10) == 0
        running.wait(timeout=5)
        assert running.returncode == -signal.SIGTERM
    finally:
        if running.poll() is None:
            running.kill()
    # A pid file whose process is gone, or is another program now: nothing is signalled, the stale file goes.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        for pid in (running.pid, stranger.pid):
            pid_file(tmp_path).write_text(f"{pid}\n")
            assert stop_running(tmp_path) == 0
            assert not pid_file(tmp_path).exists()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
