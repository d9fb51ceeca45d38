"""The nemesis: faults at random times, for random lengths, drawn from the run's seed. Faults overlap: a new
one may start while others last. `heal()` ends them all and brings every process back.

| kind | what it does |
|---|---|
| `kill` | kill -9 of a service or replica (session, session-2, quote, chain-*, gateway), back 0.5-5 s later |
| `redis` | kill -9 of Redis (append-only file on, as deployed); started again on the same data 0.5-3 s later |
| `rpc_cut` | a chain's RPC refuses every connection for 1-60 s (open ones dropped) |
| `stream_delay` | every byte between the session replicas and a chain service waits 0.1-1.5 s, for 5-30 s |
| `stream_drop` | the connections between the session replicas and a chain service are reset once |
| `reorg` | the last 1-5 BASE blocks are replaced (anvil_reorg) |
| `near_stall` | the NEAR devnet produces no block for 1-6 s, within the NEAR inclusion bound (below) |
| `skew` | a chain's clock jumps 1-2 s ahead (within the session service's SESSION_CLOCK_SKEW_S bound) |
| `pause` | SIGSTOP of a service or replica for 1-20 s, then SIGCONT: it hangs with its connections open, silent |

Pauses come from a timeline of their own (`pause_rng`, about one for every four other faults), so adding
them left the other faults of every seed where they were.

A NEAR stall lasts less than the inclusion bound chain-near states (CHAIN_NEAR_INCLUSION_BOUND_S, 8 s in the
local stack): the session's safety rules take that bound as given, as they take a reorg no deeper than the
confirmations. A longer stall lets a maker's lock sent before a cancel land after the session concluded that
nothing was locked (seed 6, docs/faults.md): the lock stays the maker's to refund through the HTLC's public
cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from web3 import Web3
from web3.types import RPCEndpoint

from swap_devnet.evm import increase_time
from swap_devnet.redis_server import PersistentRedis
from swap_devnet.stack import NEAR_INCLUSION_BOUND_S, LocalStack

log = logging.getLogger(__name__)

# Deepest BASE reorg: within the stack's confirmations (6), and the setup's transactions are mined deeper first.
MAX_REORG_DEPTH = 5
# Longest NEAR stall: under the local stack's NEAR inclusion bound (swap_devnet.stack) by two blocks' time.
NEAR_STALL_MAX_S = NEAR_INCLUSION_BOUND_S - 2.0
FAULTS = ("kill", "redis", "rpc_cut", "stream_delay", "stream_drop", "reorg", "near_stall", "skew")
WEIGHTS = (30, 6, 14, 10, 10, 12, 10, 8)
KILLABLE = ("session", "session-2", "quote", "chain-base", "chain-near", "gateway")


@dataclass
class Fault:
    kind: str
    target: str
    at_s: float  # seconds into the run
    length_s: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", {}, None)}


class Miner:
    """Mines a BASE block every `interval_s` (anvil runs without a miner of its own), so that a reorg happens
    between two blocks: anvil's own interval miner races anvil_reorg, which then numbers the replacement blocks
    after the one mined meanwhile and leaves the replaced numbers unserved."""

    def __init__(self, w3: Web3, interval_s: float) -> None:
        self.w3 = w3
        self.interval_s = interval_s
        self.lock = asyncio.Lock()

    def _call(self, method: str, params: list[Any]) -> None:
        reply = self.w3.provider.make_request(RPCEndpoint(method), params)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")

    async def run(self) -> None:
        await asyncio.to_thread(self._call, "evm_setAutomine", [False])
        while True:
            async with self.lock:
                with contextlib.suppress(Exception):  # the node answers again after a fault; keep mining
                    await asyncio.to_thread(self._call, "evm_mine", [])
            await asyncio.sleep(self.interval_s)

    async def reorg(self, depth: int) -> None:
        async with self.lock:
            await asyncio.to_thread(self._call, "anvil_reorg", [depth, []])


class Nemesis:
    def __init__(
        self,
        stack: LocalStack,
        redis: PersistentRedis,
        rng: random.Random,
        mean_gap_s: float,
        skew_bound_s: int,
        miner: Miner,
        pause_rng: random.Random | None = None,
    ) -> None:
        assert stack.evm is not None and stack.near_devnet is not None
        self.stack = stack
        self.redis = redis
        self.rng = rng
        self.mean_gap_s = mean_gap_s
        self.skew_bound_s = skew_bound_s
        self.faults: list[Fault] = []
        self.w3 = Web3(Web3.HTTPProvider(stack.evm.rpc_url))
        self.miner = miner
        self.pause_rng = pause_rng
        self._started = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        # One fault at a time per target: a process is not killed while it is being started again.
        self._busy: set[str] = set()

    async def run(self) -> None:
        self._started = time.monotonic()
        pauses = asyncio.create_task(self._pauses()) if self.pause_rng is not None else None
        try:
            await self._faults()
        finally:
            if pauses is not None:
                await pauses

    async def _pauses(self) -> None:
        rng = self.pause_rng
        assert rng is not None
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), rng.expovariate(1 / (4 * self.mean_gap_s)))
                return
            except TimeoutError:
                pass
            target = rng.choice([name for name in KILLABLE if name in self._processes()])
            length = round(rng.uniform(1.0, 20.0), 1)
            if target in self._busy:
                continue
            self._start(Fault("pause", target, round(time.monotonic() - self._started, 2), length))

    async def _faults(self) -> None:
        while not self._stopping.is_set():
            gap = self.rng.expovariate(1 / self.mean_gap_s)
            try:
                await asyncio.wait_for(self._stopping.wait(), gap)
                return
            except TimeoutError:
                pass
            fault = self._draw()
            if fault is None:
                continue
            self._start(fault)

    def _start(self, fault: Fault) -> None:
        self.faults.append(fault)
        task = asyncio.create_task(self._inject(fault))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _draw(self) -> Fault | None:
        rng = self.rng
        kind = rng.choices(FAULTS, WEIGHTS)[0]
        at = round(time.monotonic() - self._started, 2)
        if kind == "kill":
            target = rng.choice([name for name in KILLABLE if name in self._processes()])
            fault = Fault(kind, target, at, round(rng.uniform(0.5, 5.0), 2))
        elif kind == "redis":
            fault = Fault(kind, "redis", at, round(rng.uniform(0.5, 3.0), 2))
        elif kind == "rpc_cut":
            fault = Fault(kind, rng.choice(("base", "near")), at, round(rng.uniform(1.0, 60.0), 1))
        elif kind == "stream_delay":
            fault = Fault(kind, rng.choice(("chain-base", "chain-near")), at, round(rng.uniform(5.0, 30.0), 1))
            fault.detail["delay_s"] = round(rng.uniform(0.1, 1.5), 2)
        elif kind == "stream_drop":
            fault = Fault(kind, rng.choice(("chain-base", "chain-near")), at)
        elif kind == "reorg":
            fault = Fault(kind, "base", at, detail={"depth": rng.randint(1, MAX_REORG_DEPTH)})
        elif kind == "near_stall":
            fault = Fault(kind, "near", at, round(rng.uniform(1.0, NEAR_STALL_MAX_S), 1))
        else:
            fault = Fault(kind, rng.choice(("base", "near")), at, detail={"seconds": rng.randint(1, self.skew_bound_s)})
        if fault.target in self._busy and kind in ("kill", "redis", "rpc_cut", "stream_delay", "near_stall"):
            return None
        return fault

    def _processes(self) -> dict[str, Any]:
        procs: dict[str, Any] = dict(self.stack.services)
        if self.stack.gateway is not None:
            procs["gateway"] = self.stack.gateway
        return procs

    async def _inject(self, fault: Fault) -> None:
        self._busy.add(fault.target)
        log.warning("nemesis: %s", fault.to_json())
        try:
            await self._do(fault)
        except Exception as err:  # a fault that could not be injected is reported, not fatal
            fault.error = repr(err)[:300]
            log.warning("nemesis: %s failed: %r", fault.kind, err)
        finally:
            self._busy.discard(fault.target)

    async def _do(self, fault: Fault) -> None:
        stack = self.stack
        assert stack.near_devnet is not None
        if fault.kind == "kill":
            proc = self._processes()[fault.target]
            proc.kill()
            await self._sleep(fault.length_s)
            await self._bring_back(fault.target, proc)
        elif fault.kind == "pause":
            proc = self._processes()[fault.target]
            proc.pause()
            try:
                await self._sleep(fault.length_s)
            finally:
                proc.resume()
        elif fault.kind == "redis":
            self.redis.kill()
            await self._sleep(fault.length_s)
            await asyncio.to_thread(self.redis.start)
        elif fault.kind == "rpc_cut":
            stack.proxies[fault.target].cut()
            await self._sleep(fault.length_s)
            stack.proxies[fault.target].restore()
        elif fault.kind == "stream_delay":
            stack.proxies[fault.target].delay(float(fault.detail["delay_s"]))
            await self._sleep(fault.length_s)
            stack.proxies[fault.target].delay(0.0)
        elif fault.kind == "stream_drop":
            stack.proxies[fault.target].drop()
        elif fault.kind == "reorg":
            await self.miner.reorg(int(fault.detail["depth"]))
        elif fault.kind == "near_stall":
            await asyncio.to_thread(stack.near_devnet.stall_blocks, fault.length_s)
            await self._sleep(fault.length_s)
        elif fault.target == "base":
            await asyncio.to_thread(increase_time, self.w3, int(fault.detail["seconds"]))
        else:
            await asyncio.to_thread(stack.near_devnet.fast_forward, delta_seconds=int(fault.detail["seconds"]))

    async def _bring_back(self, name: str, proc: Any) -> None:
        """Starts a killed process again and, like a supervisor, keeps trying while it does not come up (a
        service started during another fault may not get ready in time); stop_and_heal() takes over at the end."""
        while True:
            try:
                await asyncio.to_thread(proc.start)
                return
            except (RuntimeError, TimeoutError) as err:
                if self._stopping.is_set():
                    raise
                log.warning("nemesis: %s did not come back (%s); starting it again", name, str(err)[-200:])
                await self._sleep(1.0)

    async def _sleep(self, seconds: float) -> None:
        """Sleeps, but no longer than until stop(): a fault never outlasts the run."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def stop_and_heal(self) -> None:
        """Ends every fault: the running ones end now (processes started again, proxies let through), then
        anything still down is brought back."""
        self._stopping.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for proxy in self.stack.proxies.values():
            proxy.delay(0.0)
            proxy.restore()
        for name, proc in self._processes().items():
            if proc.returncode is not None:
                log.warning("nemesis: %s was down at the end; starting it", name)
                await asyncio.to_thread(proc.start)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for fault in self.faults:
            counts[fault.kind] = counts.get(fault.kind, 0) + 1
        return dict(sorted(counts.items()))
