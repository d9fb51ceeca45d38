"""One child process of the harness (a chain, a service, Envoy, Redis): started with its output appended to a
log file, stopped with SIGTERM and then SIGKILL when it does not exit in time, and stopped at the latest when
this process exits. Each process class says how to start its program and when it is ready; this is the rest."""

from __future__ import annotations

import atexit
import contextlib
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self


class Child:
    def __init__(self, name: str, log_path: Path | None = None) -> None:
        self.name = name
        self.log_path = log_path  # None: the output is dropped
        self._proc: subprocess.Popen[bytes] | None = None

    def spawn(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        own_session: bool = False,
        preexec_fn: Callable[[], object] | None = None,
        fresh_log: bool = False,
    ) -> None:
        """Starts `command`. `own_session` keeps a terminal's Ctrl-C away from it: its owner decides when it
        stops. `fresh_log` starts the log empty (for a program whose log is read back), else it is appended to."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        with contextlib.ExitStack() as files:
            out: IO[bytes] | int = subprocess.DEVNULL
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                out = files.enter_context(self.log_path.open("wb" if fresh_log else "ab"))
            self._proc = subprocess.Popen(
                list(command),
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=own_session,
                preexec_fn=preexec_fn,  # noqa: PLW1509 - only the parent-death signal, set by the caller
            )
        atexit.register(self.stop)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it has not exited within `timeout`; idempotent."""
        atexit.unregister(self.stop)
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, as a crash would end it; the exit code stays readable (`returncode`)."""
        atexit.unregister(self.stop)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def pause(self) -> None:
        """SIGSTOP: the process stops answering while the kernel keeps its sockets open (a hung process)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def exited(self) -> bool:
        """Started, and no longer running."""
        return self._proc is not None and self._proc.poll() is not None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def tail(self, lines: int = 30) -> str:
        """The end of its log, for an error message."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class StartStop:
    """A `with` block starts it on entry and stops it on exit, whatever happened inside."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
