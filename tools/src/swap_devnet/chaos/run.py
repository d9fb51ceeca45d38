"""One chaos run: the stack, the accounts, the workload and the nemesis for the run's length, then the drain
and the checker; the report as one JSON document and a short table."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swap_devnet import prometheus
from swap_devnet.chaos import checker
from swap_devnet.chaos.nemesis import MAX_REORG_DEPTH, Miner, Nemesis
from swap_devnet.chaos.workload import Workload, make_parties
from swap_devnet.evm import mine
from swap_devnet.prometheus import Prometheus
from swap_devnet.redis_server import PersistentRedis
from swap_devnet.stack import LocalStack, StackOptions

log = logging.getLogger(__name__)

SKEW_BOUND_S = 2  # the session service's SESSION_CLOCK_SKEW_S
BLOCK_TIME_S = 0.5  # BASE: a block every half second, mined by the run (chaos.nemesis.Miner)
# Timelocks long enough that an RPC cut of up to 60 s is survivable, short enough for the drain to be quick.
PLAN = {
    "QUOTE_VALIDITY_S": "60",
    "QUOTE_SRC_WITHDRAWAL_AFTER_S": "2",
    "QUOTE_SRC_PUBLIC_WITHDRAWAL_AFTER_S": "200",
    "QUOTE_SRC_CANCELLATION_AFTER_S": "400",
    "QUOTE_SRC_PUBLIC_CANCELLATION_AFTER_S": "460",
    "QUOTE_DST_WITHDRAWAL_AFTER_S": "1",
    "QUOTE_DST_PUBLIC_WITHDRAWAL_AFTER_S": "100",
    "QUOTE_DST_CANCELLATION_AFTER_S": "250",
    "QUOTE_DST_PUBLIC_CANCELLATION_AFTER_S": "300",
    "QUOTE_REVEAL_MARGIN_S": "60",
    "QUOTE_LIMITS": json.dumps({"TUSD": {"min": "0.5", "max": "2000000"}}),
}


@dataclass
class Options:
    seed: int
    minutes: float
    in_flight: int
    work_dir: Path
    makers: int = 4
    receivers: int = 3
    mean_fault_gap_s: float = 6.0
    drain_timeout_s: float = 600.0


def stack_options(o: Options, redis_url: str) -> StackOptions:
    session = {
        "SESSION_LEASE_TTL_S": "3",
        "SESSION_RPC_TIMEOUT_S": "10",
        "SESSION_MAX_ACTIVE_PER_MAKER": "1000",
        "SESSION_MAX_ACTIVE_PER_TENANT": "10000",
        "SESSION_MAX_ACTIVE_TOTAL": "10000",
        "SESSION_CLOCK_SKEW_S": str(SKEW_BOUND_S),
    }
    return StackOptions(
        work_dir=o.work_dir,
        anvil_block_time=0,  # automine until the run's Miner takes over (a block every BLOCK_TIME_S)
        poll_interval_s=0.2,
        redis_url=redis_url,
        # Deeper than the deepest reorg the nemesis makes (5).
        base_confirmations=6,
        proxy_chains=True,
        proxy_services=True,
        session_replicas=2,
        edge=True,
        extra_env={
            "quote": PLAN,
            "session": session,
            "chain-base": {"CHAIN_BASE_TX_RESEND_AFTER_S": "3", "CHAIN_BASE_RPC_ATTEMPTS": "3"},
            "chain-near": {"CHAIN_NEAR_RPC_ATTEMPTS": "3"},
            "gateway": {"GATEWAY_RATE_LIMIT": "1000000/minute", "GATEWAY_ANON_RATE_LIMIT": "1000000/minute"},
        },
    )


async def run(o: Options) -> dict[str, Any]:
    o.work_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(o.seed)  # noqa: S311 - a seeded, replayable run, not cryptography
    started = time.monotonic()
    with (
        PersistentRedis(o.work_dir / "redis-data", o.work_dir) as redis,
        LocalStack(stack_options(o, redis.url)) as stack,
    ):
        assert stack.evm is not None and stack.near is not None
        log.info("chaos: stack up in %.0f s; making accounts", time.monotonic() - started)
        miner = Miner(stack.evm.web3(), BLOCK_TIME_S)
        mining = asyncio.create_task(miner.run())
        with contextlib.ExitStack() as extras:
            prom = (
                extras.enter_context(Prometheus(o.work_dir, _scrape_targets(stack))) if prometheus.available() else None
            )
            if prom is None:
                log.warning("chaos: no prometheus binary: the alert rules are not evaluated, halts come from the logs")
            try:
                return await _run_load(o, rng, started, redis, stack, miner, prom)
            finally:
                mining.cancel()
                await asyncio.gather(mining, return_exceptions=True)


def _scrape_targets(stack: LocalStack) -> dict[str, str]:
    """Every /metrics endpoint of the stack: each service and replica, and the gateway's own port."""
    targets = {name: f"127.0.0.1:{port}" for name, port in stack.metrics_ports.items()}
    if stack.gateway is not None:
        targets["gateway"] = f"127.0.0.1:{stack.gateway.port}"
    return targets


