"""`python -m swap_devnet.near serve --port 0 --out .localnet/near.json`: a local NEAR JSON-RPC node with the
swap accounts bootstrapped, running until interrupted; the JSON file gives its URL and the accounts' keys."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path

from swap_devnet.near.bootstrap import DEFAULT_SEED, NearDeployment, bootstrap, role_key
from swap_devnet.near.chain import Chain, ChainConfig
from swap_devnet.near.rpc import DevnetServer

log = logging.getLogger("swap_devnet.near")

PARENT_WATCH_INTERVAL = 0.5


async def _watch_parent(stop: asyncio.Event) -> None:
    """Stop when the process that started us is gone (we got re-parented)."""
    parent = os.getppid()
    while not stop.is_set():
        if os.getppid() != parent:
            log.info("parent process %d is gone, stopping", parent)
            stop.set()
            return
        await asyncio.sleep(PARENT_WATCH_INTERVAL)


async def _serve(args: argparse.Namespace) -> int:
    config = ChainConfig(
        chain_id=args.chain_id,
        root_account_id=args.root,
        root_key=role_key(args.seed, args.root),
        block_interval=args.block_interval,
        block_time=args.block_time,
        enforce_storage_staking=not args.no_storage_staking,
    )
    data: Path | None = args.data
    saved = data / "chain.pickle" if data is not None else None
    resumed = saved is not None and saved.exists()
    chain = Chain.restore(saved, config) if saved is not None and resumed else Chain(config)
    server = DevnetServer(chain, host=args.host, port=args.port, wait_timeout=args.wait_timeout)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_parent(stop)) if args.exit_with_parent else None
    await server.start()
    try:
        if data is not None and resumed:
            # A restart on the same data: the chain goes on from its head, the accounts are the ones it has.
            deployment = NearDeployment.read(data / "near.json")
            deployment = dataclasses.replace(deployment, rpc_url=server.rpc_url)
        else:
            deployment = await bootstrap(server.chain, server.rpc_url, seed=args.seed)
            if data is not None:
                deployment.write(data / "near.json")
        deployment.write(args.out)
        log.info(
            "NEAR devnet up at %s: token %s, htlc %s; accounts written to %s",
            server.rpc_url,
            deployment.token_id,
            deployment.htlc_id,
            args.out,
        )
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        await server.stop()
        if saved is not None:
            server.chain.save(saved)
            log.info("chain saved at height %d to %s", server.chain.head.height, saved)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swap_devnet.near", description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the devnet, bootstrap the swap accounts, serve until interrupted")
    serve.add_argument("--out", type=Path, default=Path(".localnet/near.json"), help="where to write the accounts")
    serve.add_argument(
        "--data",
        type=Path,
        help="the node's data directory: the chain is saved there when the devnet stops and goes on from it at the "
        "next start (default: none, a new chain every start)",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="RPC port (default: a free one)")
    serve.add_argument("--seed", default=DEFAULT_SEED, help="derives every account key")
    serve.add_argument("--root", default="test.near", help="root account, parent of the bootstrapped ones")
    serve.add_argument("--chain-id", default="localnet")
    serve.add_argument(
        "--block-interval", type=float, default=0.1, help="seconds between blocks when idle (default 0.1)"
    )
    serve.add_argument(
        "--block-time", type=float, default=1.0, help="chain seconds per block of sandbox_fast_forward (default 1)"
    )
    serve.add_argument(
        "--wait-timeout", type=float, default=10.0, help="seconds broadcast_tx_commit waits before TIMEOUT_ERROR"
    )
    serve.add_argument(
        "--no-storage-staking",
        action="store_true",
        help="let accounts store more than their balance stakes (nearcore fails such receipts: LackBalanceForState)",
    )
    serve.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process exits")
    serve.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    raise SystemExit(main())
