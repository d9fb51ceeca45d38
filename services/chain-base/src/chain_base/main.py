"""chain-base entry point: settings -> wiring -> serve."""

from __future__ import annotations

import asyncio
import logging

from eth_account import Account
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap_runtime.journal import open_journal
from swap_runtime.liquidity import Liquidity
from swap_runtime.logs import configure_logging
from swap_runtime.server import GrpcService, build_when_available
from swap_runtime.tracing import configure_tracing

from chain_base.config import ChainBaseSettings
from chain_base.escrows import Escrows
from chain_base.model import NATIVE
from chain_base.rpc import Rpc, connect
from chain_base.servicer import ChainBaseServicer
from chain_base.tx import FeePolicy, TxSender
from chain_base.watcher import EventWatcher

log = logging.getLogger(__name__)
SERVICE_NAME = chain_pb2.DESCRIPTOR.services_by_name["ChainService"].full_name


async def build(settings: ChainBaseSettings) -> GrpcService:
    """Wires the service from settings; refuses a node on another chain than configured."""
    tls = settings.transport()
    rpc = Rpc(connect(settings.rpc_url), attempts=settings.rpc_attempts)
    await rpc.keep_alive()
    try:
        chain_id = await rpc.call("chain_id", lambda: rpc.w3.eth.chain_id)
    except BaseException:
        await rpc.close()
        raise
    if chain_id != settings.chain_id:
        await rpc.close()
        raise RuntimeError(f"RPC {settings.rpc_url} serves chain {chain_id}, expected {settings.chain_id}")
    key = settings.resolver_private_key()
    resolver = Account.from_key(key).address
    journal = open_journal(settings.redis_url, f"{settings.redis_prefix}chain-base:{chain_id}:{resolver}:sent")
    sender = TxSender(
        rpc,
        key,
        chain_id,
        FeePolicy(int(settings.priority_fee_gwei * 10**9), settings.max_fee_multiplier),
        poll_interval_s=settings.poll_interval_s,
        resend_after_s=settings.tx_resend_after_s,
        timeout_s=settings.tx_timeout_s,
        journal=journal,
    )
    escrows = Escrows(rpc, sender, settings.escrow_src, settings.escrow_dst, settings.start_block)
    watcher = EventWatcher(
        rpc,
        escrows,
        settings.confirmations,
        settings.poll_interval_s,
        settings.reorg_window,
        settings.log_chunk,
    )
    servicer = ChainBaseServicer(escrows, watcher, chain_id, settings.confirmations, settings.inclusion_bound_s)
    liquidity = Liquidity(
        "base",
        settings.tokens,
        settings.min_liquidity,
        lambda token: escrows.balance(escrows.resolver, token),
    )
    for token in liquidity.tokens:  # a wrong address would otherwise only show as failed reads
        if token != NATIVE and not await escrows.has_code(token):
            await rpc.close()
            await journal.close()
            raise RuntimeError(f"CHAIN_BASE_TOKENS / CHAIN_BASE_MIN_LIQUIDITY: no contract at {token}")

    async def rpc_answers() -> bool:
        # The probe also keeps the resolver's balance gauges current (one read per token per interval).
        await liquidity.refresh()
        return await rpc.call("chain_id", lambda: rpc.w3.eth.chain_id) == chain_id

    return GrpcService(
        name="chain-base",
        service_names=[SERVICE_NAME],
        register=lambda server: chain_pb2_grpc.add_ChainServiceServicer_to_server(servicer, server),
        host=settings.host,
        port=settings.port,
        grace_s=settings.shutdown_grace_s,
        metrics_port=settings.metrics_port,
        tls=tls,
        allowed_callers=settings.allowed_callers(),
        closers=[rpc.close, journal.close],
        checks=[rpc_answers],
    )


async def _run() -> None:
    settings = ChainBaseSettings()
    configure_logging(
        "chain-base", settings.log_level, settings.log_file, settings.log_file_max_mb, settings.log_file_backups
    )
    configure_tracing("chain-base", settings.trace_exporter)
    service = await build_when_available("chain-base", lambda: build(settings))
    await service.serve_until_signalled()


def main() -> None:
    asyncio.run(_run())


if __name__ == "__main__":
    main()
