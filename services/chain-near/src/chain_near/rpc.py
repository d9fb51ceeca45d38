"""The NEAR JSON-RPC connection: py-near's JsonProvider with retries on transport faults (tenacity).

py-near's provider reports a node it could not reach as an empty response rather than raising the
transport error, so both shapes count as transient here. Answers of the node (an unknown account, a
panicking view call, an invalid transaction) are not retried: they come back as the typed errors below.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from py_near.exceptions.exceptions import RpcEmptyResponse, RpcNotAvailableError
from py_near.exceptions.provider import JsonProviderError, UnknownAccount, UnknownBlockError
from py_near.providers import JsonProvider
from swap_runtime.errors import Unavailable
from swap_runtime.metrics import CHAIN_RPC_ERRORS, CHAIN_RPC_LATENCY
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)
T = TypeVar("T")

Finality = str  # "optimistic" | "near-final" | "final"

# Error causes with which a node says "not now" rather than "no". RPC_ERROR is py-near's name for an answer
# that was not HTTP 200: a 5xx, or the 408 of a node that stopped waiting for a transaction to execute
# (re-submitting the same transaction is safe, see tx.py).
_TRANSIENT_CAUSES = {"RPC_ERROR", "NO_SYNCED_BLOCKS", "NOT_SYNCED_YET", "UNAVAILABLE_SHARD"}
_TRANSPORT = (
    aiohttp.ClientError,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
    OSError,
    RpcEmptyResponse,
    RpcNotAvailableError,
)


def error_cause(exc: BaseException) -> str:
    if isinstance(exc, JsonProviderError):
        error_json = getattr(exc, "error_json", None) or {}
        cause = error_json.get("cause") or {}
        return str(cause.get("name", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSPORT) or error_cause(exc) in _TRANSIENT_CAUSES


class ViewError(Exception):
    """A view call the contract refused (it panicked, or the method does not exist)."""

    def __init__(self, contract: str, method: str, message: str) -> None:
        super().__init__(f"{contract}.{method}: {message}")
        self.contract = contract
        self.method = method
        self.message = message


def _view_error_text(exc: JsonProviderError) -> str:
    error_json = getattr(exc, "error_json", None) or {}
    cause = error_json.get("cause") or {}
    info = cause.get("info") or {}
    for candidate in (
        info.get("vm_error"),
        info.get("error_message"),
        error_json.get("data"),
        error_json.get("message"),
    ):
        if candidate:
            return candidate if isinstance(candidate, str) else json.dumps(candidate)
    return cause.get("name") or "view call failed"


class Rpc:
    """Node calls with exponential backoff on transport faults; gives up as Unavailable."""

    def __init__(self, rpc_url: str, attempts: int, timeout_s: float = 30.0) -> None:
        self.url = rpc_url
        self.provider = JsonProvider(rpc_url, allow_broadcast=False, timeout=timeout_s)
        self._attempts = attempts

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        with CHAIN_RPC_LATENCY.labels("near", what).time():
            return await self._call(what, fn)

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient),
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.2, max=5),
                reraise=True,
            ):
                with attempt:
                    return await fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("rpc unavailable", extra={"call": what, "error": type(exc).__name__})
            CHAIN_RPC_ERRORS.labels("near", what).inc()
            raise Unavailable(f"NEAR RPC unavailable during {what}", reason="CHAIN_RPC_UNAVAILABLE") from exc
        raise AssertionError("unreachable")

    async def request(self, what: str, method: str, params: Any) -> Any:
        return await self.call(what, lambda: self.provider.json_rpc(method, params))

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("status", "status", {"finality": "final"})
        return result

    async def block(self, *, finality: Finality | None = None, block_id: int | str | None = None) -> dict[str, Any]:
        """A block header: by finality, height or hash. UnknownBlockError when there is no such block."""
        params: dict[str, Any] = {"block_id": block_id} if block_id is not None else {"finality": finality or "final"}
        result: dict[str, Any] = await self.request("block", "block", params)
        header: dict[str, Any] = result["header"]
        return header

    async def account(self, account_id: str, finality: Finality = "optimistic") -> dict[str, Any] | None:
        params = {"request_type": "view_account", "account_id": account_id, "finality": finality}
        try:
            result: dict[str, Any] = await self.request("view_account", "query", params)
        except UnknownAccount:
            return None
        return result

    async def access_keys(self, account_id: str) -> list[dict[str, Any]]:
        params = {"request_type": "view_access_key_list", "account_id": account_id, "finality": "optimistic"}
        result: dict[str, Any] = await self.request("view_access_key_list", "query", params)
        keys: list[dict[str, Any]] = result.get("keys", [])
        return keys

    async def access_key_nonce(self, account_id: str, public_key: str) -> int:
        params = {
            "request_type": "view_access_key",
            "account_id": account_id,
            "public_key": public_key,
            "finality": "optimistic",
        }
        result: dict[str, Any] = await self.request("view_access_key", "query", params)
        if "error" in result:
            raise ViewError(account_id, "view_access_key", str(result["error"]))
        return int(result["nonce"])

    async def view(
        self,
        contract: str,
        method: str,
        args: dict[str, Any],
        finality: Finality = "optimistic",
        block_id: int | str | None = None,
    ) -> tuple[Any, int]:
        """Calls a view method at `finality`, or at block `block_id` when given; returns (its JSON result, the
        height of the block it read)."""
        params: dict[str, Any] = {
            "request_type": "call_function",
            "account_id": contract,
            "method_name": method,
            "args_base64": base64.b64encode(json.dumps(args).encode()).decode(),
        }
        if block_id is None:
            params["finality"] = finality
        else:
            params["block_id"] = block_id
        try:
            result: dict[str, Any] = await self.request(method, "query", params)
        except JsonProviderError as exc:
            if is_transient(exc):
                raise
            raise ViewError(contract, method, _view_error_text(exc)) from None
        if "error" in result:
            raise ViewError(contract, method, str(result["error"]))
        raw = bytes(result.get("result") or b"")
        value = json.loads(raw) if raw else None
        return value, int(result.get("block_height", 0))

    async def data_changes(self, account_id: str, block_id: int | str) -> tuple[str, list[dict[str, Any]]]:
        """The contract storage changes of `account_id` in one block (EXPERIMENTAL_changes), in the node's
        order: by key, then in the order they happened. UnknownBlockError when there is no such block."""
        params = {
            "changes_type": "data_changes",
            "account_ids": [account_id],
            "key_prefix_base64": "",
            "block_id": block_id,
        }
        result: dict[str, Any] = await self.request("changes", "EXPERIMENTAL_changes", params)
        changes: list[dict[str, Any]] = result.get("changes", [])
        return str(result["block_hash"]), changes

    async def receipt(self, receipt_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("receipt", "EXPERIMENTAL_receipt", {"receipt_id": receipt_id})
        return result

    async def send_tx(self, signed_tx: str) -> dict[str, Any]:
        """broadcast_tx_commit. Re-sending the same signed bytes after a transport fault is safe: the
        node either executes it once or answers with the outcome of the copy it already has."""
        result: dict[str, Any] = await self.request("broadcast_tx_commit", "broadcast_tx_commit", [signed_tx])
        return result

    async def tx_status(self, tx_hash: str, sender: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.request("tx", "tx", [tx_hash, sender])
        except JsonProviderError as exc:
            if error_cause(exc) in ("UNKNOWN_TRANSACTION", "TIMEOUT_ERROR"):
                return None
            raise
        return result

    async def start(self) -> None:
        """Opens the HTTP session (in the running event loop)."""
        await self.provider.startup()

    async def close(self) -> None:
        await self.provider.shutdown()


__all__ = ["Rpc", "UnknownBlockError", "ViewError", "error_cause", "is_transient"]
