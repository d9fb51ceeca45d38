"""The session's view of a chain: the one ChainService contract, whichever chain it is, so the saga
drives BASE -> NEAR and NEAR -> BASE with the same code."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap_runtime.context import outgoing_metadata
from swap_runtime.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)
T = TypeVar("T")

_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}


Fence = tuple[str, int]
"""(session id, lease epoch): sent with every chain action so a chain service refuses the actions of a
replica that lost its lease (x-fence-key / x-fence-epoch metadata)."""


class Chain(Protocol):
    name: str

    async def info(self) -> chain_pb2.GetChainInfoResponse: ...
    async def prepare_maker_lock(
        self, request: chain_pb2.PrepareMakerLockRequest
    ) -> chain_pb2.PrepareMakerLockResponse: ...
    async def check_account(self, account: str) -> chain_pb2.CheckAccountResponse: ...
    async def verify_maker_order(self, order: chain_pb2.PrepareMakerLockRequest, signature: bytes) -> None: ...
    async def create_lock(
        self, request: chain_pb2.CreateLockRequest, fence: Fence | None = None
    ) -> chain_pb2.CreateLockResponse: ...
    async def get_lock(self, lock_id: str) -> chain_pb2.Lock: ...
    async def withdraw(self, lock_id: str, secret: bytes, fence: Fence | None = None) -> chain_pb2.WithdrawResponse: ...
    async def cancel(self, lock_id: str, fence: Fence | None = None) -> chain_pb2.CancelResponse: ...
    def watch(self, cursor: str) -> AsyncIterator[chain_pb2.WatchEventsResponse]: ...


class ChainUnreachable(Unavailable):
    """The chain service itself did not answer (no connection, or no reply in time), as opposed to a service
    that answered that its chain is unavailable: another replica, with its own link, may reach it."""


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _RETRYABLE


def to_domain(exc: grpc.aio.AioRpcError, chain: str) -> DomainError:
    """A chain service's answer, kept as the same kind of error (its reason and message)."""
    code, message = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, _, reason = message.partition(": ")
        return InvalidArgument(field or "request", reason or message)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        reason = "STALE_FENCE" if error_reason(exc) == "STALE_FENCE" else "CHAIN_REJECTED"
        return FailedPrecondition(f"{chain}: {message}", reason=reason)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"{chain}: {message}", reason=error_reason(exc) or "NOT_FOUND")
    if code in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED} and not error_reason(exc):
        # A service's own refusals carry an ErrorInfo: without one, the call never reached it.
        return ChainUnreachable(f"{chain} service: {message or code.name}", reason="CHAIN_UNAVAILABLE")
    return Unavailable(f"{chain} service: {message or code.name}", reason="CHAIN_UNAVAILABLE")


def error_reason(exc: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a rich status (google.rpc.Status in the trailing metadata), or ""."""
    status = rpc_status.from_call(exc)
    for detail in status.details if status is not None else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def _fenced(metadata: list[tuple[str, str]], fence: Fence | None) -> list[tuple[str, str]]:
    if fence is None:
        return metadata
    return [*metadata, ("x-fence-key", fence[0]), ("x-fence-epoch", str(fence[1]))]


class GrpcChain:
    """A ChainService client: retries transport faults with backoff, maps statuses to domain errors."""

    def __init__(self, name: str, stub: chain_pb2_grpc.ChainServiceStub, attempts: int, timeout_s: float) -> None:
        self.name = name
        self._stub = stub
        self._attempts = attempts
        self._timeout = timeout_s

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_is_retryable),
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.2, max=3),
                reraise=True,
            ):
                with attempt:
                    return await fn()
        except grpc.aio.AioRpcError as exc:
            raise to_domain(exc, self.name) from None
        raise AssertionError("unreachable")

    def _kw(self, fence: Fence | None = None) -> dict[str, object]:
        return {"metadata": _fenced(list(outgoing_metadata()), fence), "timeout": self._timeout}

    async def info(self) -> chain_pb2.GetChainInfoResponse:
        return await self._call(lambda: self._stub.GetChainInfo(chain_pb2.GetChainInfoRequest(), **self._kw()))

    async def prepare_maker_lock(
        self, request: chain_pb2.PrepareMakerLockRequest
    ) -> chain_pb2.PrepareMakerLockResponse:
        return await self._call(lambda: self._stub.PrepareMakerLock(request, **self._kw()))

    async def check_account(self, account: str) -> chain_pb2.CheckAccountResponse:
        request = chain_pb2.CheckAccountRequest(account=account)
        return await self._call(lambda: self._stub.CheckAccount(request, **self._kw()))

    async def verify_maker_order(self, order: chain_pb2.PrepareMakerLockRequest, signature: bytes) -> None:
        request = chain_pb2.VerifyMakerOrderRequest(order=order, signature=signature)
        await self._call(lambda: self._stub.VerifyMakerOrder(request, **self._kw()))

    async def create_lock(
        self, request: chain_pb2.CreateLockRequest, fence: Fence | None = None
    ) -> chain_pb2.CreateLockResponse:
        return await self._call(lambda: self._stub.CreateLock(request, **self._kw(fence)))

    async def get_lock(self, lock_id: str) -> chain_pb2.Lock:
        reply: chain_pb2.GetLockResponse = await self._call(
            lambda: self._stub.GetLock(chain_pb2.GetLockRequest(lock_id=lock_id), **self._kw())
        )
        return reply.lock

    async def withdraw(self, lock_id: str, secret: bytes, fence: Fence | None = None) -> chain_pb2.WithdrawResponse:
        request = chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret)
        return await self._call(lambda: self._stub.Withdraw(request, **self._kw(fence)))

    async def cancel(self, lock_id: str, fence: Fence | None = None) -> chain_pb2.CancelResponse:
        request = chain_pb2.CancelRequest(lock_id=lock_id)
        return await self._call(lambda: self._stub.Cancel(request, **self._kw(fence)))

    def watch(self, cursor: str) -> AsyncIterator[chain_pb2.WatchEventsResponse]:
        """Every escrow event from `cursor` on, with head ticks; no deadline: it lasts as long as the
        stream. Transport errors surface to the caller, which reconnects from its last cursor."""
        request = chain_pb2.WatchEventsRequest(cursor=cursor, heads=True)
        stream: AsyncIterator[chain_pb2.WatchEventsResponse] = self._stub.WatchEvents(
            request, metadata=outgoing_metadata()
        )
        return stream
