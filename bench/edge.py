"""One local stack with the edge (gateway and Envoy) for the load sections, started when the first of them
runs and stopped after the last: starting anvil, the NEAR devnet, five services and Envoy takes longer than
most of these sections, and the smoke run has to stay short."""

from __future__ import annotations

import logging
from pathlib import Path

import redis
from swap_devnet.redis_server import LOCAL_REDIS_URL, answers
from swap_devnet.stack import LocalStack, StackOptions

log = logging.getLogger("bench.edge")

API_KEY = "bench-key"
MAX_SESSIONS_PER_MAKER = "4000"
# The load sections open up to 1,000 watchers, all through the gateway: one client to the session service
# (no x-tenant yet), far past its default per-client cap of WatchSession streams.
SESSION_WATCH_LIMIT = "4000"
_START_ATTEMPTS = 2


class SharedStack:
    def __init__(self, work_dir: Path) -> None:
        self._work = work_dir / "edge-stack"
        self._stack: LocalStack | None = None

    def get(self) -> LocalStack:
        if self._stack is None:
            self._stack = self._start()
        return self._stack

    def _start(self) -> LocalStack:
        if not answers(LOCAL_REDIS_URL):
            raise RuntimeError(f"the load sections need the local Redis at {LOCAL_REDIS_URL}")
        options = StackOptions(
            work_dir=self._work,
            redis_url=LOCAL_REDIS_URL,
            edge=True,
            api_key=API_KEY,
            extra_env={
                "session": {
                    "SESSION_MAX_ACTIVE_PER_MAKER": MAX_SESSIONS_PER_MAKER,
                    "SESSION_MAX_ACTIVE_PER_TENANT": MAX_SESSIONS_PER_MAKER,
                    "SESSION_MAX_ACTIVE_TOTAL": MAX_SESSIONS_PER_MAKER,
                    "SESSION_WATCH_MAX_STREAMS": SESSION_WATCH_LIMIT,
                    "SESSION_WATCH_MAX_PER_CLIENT": SESSION_WATCH_LIMIT,
                    "SESSION_WATCH_REDIS_MAX_CONNECTIONS": SESSION_WATCH_LIMIT,
                },
                # The gateway's per-key limit (120/minute by default) would throttle the load sections.
                "gateway": {"GATEWAY_RATE_LIMIT": ""},
            },
        )
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                return LocalStack(options).start()
            except (RuntimeError, TimeoutError) as err:
                if attempt == _START_ATTEMPTS:
                    raise
                log.warning("the edge stack did not start (attempt %d), retrying: %s", attempt, err)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        try:
            client = redis.Redis.from_url(stack.redis_url)
            try:
                keys = list(client.scan_iter(match=f"{stack.options.key_prefix}*", count=500))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()
        finally:
            stack.stop()


def service_pid(stack: LocalStack, name: str) -> int:
    proc = stack.gateway if name == "gateway" else stack.services[name]
    assert proc is not None and proc.pid is not None
    return proc.pid


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
