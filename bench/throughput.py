"""Many swaps in flight at once through the session service, beside the chain-bound ceiling of the same
swaps (bench.ceiling), and a CPU profile of the services while they run.

All swaps start together (CreateSession, the maker's signature, ExecuteSession, WatchSession to the end,
as in the swap section); the dev maker on BASE signs every order. Throughput is completed swaps over the
time from the first CreateSession to the last terminal update. Balances are read before and after: the
maker's and the resolver's TUSD on BASE and the receiver's and the resolver's TUSD on NEAR must have moved
by exactly the completed swaps' amounts.

The ceiling batch runs first, at the same N on the same chains, then the orchestrator's; `efficiency` is
the orchestrator's completed swaps per second over the ceiling's.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_devnet.stack import LocalStack

from bench import ceiling, cpu
from bench.edge import MAX_SESSIONS_PER_MAKER, service_pid
from bench.stats import percentile, ratio, summary
from bench.swap import AMOUNT, _phases, bucket_quantiles, event_to_action_buckets, one_swap

log = logging.getLogger("bench.throughput")

PROFILED = ("session", "chain-base", "chain-near", "quote")
# Between the ceiling batch and the orchestrator's: pending blocks, the BASE base fee and the NEAR devnet's
# receipts settle, so the second batch does not start on the tail of the first.
SETTLE_S = 3.0
OUR_PACKAGES = ("session/", "chain_base/", "chain_near/", "quote/", "swap_runtime/")
SAMPLE_RATE_HZ = 100
_TOP = 8


@dataclass(frozen=True)
class Options:
    swaps: int
    work_dir: Path


async def _balances(stack: LocalStack) -> dict[str, int]:
    assert stack.evm is not None and stack.near is not None and stack.near_devnet is not None
    evm, near, devnet = stack.evm, stack.near, stack.near_devnet
    token = evm.token_contract(evm.web3())
    return {
        "base_maker": int(await asyncio.to_thread(token.functions.balanceOf(evm.maker.address).call)),
        "base_resolver": int(await asyncio.to_thread(token.functions.balanceOf(evm.resolver.address).call)),
        "near_receiver": await devnet.atoken_balance(near.receiver.account_id),
        "near_resolver": await devnet.atoken_balance(near.resolver.account_id),
    }


async def _one(stub: session_pb2_grpc.SessionServiceStub, stack: LocalStack) -> dict[str, Any]:
    try:
        return await one_swap(stub, stack)
    except Exception as err:
        text = str(err)
        # one_swap names the terminal state ("swap <id> ended refunded: ..."); anything else is an error.
        end = text.split(" ended ", 1)[1].split(":", 1)[0] if " ended " in text else type(err).__name__
        return {"error": f"{type(err).__name__}: {text}"[:300], "end": end}


async def _batch(stack: LocalStack, swaps: int) -> tuple[list[dict[str, Any]], float, dict[str, int]]:
    """`swaps` swaps started at once; the results, the wall time of the whole batch (s), the balance moves."""
    before = await _balances(stack)
    async with stack.channel("session") as channel:
        stub = session_pb2_grpc.SessionServiceStub(channel)
        start = time.perf_counter()
        results = await asyncio.gather(*(_one(stub, stack) for _ in range(swaps)))
        elapsed = time.perf_counter() - start
        dst_amounts: dict[str, int] = {}
        for result in results:
            if "session_id" in result:
                reply = await stub.GetSession(session_pb2.GetSessionRequest(session_id=result["session_id"]))
                dst_amounts[result["session_id"]] = int(reply.session.dst_amount)
    after = await _balances(stack)
    completed = len(dst_amounts)
    paid = sum(dst_amounts.values())
    expected = {
        "base_maker": -completed * AMOUNT,
        "base_resolver": completed * AMOUNT,
        "near_receiver": paid,
        "near_resolver": -paid,
    }
    moved = {name: after[name] - before[name] for name in before}
    mismatched = {
        name: {"moved": moved[name], "expected": want} for name, want in expected.items() if moved[name] != want
    }
    if mismatched:
        raise RuntimeError(f"balances moved other than the completed swaps say: {mismatched}")
    return results, elapsed, moved


async def _throughput(stack: LocalStack, swaps: int) -> dict[str, Any]:
    results, elapsed, moved = await _batch(stack, swaps)
    done = [r for r in results if "error" not in r]
    failures = Counter(r["end"] for r in results if "error" in r)
    walls = [r["wall_ms"] for r in done]
    return {
        "in_flight": swaps,
        "completed": len(done),
        "failures": sum(failures.values()),
        "failures_by_end": dict(failures),
        "failure_examples": [r["error"] for r in results if "error" in r][:3],
        "batch_s": round(elapsed, 2),
        "completed_per_s": round(len(done) / elapsed, 2) if elapsed > 0 else None,
        "swap_ms": {**summary(walls), "p99_ms": round(percentile(walls, 0.99), 2) if walls else None},
        "create_rpc_ms": summary([r["create_rpc_ms"] for r in done]),
        "execute_rpc_ms": summary([r["execute_rpc_ms"] for r in done]),
        "phases_ms": _phases(done),
        "balances_moved": moved,
        "checked": f"maker and resolver balances on both chains moved by exactly {len(done)} swaps' amounts",
    }


def run_throughput(stack: LocalStack, options: Options) -> dict[str, Any]:
    # One swap first: token registration on NEAR and connections are one-off costs.
    warm = asyncio.run(_throughput(stack, 1))
    if warm["completed"] != 1:
        raise RuntimeError(f"the warm-up swap failed: {warm['failure_examples']}")
    # The ceiling first (its own warm-up swap, then N at once), then the orchestrator's batch of N.
    pids = cpu.stack_pids(stack)
    started = cpu.snapshot(pids)
    bound = ceiling.run(stack, options.swaps)
    bound["cpu"] = cpu.spent(started, cpu.snapshot(pids))
    log.info("ceiling: %s swaps/s; the orchestrator's batch next", bound["completed_per_s"])
    time.sleep(SETTLE_S)
    before = event_to_action_buckets(stack.metrics_ports["session"])
    started = cpu.snapshot(pids)
    report = asyncio.run(_throughput(stack, options.swaps))
    report["cpu"] = cpu.spent(started, cpu.snapshot(pids))
    report["event_to_action"] = bucket_quantiles(before, event_to_action_buckets(stack.metrics_ports["session"]))
    return {
        "setup": {
            "stack": (
                f"swap_devnet.stack.LocalStack with the edge, SESSION_MAX_ACTIVE_PER_MAKER={MAX_SESSIONS_PER_MAKER}"
            ),
            "anvil_block_time_s": stack.options.anvil_block_time,
            "amount": "10 TUSD on BASE -> TUSD on NEAR per swap, all signed by the dev maker",
            "warmup_swaps": 1,
            "order": "ceiling batch first, then the orchestrator's, same N, same chains",
        },
        **report,
        "ceiling": bound,
        "efficiency": ratio(report["completed_per_s"] or 0.0, bound["completed_per_s"] or 0.0),
    }


def _frame(raw: str) -> str:
    """`func (path:line)` with the path cut to what follows site-packages or the repo's src dirs."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")")
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.rsplit(marker, 1)[1]
            break
    return f"{name} ({path})"


