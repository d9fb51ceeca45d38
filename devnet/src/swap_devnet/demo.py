"""`make run`: start the local stack, run one BASE -> NEAR swap through the session service with its
progress on the terminal, then keep the stack up until Ctrl-C (or stop at once with --demo-only)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from eth_account import Account
from eth_account.messages import encode_typed_data
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2, session_pb2_grpc

from swap_devnet.stack import LocalStack, StackOptions

log = logging.getLogger("swap.demo")
_STATE_NAMES = session_pb2.SessionState.Name


async def demo_swap(stack: LocalStack, amount: int) -> session_pb2.Session:
    assert stack.evm is not None and stack.near is not None and stack.near_devnet is not None
    evm, near = stack.evm, stack.near
    async with grpc.aio.insecure_channel(stack.services["session"].address) as channel:
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        created = await sessions.CreateSession(
            session_pb2.CreateSessionRequest(
                src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=evm.token),
                dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=near.token.account_id),
                src_amount=str(amount),
                maker=evm.maker.address,
                receiver=near.receiver.account_id,
            )
        )
        session = created.session
        quote = session.quote
        log.info(
            "quote %s: %s TUSD on BASE -> at least %s TUSD on NEAR (auction %s..%s, fees %s + %s)",
            quote.quote_id[:8],
            amount / 1e6,
            int(quote.min_received) / 1e6,
            int(quote.auction.start_amount) / 1e6,
            int(quote.auction.end_amount) / 1e6,
            int(quote.protocol_fee) / 1e6,
            int(quote.network_fee) / 1e6,
        )
        typed = json.loads(session.maker_action.sign_order.typed_data_json)
        signature = Account.sign_message(encode_typed_data(full_message=typed), evm.maker.private_key).signature
        log.info("session %s: the maker signed the EIP-712 order", session.session_id)
        await sessions.ExecuteSession(
            session_pb2.ExecuteSessionRequest(session_id=session.session_id, signature=bytes(signature))
        )
        last: session_pb2.Session = session
        async for update in sessions.WatchSession(session_pb2.WatchSessionRequest(session_id=session.session_id)):
            for step in update.session.steps[len(last.steps) :]:
                tx = f" tx {step.tx_hash}" if step.tx_hash else ""
                log.info("  %-22s %s%s", _STATE_NAMES(step.state).removeprefix("SESSION_STATE_").lower(), step.note, tx)
            last = update.session
        receiver = stack.near_devnet.token_balance(near.receiver.account_id)
        log.info(
            "final state %s; receiver %s holds %s TUSD on NEAR",
            _STATE_NAMES(last.state),
            near.receiver.account_id,
            receiver / 1e6,
        )
        return last


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", type=Path, default=Path(".localnet"))
    parser.add_argument("--amount", type=int, default=25_000_000, help="TUSD base units (6 decimals)")
    parser.add_argument("--demo-only", action="store_true", help="stop after the demo swap")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("swap_devnet").setLevel(logging.WARNING)
    log.info("starting the local stack in %s ...", args.work_dir)
    with LocalStack(StackOptions(work_dir=args.work_dir)) as stack:
        for name, value in stack.describe().items():
            log.info("  %-10s %s", name, value)
        final = asyncio.run(demo_swap(stack, args.amount))
        ok = final.state == session_pb2.SESSION_STATE_COMPLETED
        if not args.demo_only:
            log.info("the stack is up (addresses in %s/stack.json); Ctrl-C stops it", args.work_dir)
            asyncio.run(_wait_for_signal())
        log.info("stopping ...")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
