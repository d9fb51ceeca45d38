"""Where a batch's CPU went: seconds of CPU per process of the stack (each with its descendants), the benchmark
process itself, and how busy the machine's cores were in all (from /proc/stat), between two snapshots.

A batch whose cores were busy nearly all the time is bound by this machine's CPU, not by the chains' own pace,
and the per-process seconds say who spent it: the chains (anvil, the NEAR devnet), the services, the client."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swap_devnet.stack import LocalStack

_TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(x) for x in task.read_text().split()]
        except OSError:
            continue
    return found


def _own_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command: state ppid ... utime (14th field of the line) and stime (15th).
    return (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its live descendants."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += _own_cpu_s(current)
        todo += _children(current)
    return total


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / _TICK, total / _TICK


def stack_pids(stack: LocalStack) -> dict[str, int]:
    pids: dict[str, int] = {}
    if stack.anvil is not None and stack.anvil.pid is not None:
        pids["anvil"] = stack.anvil.pid
    if stack.near_devnet is not None and stack.near_devnet.pid is not None:
        pids["near-devnet"] = stack.near_devnet.pid
    for name, proc in stack.services.items():
        if proc is not None and proc.pid is not None:
            pids[name] = proc.pid
    for name in ("gateway", "envoy"):
        edge: Any = getattr(stack, name, None)
        pid = getattr(edge, "pid", None)
        if isinstance(pid, int):
            pids[name] = pid
    return pids


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Snapshot:
    at: float
    processes: dict[str, float]
    bench: float
    machine: tuple[float, float]


def snapshot(pids: dict[str, int]) -> Snapshot:
    return Snapshot(time.monotonic(), {n: tree_cpu_s(p) for n, p in pids.items()}, _self_cpu_s(), _machine())


def spent(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """CPU seconds per process between two snapshots, the benchmark's own, and the cores' busy share."""
    wall = after.at - before.at
    per = {name: round(after.processes[name] - before.processes.get(name, 0.0), 2) for name in after.processes}
    busy = after.machine[0] - before.machine[0]
    total = after.machine[1] - before.machine[1]
    return {
        "wall_s": round(wall, 2),
        "cpu_s": dict(sorted(per.items(), key=lambda item: -item[1])),
        "bench_client_cpu_s": round(after.bench - before.bench, 2),
        "cores": os.cpu_count(),
        "cores_busy_share": round(busy / total, 3) if total > 0 else None,
    }