async def _run_load(
    o: Options,
    rng: random.Random,
    started: float,
    redis: PersistentRedis,
    stack: LocalStack,
    miner: Miner,
    prom: Prometheus | None,
) -> dict[str, Any]:
    assert stack.evm is not None and stack.near is not None
    parties = await make_parties(stack, rng, o.makers, o.receivers)
    # Bury the accounts' funding below the deepest reorg: anvil_reorg drops the transactions of the blocks it
    # replaces, which would take a maker's funds away before the run has begun.
    await asyncio.to_thread(mine, stack.evm.web3(), MAX_REORG_DEPTH + 1)
    resolvers = {"base": stack.evm.resolver.address, "near": stack.near.resolver.account_id}
    accounts = parties.accounts()
    accounts["base"].append(resolvers["base"])
    accounts["near"].append(resolvers["near"])
    chains = checker.Chains(stack)
    before = await asyncio.to_thread(chains.balances, accounts)
    first = await asyncio.to_thread(chains.heads)

    workload = Workload(stack, parties, rng, o.in_flight)
    nemesis_rng = random.Random(rng.random())  # noqa: S311
    # Pauses draw from a timeline of their own: the other faults of a seed stay where they were before pauses.
    pause_rng = random.Random(f"pause-{o.seed}")  # noqa: S311
    nemesis = Nemesis(stack, redis, nemesis_rng, o.mean_fault_gap_s, SKEW_BOUND_S, miner, pause_rng)
    log.info("chaos: seed %d, %g min, %d in flight", o.seed, o.minutes, o.in_flight)
    load = asyncio.create_task(workload.run())
    faults = asyncio.create_task(nemesis.run())
    await asyncio.sleep(o.minutes * 60)
    workload.stop()
    await nemesis.stop_and_heal()
    await faults
    await workload.finish()
    log.info("chaos: load stopped after %d swaps; draining", len(workload.swaps))

    sessions = await checker.drain(stack, o.drain_timeout_s)
    await workload.close()
    await load
    after = await asyncio.to_thread(chains.balances, accounts)
    last = await asyncio.to_thread(chains.heads)
    base_txs = await asyncio.to_thread(chains.base_transactions, first["base"] + 1, last["base"])
    signers = set(accounts["near"])
    near_txs = await asyncio.to_thread(chains.near_transactions, first["near"] + 1, last["near"], signers)
    lock_states = await asyncio.to_thread(_lock_states, chains, sessions)
    violations = checker.check(sessions, before, after, base_txs, near_txs, lock_states, resolvers)
    if chains.missing_blocks:
        # Native balances cannot be explained without every block's fees: the run is not a pass.
        missing = chains.missing_blocks
        detail = f"{len(missing)} BASE blocks of the run not served by the node (first {missing[0]})"
        violations.append(checker.Violation("unchecked_blocks", detail))
    fired = await asyncio.to_thread(prom.fired) if prom is not None else None
    return report(o, time.monotonic() - started, workload, nemesis, sessions, violations, stack, fired)