def summarize_profile(raw_path: Path, rate_hz: int) -> dict[str, Any]:
    """py-spy's collapsed stacks (`frame;frame;... count`, root first) -> the hottest frames by self time
    (the leaf) and by inclusive time (anywhere on the stack), as shares of the active samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if raw_path.exists():
        for line in raw_path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame(f) for f in stack.split(";") if f and not f.startswith("process ")]
            if not frames:
                continue
            total += count
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    if not total:
        return {"active_samples": 0}

    def ours(frame: str) -> bool:
        where = frame.rsplit(" (", 1)[-1]
        return where.startswith(OUR_PACKAGES) and "/main.py" not in where

    def top(counter: Counter[str], keep: Any = lambda frame: True) -> list[list[Any]]:
        rows = [(f, n) for f, n in counter.most_common() if keep(f)]
        return [[f, round(n / total, 3)] for f, n in rows[:_TOP]]

    return {
        "active_samples": total,
        "cpu_s": round(total / rate_hz, 2),
        "top_self": top(own),
        # The services' own functions (entry points left out), by the share of samples they were on the stack.
        "top_inclusive_own_code": top(inclusive, ours),
    }


def run_profile(stack: LocalStack, options: Options) -> dict[str, Any]:
    """py-spy records each service (not pausing it, idle threads left out) while `options.swaps` swaps run
    at once; the summary says which process spent the CPU and on what."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        raise RuntimeError("py-spy is not installed in this environment (uv pip install py-spy)")
    out_dir = options.work_dir / "profile"
    out_dir.mkdir(parents=True, exist_ok=True)
    recorders: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        for name in PROFILED:
            raw = out_dir / f"{name}.txt"
            command = [str(spy), "record", "--pid", str(service_pid(stack, name)), "--format", "raw"]
            command += ["--rate", str(SAMPLE_RATE_HZ), "--nonblocking", "-o", str(raw)]
            with (out_dir / f"{name}.py-spy.log").open("wb") as spy_log:
                recorders[name] = (subprocess.Popen(command, stdout=spy_log, stderr=subprocess.STDOUT), raw)
        time.sleep(1.0)
        for name, (proc, _) in recorders.items():
            if proc.poll() is not None:
                raise RuntimeError(f"py-spy could not attach to {name}: {(out_dir / f'{name}.py-spy.log').read_text()}")
        report = asyncio.run(_throughput(stack, options.swaps))
    finally:
        for proc, _ in recorders.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc, _ in recorders.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    processes = {name: summarize_profile(raw, SAMPLE_RATE_HZ) for name, (_, raw) in recorders.items()}
    phases = report["phases_ms"]
    slowest = max(phases, key=lambda phase: phases[phase].get("median_ms", 0)) if phases else None
    return {
        "setup": {
            "tool": f"py-spy record --rate {SAMPLE_RATE_HZ} --nonblocking (idle threads not sampled)",
            "load": f"{options.swaps} swaps at once, as in the throughput section",
        },
        "swaps_completed": report["completed"],
        "batch_s": report["batch_s"],
        "slowest_phase": {"phase": slowest, **(phases[slowest] if slowest else {})},
        "phases_median_ms": {phase: s.get("median_ms") for phase, s in phases.items()},
        "processes": processes,
    }
