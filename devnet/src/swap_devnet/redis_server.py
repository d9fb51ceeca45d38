"""A Redis for local stacks and tests: the one on 127.0.0.1:6379 when it answers, else a redis-server
of our own on a free loopback port that keeps nothing on disk."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from swap_devnet.procs import free_port

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


def answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class RedisServer:
    """redis-server on a free loopback port, without persistence, stopped on exit."""

    def __init__(self, startup_timeout: float = 10.0) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("no Redis answers on 127.0.0.1:6379 and redis-server is not installed")
        self._proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self._startup_timeout
        while not answers(self.url):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"redis-server on port {self.port} did not come up")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


class PersistentRedis:
    """redis-server with the append-only file on, as docker-compose runs it, that can be killed and
    started again on the same port over the same data directory."""

    def __init__(self, data_dir: Path, log_dir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.data_dir = data_dir
        self.log_path = log_dir / f"redis-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PersistentRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)]
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(
                [*args, "--appendonly", "yes", "--save", ""], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 15
        while not answers(self.url):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not come up:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> PersistentRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