def _lock_states(chains: checker.Chains, sessions: list[Any]) -> dict[str, dict[str, str]]:
    states: dict[str, dict[str, str]] = {}
    for s in sessions:
        locks: dict[str, str] = {}
        for which, chain, lock_id, contract in (
            ("source", checker.CHAINS[s.src.chain], s.src_lock_id, chains.evm.escrow_src),
            ("destination", checker.CHAINS[s.dst.chain], s.dst_lock_id, chains.evm.escrow_dst),
        ):
            if not lock_id:
                continue
            locks[which] = (
                chains.base_lock_state(lock_id, contract) if chain == "base" else chains.near_lock_state(lock_id)
            )
        states[s.session_id] = locks
    return states


def report(
    o: Options,
    elapsed_s: float,
    workload: Workload,
    nemesis: Nemesis,
    sessions: list[Any],
    violations: list[checker.Violation],
    stack: LocalStack,
    fired: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    by_state: dict[str, int] = {}
    for s in sessions:
        name = checker.state_name(s.state)
        by_state[name] = by_state.get(name, 0) + 1
    by_kind: dict[str, dict[str, int]] = {}
    ends = {s.session_id: checker.state_name(s.state) for s in sessions}
    for swap in workload.swaps:
        end = ends.get(swap.session_id, "not_created")
        by_kind.setdefault(swap.kind, {}).setdefault(end, 0)
        by_kind[swap.kind][end] += 1
    return {
        "seed": o.seed,
        "minutes": o.minutes,
        "in_flight": o.in_flight,
        "elapsed_s": round(elapsed_s, 1),
        "passed": not violations,
        "swaps": {
            "started": len(workload.swaps),
            "sessions": len(sessions),
            "by_end_state": by_state,
            "by_kind": by_kind,
        },
        "faults": {"by_kind": nemesis.summary(), "injected": [f.to_json() for f in nemesis.faults]},
        "violations": [v.to_json() for v in violations],
        # Every alert of deploy/prometheus/alerts.yml that fired during the run, as a Prometheus scraping the
        # stack evaluated them (None: no prometheus binary), and the halts the replicas logged.
        "alerts": {"fired": fired, "halts": halts(stack)},
        "replay": f"make chaos SEED={o.seed} MINUTES={o.minutes:g} IN_FLIGHT={o.in_flight}",
        "logs": str(o.work_dir),
    }


def halts(stack: LocalStack) -> list[dict[str, Any]]:
    """The saga halts the session replicas logged (each raises the SwapSagaHalted alert)."""
    found: list[dict[str, Any]] = []
    for name in stack.services:
        if not name.startswith("session"):
            continue
        path = stack.options.work_dir / f"{name}.log"
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if '"alert"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("alert"):
                found.append(
                    {
                        "replica": name,
                        "alert": entry["alert"],
                        "session_id": entry.get("session_id"),
                        "message": entry.get("message"),
                    }
                )
    return found


def _alerts_line(alerts: dict[str, Any]) -> str:
    fired = alerts["fired"]
    if fired is None:
        names = "rules not evaluated (no prometheus)"
    else:
        counts: dict[str, int] = {}
        for labels in fired:
            counts[labels.get("alertname", "?")] = counts.get(labels.get("alertname", "?"), 0) + 1
        names = ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none fired"
    return f"{names}; {len(alerts['halts'])} saga halts logged"


def table(result: dict[str, Any]) -> str:
    lines = [
        f"chaos seed {result['seed']}: {result['minutes']:g} min, {result['in_flight']} in flight, "
        f"{result['swaps']['started']} swaps, {len(result['faults']['injected'])} faults, "
        f"{'PASSED' if result['passed'] else 'FAILED'} ({result['elapsed_s']:.0f} s)",
        "  ended:  " + ", ".join(f"{k} {v}" for k, v in sorted(result["swaps"]["by_end_state"].items())),
        "  faults: " + ", ".join(f"{k} {v}" for k, v in result["faults"]["by_kind"].items()),
        "  alerts: " + _alerts_line(result["alerts"]),
    ]
    for v in result["violations"]:
        lines.append(f"  VIOLATION {v['kind']}: {v['detail']}" + (f" {v['sessions'][:5]}" if v.get("sessions") else ""))
    if not result["passed"]:
        lines.append(f"  replay: {result['replay']}")
    return "\n".join(lines)
