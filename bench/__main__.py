"""`python -m bench [--smoke] [...]`: run the benchmark sections one after another, each on processes of
its own that it stops before the next starts (the machine's cores go to one comparison at a time), and
print one JSON report on stdout. Progress goes to stderr."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import chain_base, chain_near, goals, memory, quotes, swap, throughput, ws_fanout
from bench.edge import SharedStack

log = logging.getLogger("bench")

SECTIONS = (
    "chain_base",
    "chain_near",
    "swap",
    "memory_per_session",
    "gateway_vs_transcoder",
    "quote_vs_noop",
    "ws_fanout",
    "throughput",
    "profile",
)
# Sections that share one local stack with the edge, in the order they run: memory first, on a fresh session
# service; the swap load last.
EDGE_SECTIONS = SECTIONS[3:]


_LINE = 110


def to_json(value: Any, indent: int = 0) -> str:
    """JSON with every object or array that fits on one line kept on one line, the rest indented."""
    flat = json.dumps(value)
    if len(flat) + indent <= _LINE or not isinstance(value, dict | list) or not value:
        return flat
    inner = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(key)}: {to_json(item, indent + 2)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{inner}{to_json(item, indent + 2)}" for item in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _section(name: str, run: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    log.info("section %s ...", name)
    load_before = _loadavg()
    start = time.monotonic()
    ok = True
    try:
        result = run()
    except Exception as err:
        log.error("section %s failed:\n%s", name, traceback.format_exc())
        result = {"error": f"{type(err).__name__}: {err}"}
        ok = False
    elapsed = round(time.monotonic() - start, 1)
    log.info("section %s done in %.1f s", name, elapsed)
    return {**result, "elapsed_s": elapsed, "loadavg_1m": {"before": load_before, "after": _loadavg()}}, ok


@contextlib.contextmanager
def _work_dir(given: Path | None, keep: bool) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    path = Path(tempfile.mkdtemp(prefix="swap-bench-"))
    try:
        yield path
    finally:
        if keep:
            log.info("logs kept in %s", path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a quick run: 3 rounds per chain section, no swaps")
    parser.add_argument("--iterations", type=int, help="measured rounds per chain section (default 20; smoke 3)")
    parser.add_argument("--warmup", type=int, help="unmeasured rounds first (default 2; smoke 1)")
    parser.add_argument("--swaps", type=int, help="measured swaps per session variant (default 5; smoke 0)")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    parser.add_argument("--only", help="same as --sections")
    for name in SECTIONS:
        flag = name.replace("_", "-")
        parser.add_argument(f"--skip-{flag}", action="store_true", help=f"leave out the {name} section")
    parser.add_argument(
        "--throughput-swaps", type=int, help="swaps in flight in throughput and its ceiling (default 500; smoke 20)"
    )
    parser.add_argument("--ws-subscribers", type=int, help="WebSocket subscribers (default 1000; smoke 100)")
    parser.add_argument("--work-dir", type=Path, help="keep logs and chain state here (default: a temp dir)")
    parser.add_argument("--keep-work-dir", action="store_true", help="do not delete the temporary work dir")
    args = parser.parse_args(argv)
    if args.only:
        args.sections = args.only
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    skipped = {name for name in SECTIONS if getattr(args, f"skip_{name}")}
    args.sections = ",".join(name for name in args.sections.split(",") if name not in skipped)
    if args.throughput_swaps is None:
        args.throughput_swaps = 20 if args.smoke else 500
    args.ws_subscribers = args.ws_subscribers if args.ws_subscribers is not None else (100 if args.smoke else 1000)
    if args.throughput_swaps < 1 or args.ws_subscribers < 1:
        parser.error("--throughput-swaps and --ws-subscribers must be >= 1")
    args.iterations = args.iterations if args.iterations is not None else (3 if args.smoke else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 2)
    args.swaps = args.swaps if args.swaps is not None else (0 if args.smoke else 5)
    if args.iterations < 1 or args.warmup < 0 or args.swaps < 0:
        parser.error("--iterations must be >= 1, --warmup and --swaps >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("swap_devnet").setLevel(logging.WARNING)
    wanted = [name for name in SECTIONS if name in args.sections.split(",")]
    started = datetime.now(UTC)
    start = time.monotonic()
    report: dict[str, Any] = {
        "report": "swap-orchestrator benchmarks",
        "mode": "smoke" if args.smoke else "full",
        "started_at": started.isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {
            "iterations": args.iterations,
            "warmup": args.warmup,
            "swaps_per_variant": args.swaps,
            "throughput_swaps": args.throughput_swaps,
            "ws_subscribers": args.ws_subscribers,
        },
    }
    all_ok = True
    with _work_dir(args.work_dir, args.keep_work_dir) as work:
        log.info("work dir %s", work)
        edge = SharedStack(work)
        smoke = args.smoke
        quote_options = quotes.Options(
            rounds=30 if smoke else 200,
            slices=2 if smoke else 4,
            slice_s=1.0 if smoke else 2.0,
            # quote_vs_noop: three servers whose ratios are a few percent apart on a shared machine, so more
            # and shorter alternations (the same 8 s per target).
            noop_slices=2 if smoke else 8,
            noop_slice_s=1.0,
            concurrency=20,
            work_dir=work,
        )
        runs: dict[str, Callable[[], dict[str, Any]]] = {
            "chain_base": lambda: chain_base.run(chain_base.Options(args.iterations, args.warmup, work)),
            "chain_near": lambda: chain_near.run(
                chain_near.Options(args.iterations, args.warmup, work, count_rpcs=True)
            ),
            "swap": lambda: swap.run(swap.Options(args.swaps, 0 if args.smoke else 1, work)),
            "memory_per_session": lambda: memory.run(edge.get(), memory.Options(100 if smoke else 1000)),
            "gateway_vs_transcoder": lambda: quotes.run_gateway_vs_transcoder(edge.get(), quote_options),
            "quote_vs_noop": lambda: quotes.run_quote_vs_noop(edge.get(), quote_options),
            "ws_fanout": lambda: ws_fanout.run(edge.get(), ws_fanout.Options(args.ws_subscribers)),
            "throughput": lambda: throughput.run_throughput(
                edge.get(), throughput.Options(args.throughput_swaps, work)
            ),
            "profile": lambda: throughput.run_profile(edge.get(), throughput.Options(10 if smoke else 20, work)),
        }
        try:
            for name in wanted:
                if name == "swap" and args.swaps == 0:
                    report[name] = {"skipped": "no swaps requested (--swaps 0; the smoke run's default)"}
                    continue
                if name in EDGE_SECTIONS and name == next(n for n in wanted if n in EDGE_SECTIONS):
                    log.info("starting the edge stack for %s", ", ".join(n for n in wanted if n in EDGE_SECTIONS))
                report[name], ok = _section(name, runs[name])
                all_ok = all_ok and ok
        finally:
            edge.stop()
    report["elapsed_s"] = round(time.monotonic() - start, 1)
    report["ok"] = all_ok
    report["goals"] = goals.judge(report)
    log.info("%s", goals.table(report["goals"]))
    sys.stdout.write(to_json(report) + "\n")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
