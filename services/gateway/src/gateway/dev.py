"""Dev mode only: the maker's step of a session made with the devnet maker keys, so a browser or a test can
drive a whole swap through the gateway. The keys come from the devnet deployment files and never leave."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from py_near.account import Account as NearAccount
from pydantic import BaseModel, ConfigDict, SecretStr
from swap.chain.v1 import chain_pb2
from swap_runtime.logs import redact

from gateway.errors import ApiError

log = logging.getLogger(__name__)


class _File(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _EvmKey(_File):
    address: str
    private_key: SecretStr


class EvmFile(_File):
    """The parts of swap_devnet.evm.EvmDeployment's JSON used here."""

    chain_id: int
    maker: _EvmKey


class _NearKey(_File):
    account_id: str
    private_key: SecretStr


class NearFile(_File):
    """The parts of swap_devnet.near.bootstrap.NearDeployment's JSON used here."""

    rpc_url: str
    maker: _NearKey


def _precondition(reason: str, message: str) -> ApiError:
    return ApiError(400, "FAILED_PRECONDITION", reason, message)


class DevMaker:
    def __init__(self, evm: EvmFile | None, near: NearFile | None) -> None:
        self._evm = evm
        self._near = near
        self._near_account: NearAccount | None = None
        # One transaction at a time from the maker's NEAR account keeps its nonces in order.
        self._near_lock = asyncio.Lock()

    @classmethod
    def load(cls, evm_file: Path | None, near_file: Path | None) -> DevMaker:
        evm = EvmFile.model_validate_json(evm_file.read_text()) if evm_file else None
        near = NearFile.model_validate_json(near_file.read_text()) if near_file else None
        log.warning(
            "dev mode: the maker-action route signs with the devnet maker keys",
            extra={
                "evm_maker": evm.maker.address if evm else None,
                "near_maker": near.maker.account_id if near else None,
            },
        )
        return cls(evm, near)

    def sign_order(self, maker: str, order: chain_pb2.SignOrder) -> bytes:
        """The maker's 65-byte EIP-712 signature of `order` (eth_signTypedData_v4)."""
        if self._evm is None:
            raise _precondition("DEV_MAKER_UNAVAILABLE", "no EVM deployment file: the BASE maker key is not loaded")
        if maker.lower() != self._evm.maker.address.lower():
            raise _precondition(
                "NOT_DEV_MAKER", f"the session's maker is not the devnet maker {self._evm.maker.address}"
            )
        typed: dict[str, Any] = json.loads(order.typed_data_json)
        signed = Account.sign_message(
            encode_typed_data(full_message=typed), self._evm.maker.private_key.get_secret_value()
        )
        return bytes(signed.signature)

    def check_near_maker(self, maker: str) -> None:
        if self._near is None:
            raise _precondition("DEV_MAKER_UNAVAILABLE", "no NEAR deployment file: the NEAR maker key is not loaded")
        if maker != self._near.maker.account_id:
            raise _precondition(
                "NOT_DEV_MAKER", f"the session's maker is not the devnet maker {self._near.maker.account_id}"
            )

    async def near_call(self, call: chain_pb2.NearCall) -> str:
        """Makes `call` from the maker's NEAR account; returns the transaction hash."""
        async with self._near_lock:
            try:
                account = await self._account()
                result = await account.function_call(
                    call.contract, call.method, json.loads(call.args_json), call.gas, int(call.deposit)
                )
            except Exception as err:
                log.warning("maker call failed", extra={"method": call.method, "error": redact(repr(err))})
                raise ApiError(
                    503, "UNAVAILABLE", "MAKER_CALL_FAILED", f"the maker's NEAR call failed: {redact(str(err))[:300]}"
                ) from None
        status: dict[str, Any] = getattr(result, "status", {}) or {}
        if "Failure" in status:
            raise _precondition("MAKER_CALL_FAILED", f"the maker's NEAR call failed: {json.dumps(status)[:300]}")
        tx_hash: str = result.transaction.hash
        return tx_hash

    async def _account(self) -> NearAccount:
        assert self._near is not None
        if self._near_account is None:
            account = NearAccount(
                self._near.maker.account_id, self._near.maker.private_key.get_secret_value(), self._near.rpc_url
            )
            await account.startup()
            self._near_account = account
        return self._near_account

    async def close(self) -> None:
        if self._near_account is not None:
            await self._near_account.shutdown()
            self._near_account = None
