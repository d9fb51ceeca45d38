"""The JSON-RPC front of the devnet, speaking nearcore's protocol: its methods, parameter forms, result
shapes and error envelopes (`{"name": "HANDLER_ERROR", "cause": {"name": ..., "info": ...}, "code",
"message", "data"}`), down to the legacy quirks clients depend on, such as failed view calls answering
with a result that carries an `error` string.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from aiohttp import web

from swap_devnet.near.chain import (
    WAIT_LEVELS,
    Block,
    Chain,
    InvalidTransaction,
    TxRecord,
    UnknownBlock,
    WaitUntil,
)
from swap_devnet.near.codec import DecodeError, PublicKey, decode_signed_transaction
from swap_devnet.near.ids import is_valid_account_id
from swap_devnet.near.keys import b58decode, decode_public_key
from swap_devnet.near.runtime import FunctionCallFailure, view_call
from swap_devnet.near.state import Column, StateChange, select_changes, trie_order
from swap_devnet.near.views import (
    access_key_view,
    account_view,
    base64_text,
    block_view,
    change_kind_view,
    chunk_view,
    outcome_view,
    pending_view,
    protocol_config_view,
    state_change_view,
    status_view,
)

log = logging.getLogger(__name__)

Params = Any
Handler = Callable[[Params], Awaitable[Any]]


class RpcError(Exception):
    def __init__(self, body: dict[str, Any], http_status: int = 200) -> None:
        super().__init__(body.get("data"))
        self.body = body
        self.http_status = http_status


def handler_error(cause: str, info: Any, data: Any, http_status: int = 200) -> RpcError:
    return RpcError(
        {
            "name": "HANDLER_ERROR",
            "cause": {"name": cause, "info": info},
            "code": -32000,
            "message": "Server error",
            "data": data,
        },
        http_status,
    )


def parse_error(message: str) -> RpcError:
    return RpcError(
        {
            "name": "REQUEST_VALIDATION_ERROR",
            "cause": {"name": "PARSE_ERROR", "info": {"error_message": message}},
            "code": -32700,
            "message": "Parse error",
            "data": message,
        },
        400,
    )


def method_not_found(method: str) -> RpcError:
    return RpcError(
        {
            "name": "REQUEST_VALIDATION_ERROR",
            "cause": {"name": "METHOD_NOT_FOUND", "info": {"method_name": method}},
            "code": -32601,
            "message": "Method not found",
            "data": method,
        },
        400,
    )


def internal_error(message: str) -> RpcError:
    return RpcError(
        {
            "name": "INTERNAL_ERROR",
            "cause": {"name": "INTERNAL_ERROR", "info": {"error_message": message}},
            "code": -32000,
            "message": "Server error",
            "data": message,
        },
        500,
    )


def invalid_transaction(error: Any) -> RpcError:
    # nearcore serializes no `info` for this cause; the InvalidTxError travels in `data`, where py-near
    # (and near-api-js) look for it.
    return handler_error("INVALID_TRANSACTION", {}, {"TxExecutionError": {"InvalidTxError": error}})


def _object(params: Params, method: str) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise parse_error(f"{method} expects an object of parameters")
    return params


def _string(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str):
        raise parse_error(f"missing field `{name}`")
    return value


def _block_id(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise parse_error(f"invalid block id {value!r}")
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _block_id_text(block_id: int | str) -> str:
    return f"Height({block_id})" if isinstance(block_id, int) else f"Hash({block_id})"


def _account_id(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_account_id(value):
        raise parse_error(f"invalid account id {value!r}")
    return value


def _list(params: dict[str, Any], name: str) -> list[Any]:
    value = params.get(name)
    if not isinstance(value, list):
        raise parse_error(f"missing field `{name}`" if value is None else f"`{name}` must be a list")
    return value


# nearcore's `changes_type`s by the column of records each selects (single_access_key_changes: one key).
CHANGES_COLUMNS: dict[str, Column] = {
    "account_changes": "account",
    "single_access_key_changes": "access_key",
    "all_access_key_changes": "access_key",
    "contract_code_changes": "contract_code",
    "data_changes": "data",
}


class RpcHandler:
    """Dispatches JSON-RPC requests to the chain."""

    def __init__(self, chain: Chain, *, rpc_addr: str = "", wait_timeout: float = 10.0) -> None:
        self.chain = chain
        self.rpc_addr = rpc_addr
        self.wait_timeout = wait_timeout
        self.methods: dict[str, Handler] = {
            "status": self.status,
            "health": self.health,
            "block": self.block,
            "chunk": self.chunk,
            "gas_price": self.gas_price,
            "validators": self.validators,
            "query": self.query,
            "broadcast_tx_async": self.broadcast_tx_async,
            "broadcast_tx_commit": self.broadcast_tx_commit,
            "send_tx": self.send_tx,
            "tx": self.tx,
            "EXPERIMENTAL_tx_status": self.experimental_tx_status,
            "EXPERIMENTAL_receipt": self.experimental_receipt,
            "EXPERIMENTAL_protocol_config": self.experimental_protocol_config,
            "EXPERIMENTAL_changes": self.experimental_changes,
            "EXPERIMENTAL_changes_in_block": self.experimental_changes_in_block,
            # nearcore's stable names for the same two methods
            "changes": self.experimental_changes,
            "block_effects": self.experimental_changes_in_block,
            "sandbox_fast_forward": self.sandbox_fast_forward,
            "devnet_create_account": self.devnet_create_account,
            "devnet_stall_blocks": self.devnet_stall_blocks,
        }

    async def dispatch(self, request: Any) -> tuple[dict[str, Any], int]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            error = parse_error("expected a JSON-RPC request object")
            return {"jsonrpc": "2.0", "error": error.body, "id": None}, error.http_status
        request_id = request.get("id")
        method = request["method"]
        handler = self.methods.get(method)
        try:
            if handler is None:
                raise method_not_found(method)
            result = await handler(request.get("params"))
        except RpcError as error:
            return {"jsonrpc": "2.0", "error": error.body, "id": request_id}, error.http_status
        except Exception as exc:
            log.exception("%s failed", method)
            failure = internal_error(f"{type(exc).__name__}: {exc}")
            return {"jsonrpc": "2.0", "error": failure.body, "id": request_id}, failure.http_status
        return {"jsonrpc": "2.0", "result": result, "id": request_id}, 200

    # Blocks -------------------------------------------------------------------------------------------------

    def _reference(self, params: dict[str, Any]) -> Block:
        """The block a request refers to: `finality`, `block_id` or `sync_checkpoint`."""
        if "block_id" in params and params["block_id"] is not None:
            block_id = _block_id(params["block_id"])
            try:
                return self.chain.block_by_id(block_id)
            except UnknownBlock:
                raise handler_error(
                    "UNKNOWN_BLOCK",
                    {"block_reference": {"block_id": block_id}},
                    "Block either has never been observed on the node or has been garbage collected: "
                    f"BlockId({_block_id_text(block_id)})",
                ) from None
        if "finality" in params:
            try:
                return self.chain.block_by_finality(str(params["finality"]))
            except ValueError as exc:
                raise parse_error(str(exc)) from None
        checkpoint = params.get("sync_checkpoint")
        if checkpoint in ("genesis", "earliest_available"):
            return self.chain.genesis
        raise parse_error("one of `finality`, `block_id` or `sync_checkpoint` is required")

    async def status(self, params: Params) -> Any:
        return status_view(self.chain, self.rpc_addr)

    async def health(self, params: Params) -> Any:
        return None

    def _block_param(self, params: Params) -> Block:
        if isinstance(params, list):
            if len(params) != 1:
                raise parse_error("expected [block_id]")
            params = {"block_id": params[0]}
        params = _object(params, "block")
        try:
            return self._reference(params)
        except RpcError as error:
            if error.body.get("cause", {}).get("name") != "UNKNOWN_BLOCK":
                raise
            block_id = params["block_id"]
            raise handler_error(
                "UNKNOWN_BLOCK",
                {"error_message": f"DB Not Found Error: BLOCK: {block_id}"},
                f"DB Not Found Error: BLOCK: {block_id} \n Cause: Unknown",
            ) from None

    async def experimental_protocol_config(self, params: Params) -> Any:
        return protocol_config_view(self.chain, self._reference(_object(params, "EXPERIMENTAL_protocol_config")))

    async def block(self, params: Params) -> Any:
        return block_view(self.chain, self._block_param(params))

    async def chunk(self, params: Params) -> Any:
        if isinstance(params, list):
            if len(params) != 1:
                raise parse_error("expected [chunk_id]")
            params = {"chunk_id": params[0]}
        params = _object(params, "chunk")
        if "chunk_id" in params:
            block = self.chain.block_by_chunk(str(params["chunk_id"]))
            if block is None:
                raise handler_error(
                    "UNKNOWN_CHUNK",
                    {"chunk_hash": params["chunk_id"]},
                    f"Chunk Missing (unavailable on the node): ChunkHash({params['chunk_id']})",
                )
            return chunk_view(self.chain, block)
        if params.get("shard_id", 0) != 0:
            raise handler_error(
                "INVALID_SHARD_ID", {"shard_id": params["shard_id"]}, f"Shard id {params['shard_id']} does not exist"
            )
        return chunk_view(self.chain, self._block_param({"block_id": params.get("block_id")}))

    async def gas_price(self, params: Params) -> Any:
        block_id: Any = None
        if isinstance(params, list):
            block_id = params[0] if params else None
        elif isinstance(params, dict):
            block_id = params.get("block_id")
        if block_id is not None:
            self._block_param({"block_id": block_id})
        return {"gas_price": str(self.chain.config.gas_price)}

    async def validators(self, params: Params) -> Any:
        chain = self.chain
        return {
            "current_validators": [
                {
                    "account_id": chain.config.root_account_id,
                    "public_key": chain.config.root_key.public_key_text,
                    "is_slashed": False,
                    "stake": "0",
                    "shards": [0],
                    "num_produced_blocks": len(chain.blocks),
                    "num_expected_blocks": len(chain.blocks),
                    "num_produced_chunks": len(chain.blocks),
                    "num_expected_chunks": len(chain.blocks),
                }
            ],
            "next_validators": [],
            "current_fishermen": [],
            "next_fishermen": [],
            "current_proposals": [],
            "prev_epoch_kickout": [],
            "epoch_start_height": chain.genesis.height,
            "epoch_height": 1,
        }

    # Queries ------------------------------------------------------------------------------------------------

    async def query(self, params: Params) -> Any:
        params = _object(params, "query")
        request_type = _string(params, "request_type")
        block = self._reference(params)
        account_id = _string(params, "account_id")
        if not is_valid_account_id(account_id):
            raise handler_error(
                "INVALID_ACCOUNT",
                {"requested_account_id": account_id, "block_height": block.height, "block_hash": block.hash},
                f"Account ID {account_id} is invalid",
            )
        state = self.chain.state_at(block)
        where = {"block_height": block.height, "block_hash": block.hash}
        account = state.account(account_id)

        def unknown_account() -> RpcError:
            return handler_error(
                "UNKNOWN_ACCOUNT",
                {"requested_account_id": account_id, **where},
                f"account {account_id} does not exist while viewing",
            )

        match request_type:
            case "view_account":
                if account is None:
                    raise unknown_account()
                return account_view(account, block)
            case "view_code":
                if account is None:
                    raise unknown_account()
                if account.code is None:
                    raise handler_error(
                        "NO_CONTRACT_CODE",
                        {"contract_account_id": account_id, **where},
                        f"Contract code for contract ID #{account_id} has never been observed on the node",
                    )
                view = account_view(account, block)
                return {"code_base64": base64_text(account.code), "hash": view["code_hash"], **where}
            case "view_state":
                if account is None:
                    raise unknown_account()
                prefix = self._base64_param(params, "prefix_base64")
                values = [
                    {"key": base64_text(key), "value": base64_text(value)}
                    for key, value in state.data_items(account_id, prefix)
                ]
                return {"values": values, **where}
            case "view_access_key":
                public_key = self._public_key_param(params)
                record = state.access_key(account_id, public_key)
                if record is None:
                    return {
                        "error": f"access key {public_key.text} does not exist while viewing",
                        "logs": [],
                        **where,
                    }
                return {**access_key_view(record), **where}
            case "view_access_key_list":
                if account is None:
                    raise unknown_account()
                keys = [
                    {"public_key": key.text, "access_key": access_key_view(record)}
                    for key, record in state.access_keys(account_id)
                ]
                return {"keys": keys, **where}
            case "call_function":
                if account is None:
                    raise unknown_account()
                method_name = _string(params, "method_name")
                args = self._base64_param(params, "args_base64")
                try:
                    result, logs = view_call(state, block.context, account_id, method_name, args)
                except FunctionCallFailure as failure:
                    return {"error": f"wasm execution failed with error: {failure.debug}", "logs": [], **where}
                return {"result": list(result), "logs": logs, **where}
        raise parse_error(f"unknown request_type {request_type!r}")

    @staticmethod
    def _base64_param(params: dict[str, Any], name: str) -> bytes:
        value = params.get(name, "")
        if not isinstance(value, str):
            raise parse_error(f"`{name}` must be a base64 string")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise parse_error(f"`{name}` is not valid base64: {exc}") from None

    @staticmethod
    def _public_key_param(params: dict[str, Any]) -> PublicKey:
        text = _string(params, "public_key")
        try:
            return PublicKey.ed25519(decode_public_key(text))
        except ValueError as exc:
            raise parse_error(f"invalid public key {text!r}: {exc}") from None

    # Transactions ---------------------------------------------------------------------------------------------

    def _submit(self, encoded: Any) -> TxRecord:
        if not isinstance(encoded, str):
            raise parse_error("expected a base64 encoded signed transaction")
        try:
            raw = base64.b64decode(encoded, validate=True)
            return self.chain.submit(raw)
        except (binascii.Error, DecodeError) as exc:
            raise parse_error(f"Failed to decode transaction: {exc}") from None
        except InvalidTransaction as exc:
            raise invalid_transaction(exc.error) from None

    @staticmethod
    def _wait_until(params: dict[str, Any]) -> WaitUntil:
        value = params.get("wait_until", "EXECUTED_OPTIMISTIC")
        if value not in WAIT_LEVELS:
            raise parse_error(f"unknown wait_until {value!r}")
        return cast(WaitUntil, value)

    async def _respond(self, record: TxRecord, wait_until: WaitUntil, *, with_receipts: bool = False) -> Any:
        reached = await self.chain.wait(record, wait_until, self.wait_timeout)
        if record.rejection is not None:
            raise invalid_transaction(record.rejection)
        if not reached:
            status = self.chain.achieved(record)
            info: dict[str, Any] = (
                {"cause": "NOT_OBSERVED"}
                if record.included_height is None
                else {"cause": "PENDING", "status": pending_view(status)}
            )
            raise handler_error("TIMEOUT_ERROR", info, "Timeout", http_status=408)
        if record.executed:
            return outcome_view(self.chain, record, with_receipts=with_receipts)
        return pending_view(self.chain.achieved(record))

    async def broadcast_tx_async(self, params: Params) -> Any:
        encoded = (
            params[0]
            if isinstance(params, list) and params
            else _object(params, "broadcast_tx_async").get("signed_tx_base64")
        )
        return self._submit(encoded).hash

    async def broadcast_tx_commit(self, params: Params) -> Any:
        encoded = (
            params[0]
            if isinstance(params, list) and params
            else _object(params, "broadcast_tx_commit").get("signed_tx_base64")
        )
        return await self._respond(self._submit(encoded), "EXECUTED_OPTIMISTIC")

    async def send_tx(self, params: Params) -> Any:
        if isinstance(params, list):
            params = {"signed_tx_base64": params[0] if params else None}
        params = _object(params, "send_tx")
        wait_until = self._wait_until(params)
        record = self._submit(params.get("signed_tx_base64"))
        return await self._respond(record, wait_until)

    def _lookup(self, params: Params) -> tuple[TxRecord, WaitUntil]:
        if isinstance(params, list):
            if len(params) == 2:
                params = {"tx_hash": params[0], "sender_account_id": params[1]}
            elif len(params) == 1:
                params = {"signed_tx_base64": params[0]}
        params = _object(params, "tx")
        wait_until = self._wait_until(params)
        if "signed_tx_base64" in params:
            try:
                tx_hash = decode_signed_transaction(base64.b64decode(str(params["signed_tx_base64"]))).hash_text
            except (binascii.Error, DecodeError) as exc:
                raise parse_error(f"Failed to decode transaction: {exc}") from None
        else:
            tx_hash = _string(params, "tx_hash")
            _string(params, "sender_account_id")
            try:
                if len(b58decode(tx_hash)) != 32:
                    raise ValueError(tx_hash)
            except ValueError:
                raise parse_error(f"invalid transaction hash {tx_hash!r}") from None
        record = self.chain.txs.get(tx_hash)
        if record is None:
            raise handler_error(
                "UNKNOWN_TRANSACTION",
                {"requested_transaction_hash": tx_hash},
                f"Transaction {tx_hash} doesn't exist",
            )
        return record, wait_until

    async def tx(self, params: Params) -> Any:
        record, wait_until = self._lookup(params)
        return await self._respond(record, wait_until)

    async def experimental_tx_status(self, params: Params) -> Any:
        record, wait_until = self._lookup(params)
        return await self._respond(record, wait_until, with_receipts=True)

    async def experimental_receipt(self, params: Params) -> Any:
        receipt_id = _string(_object(params, "EXPERIMENTAL_receipt"), "receipt_id")
        receipt = self.chain.receipts.get(receipt_id)
        if receipt is None:
            raise handler_error(
                "UNKNOWN_RECEIPT", {"receipt_id": receipt_id}, f"Receipt with id {receipt_id} has never been observed"
            )
        return receipt.view()

    # State changes --------------------------------------------------------------------------------------------

    def _changes_block(self, params: dict[str, Any]) -> Block:
        """The block a state changes request refers to; an unknown one fails as nearcore's
        RpcStateChangesError does, its `info` (the message is not serialized) also in `data`."""
        try:
            return self._reference(params)
        except RpcError as error:
            if error.body.get("cause", {}).get("name") != "UNKNOWN_BLOCK":
                raise
            raise handler_error("UNKNOWN_BLOCK", {}, {"name": "UNKNOWN_BLOCK", "info": {}}) from None

    def _changes_request(self, params: dict[str, Any]) -> Callable[[Sequence[StateChange]], list[StateChange]]:
        """nearcore's StateChangesRequestView (`changes_type` and its fields) as a selection of a block's
        changes: per requested account (or key) in request order, each by trie key, then as committed."""
        changes_type = _string(params, "changes_type")
        if changes_type == "single_access_key_changes":
            keys: list[tuple[str, PublicKey]] = []
            for item in _list(params, "keys"):
                if not isinstance(item, dict):
                    raise parse_error("`keys` must hold objects with `account_id` and `public_key`")
                keys.append((_account_id(item.get("account_id")), self._public_key_param(item)))
            return lambda changes: [
                change
                for account_id, public_key in keys
                for change in select_changes(changes, "access_key", account_id, public_key=public_key)
            ]
        column = CHANGES_COLUMNS.get(changes_type)
        if column is None:
            expected = ", ".join(f"`{name}`" for name in CHANGES_COLUMNS)
            raise parse_error(f"unknown variant `{changes_type}`, expected one of {expected}")
        account_ids = [_account_id(value) for value in _list(params, "account_ids")]
        prefix = b""
        if changes_type == "data_changes":
            if "key_prefix_base64" not in params:
                raise parse_error("missing field `key_prefix_base64`")
            prefix = self._base64_param(params, "key_prefix_base64")
        return lambda changes: [
            change
            for account_id in account_ids
            for change in select_changes(changes, column, account_id, prefix=prefix)
        ]

    async def experimental_changes(self, params: Params) -> Any:
        """The changes of the requested kind and accounts that a block made, each with its cause."""
        params = _object(params, "EXPERIMENTAL_changes")
        select = self._changes_request(params)
        block = self._changes_block(params)
        changes = select(self.chain.store.changes_at(block.height))
        return {"block_hash": block.hash, "changes": [state_change_view(change) for change in changes]}

    async def experimental_changes_in_block(self, params: Params) -> Any:
        """Which kind of record of which account a block changed: one entry per record, by trie key."""
        params = _object(params, "EXPERIMENTAL_changes_in_block")
        block = self._changes_block(params)
        keys = sorted({change.key for change in self.chain.store.changes_at(block.height)}, key=trie_order)
        return {"block_hash": block.hash, "changes": [change_kind_view(key) for key in keys]}

    # Devnet controls ------------------------------------------------------------------------------------------

    async def sandbox_fast_forward(self, params: Params) -> Any:
        """nearcore sandbox's `{"delta_height": N}`; `{"delta_seconds": S}` moves the clock by exactly S."""
        params = _object(params, "sandbox_fast_forward")
        block_time_ns = round(self.chain.config.block_time * 10**9)
        delta_height = params.get("delta_height")
        delta_seconds = params.get("delta_seconds")
        for name, value in (("delta_height", delta_height), ("delta_seconds", delta_seconds)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise parse_error(f"`{name}` must be a non-negative number")
        if delta_height is None and delta_seconds is None:
            raise parse_error("missing field `delta_height`")
        if delta_seconds is not None:
            delta_ns = round(delta_seconds * 10**9)
            height = int(delta_height) if delta_height is not None else max(1, delta_ns // block_time_ns)
        else:
            height = int(delta_height)
            delta_ns = height * block_time_ns
        await self.chain.fast_forward(height, delta_ns)
        return {}

    async def devnet_stall_blocks(self, params: Params) -> Any:
        """`{"seconds": S}`: no block for S seconds (fault injection); the RPC keeps answering."""
        seconds = _object(params, "devnet_stall_blocks").get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 3600:
            raise parse_error("`seconds` must be a number from 0 to 3600")
        self.chain.stall(float(seconds))
        return {}

    async def devnet_create_account(self, params: Params) -> Any:
        """`{"account_id", "public_key" | "public_keys", "balance"}`: a funded account with full-access keys, in
        the next block. It has no contract: deploy one with a DeployContract transaction, as on a network."""
        params = _object(params, "devnet_create_account")
        account_id = _string(params, "account_id")
        if not is_valid_account_id(account_id):
            raise handler_error(
                "INVALID_ACCOUNT", {"requested_account_id": account_id}, f"Account ID {account_id} is invalid"
            )
        texts = params.get("public_keys") or ([params["public_key"]] if params.get("public_key") else [])
        try:
            keys = [PublicKey.ed25519(decode_public_key(text)) for text in texts]
        except (ValueError, TypeError) as exc:
            raise parse_error(f"invalid public key: {exc}") from None
        balance = params.get("balance", "0")
        if not (isinstance(balance, int) or (isinstance(balance, str) and balance.isdigit())):
            raise parse_error("`balance` must be a yoctoNEAR amount")
        if "contract" in params:
            raise parse_error("`contract` is not supported: deploy the wasm with a DeployContract transaction")
        try:
            block = await self.chain.create_account(account_id, keys, int(balance))
        except ValueError as exc:
            raise handler_error("ACCOUNT_ALREADY_EXISTS", {"account_id": account_id}, str(exc)) from None
        return {
            "account_id": account_id,
            "public_keys": [key.text for key in keys],
            "block_height": block.height,
            "block_hash": block.hash,
        }


# --------------------------------------------------------------------------------------------------------------
# The HTTP server
# --------------------------------------------------------------------------------------------------------------


# Like nearcore's RPC, any origin may call: a wallet or a swap page in a browser reads the chain itself.
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


@web.middleware
async def _cors(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    response.headers.update(_CORS)
    return response


class DevnetServer:
    """The chain and its JSON-RPC endpoint in the running event loop: `await start()`, `await stop()`."""

    def __init__(
        self, chain: Chain | None = None, *, host: str = "127.0.0.1", port: int = 0, wait_timeout: float = 10.0
    ) -> None:
        self.chain = chain or Chain()
        self.host = host
        self.port = port
        self.handler = RpcHandler(self.chain, wait_timeout=wait_timeout)
        self._runner: web.AppRunner | None = None
        self._producer: asyncio.Task[None] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024, middlewares=[_cors])
        app.router.add_post("/", self._handle)
        app.router.add_options("/", self._preflight)
        app.router.add_get("/status", self._status)
        app.router.add_get("/health", self._health)
        return app

    async def start(self) -> DevnetServer:
        self._producer = asyncio.create_task(self.chain.run(), name="near-devnet-blocks")
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            server = cast(Any, site._server)
            self.port = server.sockets[0].getsockname()[1]
        self.handler.rpc_addr = f"{self.host}:{self.port}"
        log.info("NEAR devnet RPC on %s", self.rpc_url)
        return self

    async def stop(self) -> None:
        self.chain.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer
            self._producer = None

    async def call(self, method: str, params: Params) -> Any:
        """Call an RPC method in process; raises RpcError like a client would see it."""
        response, _ = await self.handler.dispatch({"jsonrpc": "2.0", "id": 0, "method": method, "params": params})
        if "error" in response:
            raise RpcError(response["error"])
        return response["result"]

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.json(loads=json.loads)
        except ValueError as exc:
            error = parse_error(f"invalid JSON: {exc}")
            return web.json_response({"jsonrpc": "2.0", "error": error.body, "id": None}, status=error.http_status)
        response, status = await self.handler.dispatch(body)
        return web.json_response(response, status=status)

    async def _preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(status_view(self.chain, self.handler.rpc_addr))

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(None)
