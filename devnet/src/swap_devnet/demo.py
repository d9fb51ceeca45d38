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
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from swap_devnet.stack import LocalStack, StackOptions

log = logging.getLogger("swap.demo")


def demo_swap(stack: LocalStack, amount: str = "25") -> int:
    """One BASE -> NEAR swap through the edge with the devnet maker key, the secret held by swapctl; returns
    swapctl's exit code (0 only when the swap completed)."""
    assert stack.evm is not None and stack.near is not None and stack.envoy is not None
    swapctl = Path(sys.executable).with_name("swapctl")
    command = [
        str(swapctl),
        "--url", stack.envoy.url,
        "--api-key", stack.options.api_key,
        "swap", f"base:{stack.evm.token}", f"near:{stack.near.token.account_id}", amount,
        "--decimals", "6",
        "--maker", stack.evm.maker.address,
        "--receiver", stack.near.receiver.account_id,
        "--chains", str(stack.chains_file),
        "--dev",
    ]  # fmt: skip
    log.info(
        "$ swapctl swap base:TUSD near:TUSD %s --chains %s --dev   (through Envoy at %s)",
        amount,
        stack.chains_file,
        stack.envoy.url,
    )
    return subprocess.run(command, check=False).returncode


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _serve_until_stopped() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_wait_for_signal())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", type=Path, default=Path(".localnet"))
    parser.add_argument("--amount", default="25", help="TUSD to swap (token units)")
    parser.add_argument("--demo-only", action="store_true", help="stop after the demo swap")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("swap_devnet").setLevel(logging.WARNING)
    # SIGTERM (make down) takes the same way out as Ctrl-C, so everything started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    log.info("starting the local stack in %s ...", args.work_dir)
    with LocalStack(StackOptions(work_dir=args.work_dir, edge=True)) as stack:
        for name, value in stack.describe().items():
            log.info("  %-10s %s", name, value)
        code = demo_swap(stack, args.amount)
        assert stack.envoy is not None
        log.info("web page: %s/  (API key: %s)", stack.envoy.url, stack.options.api_key)
        if not args.demo_only:
            log.info("the stack is up (addresses in %s/stack.json); Ctrl-C stops it", args.work_dir)
            _serve_until_stopped()
        log.info("stopping ...")
    return code


if __name__ == "__main__":
    sys.exit(main())
