"""A Redis for local stacks and tests: the one on 127.0.0.1:6379 when it answers, else a redis-server
of our own on a free loopback port that keeps nothing on disk."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import redis

from swap_devnet.child import Child
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
        self._child = Child(f"redis-{self.port}")

    def __enter__(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("no Redis answers on 127.0.0.1:6379 and redis-server is not installed")
        self._child.spawn([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        deadline = time.monotonic() + self._startup_timeout
        while not answers(self.url):
            if self._child.exited or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"redis-server on port {self.port} did not come up")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._child.stop()


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
        self._child = Child(f"redis-{self.port}", self.log_path)

    def start(self) -> PersistentRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)]
        self._child.spawn([*args, "--appendonly", "yes", "--save", ""])
        deadline = time.monotonic() + 15
        while not answers(self.url):
            if self._child.exited or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not come up:\n{self._child.tail()}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        self._child.kill()

    def __enter__(self) -> PersistentRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
