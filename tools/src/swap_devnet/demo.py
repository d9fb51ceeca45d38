"""`make run`: start the whole local stack (chains, Redis, the five services, Envoy), run one
BASE -> NEAR swap through Envoy and the gateway with `swapctl` showing each step live, print where the
web page is, and keep everything up until Ctrl-C (or stop at once with --demo-only).

The demo swap runs in secret mode "maker": swapctl draws the secret, checks the NEAR lock on the NEAR
devnet itself and only then releases it; the orchestrator never holds the secret before that."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from swap_devnet.stack import LocalStack, StackOptions

log = logging.getLogger("swap.demo")
_WATCH_S = 1.0  # how often a running stack's processes are checked


def demo_swap(stack: LocalStack, amount: str = "25") -> int:
    """One BASE -> NEAR swap through the edge: swapctl signs the order with the devnet maker's key and keeps the
    secret; returns swapctl's exit code (0 only when the swap completed)."""
    assert stack.envoy is not None
    # Exactly what a user types in the checkout: the gateway, key, chains file and the devnet's accounts come
    # from the stack's swapctl.json (swapctl finds it as .localnet/swapctl.json), the token and its decimals
    # from the gateway's token list.
    args = ["swap", "base:TUSD", "near:TUSD", amount, "--sign"]
    config = stack.options.work_dir / "swapctl.json"
    log.info("$ swapctl %s", " ".join(args))
    log.info("  (gateway, API key, chains, maker keys, maker and receiver from %s)", config)
    swapctl = Path(sys.executable).with_name("swapctl")
    # Only the stack's config: no SWAPCTL_URL, _API_KEY, _CHAINS, _KEYS, _MAKER or _RECEIVER of the shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWAPCTL_") or k == "SWAPCTL_STATE_DIR"}
    env["SWAPCTL_CONFIG"] = str(config)
    return subprocess.run([str(swapctl), *args], check=False, env=env).returncode


async def _wait_for_signal_or_crash(stack: LocalStack) -> list[str]:
    """Until Ctrl-C / SIGTERM (returns []) or until a process of the stack exits (returns their names)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        dead = stack.exited()
        if dead:
            return dead
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _WATCH_S)
    return []


def _serve_until_stopped(stack: LocalStack) -> list[str]:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_wait_for_signal_or_crash(stack))
    return []


def pid_file(work_dir: Path) -> Path:
    """Where `make run` notes its pid: `make down` stops this checkout's stack, and no other."""
    return work_dir / "run.pid"


def _is_demo(pid: int) -> bool:
    try:
        return b"swap_devnet.demo" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def stop_running(work_dir: Path, timeout_s: float = 60.0) -> int:
    """`make down`: SIGTERM to this checkout's `make run` (its pid file), then wait until it is gone."""
    path = pid_file(work_dir)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        log.info("no stack of this checkout is running (%s)", path)
        return 0
    if not _is_demo(pid):
        # Gone, or the pid was reused by something else since: never signal a stranger.
        path.unlink(missing_ok=True)
        log.info("the stack of %s had already stopped", path)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _is_demo(pid):
            log.info("stopped")
            return 0
        time.sleep(0.2)
    log.error("process %d did not stop within %g s", pid, timeout_s)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", type=Path, default=Path(".localnet"))
    parser.add_argument("--amount", default="25", help="TUSD to swap (token units)")
    parser.add_argument("--demo-only", action="store_true", help="stop after the demo swap")
    parser.add_argument("--stop", action="store_true", help="stop this checkout's running stack (make down)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("swap_devnet").setLevel(logging.WARNING)
    if args.stop:
        return stop_running(args.work_dir)
    # SIGTERM (make down) takes the same way out as Ctrl-C, so everything started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    log.info("starting the local stack in %s ...", args.work_dir)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    pid_file(args.work_dir).write_text(f"{os.getpid()}\n")
    try:
        return _run(args)
    finally:
        pid_file(args.work_dir).unlink(missing_ok=True)


def _run(args: argparse.Namespace) -> int:
    with LocalStack(StackOptions(work_dir=args.work_dir, edge=True)) as stack:
        for name, value in stack.describe().items():
            log.info("  %-10s %s", name, value)
        code = demo_swap(stack, args.amount)
        assert stack.envoy is not None
        log.info("web page: %s/  (API key: %s)", stack.envoy.url, stack.options.api_key)
        if not args.demo_only:
            log.info("the stack is up (addresses in %s/stack.json); Ctrl-C stops it", args.work_dir)
            dead = _serve_until_stopped(stack)
            if dead:
                # A crashed child is not a running stack: say which and stop, non-zero.
                log.error("%s exited; stopping the stack (logs in %s)", ", ".join(dead), args.work_dir)
                code = code or 1
        log.info("stopping ...")
    return code


if __name__ == "__main__":
    sys.exit(main())
