"""A Redis for local stacks and tests: the one on 127.0.0.1:6379 when it answers, else a redis-server
of our own on a free loopback port that keeps nothing on disk."""

from __future__ import annotations

import shutil
import subprocess
import time

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
