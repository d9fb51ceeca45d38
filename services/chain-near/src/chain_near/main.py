"""chain-near entry point: settings -> wiring -> serve."""

from __future__ import annotations

import asyncio
import logging

from loguru import logger as loguru_logger
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap_runtime.journal import open_journal
from swap_runtime.liquidity import Liquidity
from swap_runtime.logs import configure_logging
from swap_runtime.server import GrpcService, build_when_available
from swap_runtime.tracing import configure_tracing

from chain_near.config import ChainNearSettings
from chain_near.htlc import TGAS, Gas, Htlc
from chain_near.model import NATIVE
from chain_near.rpc import Rpc
from chain_near.servicer import ChainNearServicer
from chain_near.tx import TxSender, derive_seeds
from chain_near.watcher import EventWatcher

log = logging.getLogger(__name__)
SERVICE_NAME = chain_pb2.DESCRIPTOR.services_by_name["ChainService"].full_name


async def build(settings: ChainNearSettings) -> GrpcService:
    """Wires the service from settings; refuses a node of another network than configured, and an HTLC
    account without the contract."""
    tls = settings.transport()
    rpc = Rpc(settings.rpc_url, attempts=settings.rpc_attempts, timeout_s=settings.rpc_timeout_s)
    await rpc.start()
    journal = open_journal(settings.redis_url, f"{settings.redis_prefix}chain-near:{settings.resolver_account}:sent")
    try:
        status = await rpc.status()
        network_id = str(status["chain_id"])
        if settings.network_id and network_id != settings.network_id:
            raise RuntimeError(f"RPC {settings.rpc_url} serves {network_id}, expected {settings.network_id}")
        sender = TxSender(
            rpc,
            settings.resolver_account,
            derive_seeds(settings.resolver_secret_key(), settings.signer_keys),
            tx_timeout_s=settings.tx_timeout_s,
            poll_interval_s=settings.poll_interval_s,
            journal=journal,
        )
        await sender.ensure_keys()
        htlc = Htlc(
            rpc,
            sender,
            settings.htlc_account,
            Gas(call=settings.call_gas_tgas * TGAS, ft_call=settings.ft_call_gas_tgas * TGAS),
            start_height=settings.start_block,
            poll_interval_s=settings.poll_interval_s,
        )
        await htlc.storage_fee()  # fails here, not on the first request, when the HTLC is not there
        liquidity = Liquidity(
            "near", settings.tokens, settings.min_liquidity, lambda token: htlc.balance(htlc.resolver, token)
        )
        for token in liquidity.tokens:  # a wrong account would otherwise only show as failed reads
            if token != NATIVE and not await htlc.is_token(token):
                raise RuntimeError(f"CHAIN_NEAR_TOKENS / CHAIN_NEAR_MIN_LIQUIDITY: {token} is not a NEP-141 token")
        await htlc.feed.start()  # follows the HTLC from here on
    except BaseException:
        await rpc.close()
        await journal.close()
        raise
    watcher = EventWatcher(htlc, htlc.feed, settings.event_batch)
    servicer = ChainNearServicer(htlc, watcher, network_id, settings.inclusion_bound_s)
    log.info(
        "near chain ready",
        extra={"network": network_id, "htlc": settings.htlc_account, "signer_keys": sender.key_count},
    )

    async def rpc_answers() -> bool:
        # The probe also keeps the resolver's balance gauges current (one view per token per interval); the
        # native read is its liveness check of the RPC.
        await liquidity.refresh()
        return True

    return GrpcService(
        name="chain-near",
        service_names=[SERVICE_NAME],
        register=lambda server: chain_pb2_grpc.add_ChainServiceServicer_to_server(servicer, server),
        host=settings.host,
        port=settings.port,
        grace_s=settings.shutdown_grace_s,
        metrics_port=settings.metrics_port,
        tls=tls,
        allowed_callers=settings.allowed_callers(),
        closers=[htlc.feed.close, rpc.close, journal.close],
        checks=[rpc_answers],
    )


async def _run() -> None:
    settings = ChainNearSettings()
    configure_logging(
        "chain-near", settings.log_level, settings.log_file, settings.log_file_max_mb, settings.log_file_backups
    )
    configure_tracing("chain-near", settings.trace_exporter)
    # py-near reports through loguru on stderr; our JSON log already carries what matters.
    loguru_logger.disable("py_near")
    service = await build_when_available("chain-near", lambda: build(settings))
    await service.serve_until_signalled()


def main() -> None:
    asyncio.run(_run())


if __name__ == "__main__":
    main()
