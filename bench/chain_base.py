"""chain-base vs web3.py: a destination lock of TUSD (ERC-20) and its withdrawal, on one automine anvil.

Service path: CreateLock (ResolverFunding) and Withdraw over gRPC, timed at the client until the reply.
Direct path: EscrowDst.createDstEscrow and EscrowDst.withdraw built with AsyncWeb3's defaults (gas
estimate, EIP-1559 fees from the node), signed locally, sent raw, waited for by receipt.

The two paths sign with different resolver accounts, funded and approved alike: an account has one nonce
sequence, and two independent senders on it would each keep invalidating the other's cached nonce.
Under automine each transaction is mined as it arrives, so the figures are software overhead, not block
time. anvil logs every JSON-RPC method it serves, which gives the node calls behind each operation.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap_devnet.artifacts import load_artifact
from swap_devnet.evm import MAX_UINT256, Anvil, DevAccount, EvmDeployment, deploy, dev_account, send_transaction
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.types import Nonce, TxParams, TxReceipt, Wei

from bench.procs import start_service
from bench.stats import comparison, typical_counts

log = logging.getLogger("bench.chain_base")

AMOUNT = 1_000_000  # 1 TUSD (6 decimals)
DEPOSIT = 10**15  # wei: the quote service's default safety deposit on BASE
# Withdrawal opens at once; the other windows lie far beyond the run.
TIMELOCKS = (0, 10, 3600, 7200)
# The dev account that signs for chain-base (the deployment's resolver signs the direct path).
SERVICE_RESOLVER_INDEX = 4
POLL_INTERVAL_S = 0.2  # the local stack's default
_RPC_LINE = re.compile(r"^(eth|net|web3|anvil|evm)_\w+$")
_CREATED_TOPIC = HexBytes(
    bytes.fromhex("7f5bd8391f76a6d37658d73d249c8d28adef2a30bb8c9fcbea969dec7b81792e")  # EscrowCreated
)


@dataclass(frozen=True)
class Options:
    iterations: int
    warmup: int
    work_dir: Path


class AnvilCalls:
    """The JSON-RPC methods anvil logged since the last take (it logs one line per call, as it serves it)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = path.stat().st_size

    def take(self) -> Counter[str]:
        with self._path.open("rb") as log_file:
            log_file.seek(self._offset)
            chunk = log_file.read()
        # Only whole lines: a line still being written is counted next time.
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        lines = chunk[:end].decode(errors="replace").splitlines()
        return Counter(line.strip() for line in lines if _RPC_LINE.match(line.strip()))


def _fund_service_resolver(evm: EvmDeployment, who: DevAccount) -> None:
    """What deploy() does for the deployment's resolver: TUSD minted, EscrowDst approved."""
    w3 = evm.web3()
    token = evm.token_contract(w3)
    balance = int(token.functions.balanceOf(evm.resolver.address).call())
    send_transaction(w3, evm.deployer.private_key, token.functions.mint(who.address, balance))
    send_transaction(w3, who.private_key, token.functions.approve(evm.escrow_dst, MAX_UINT256))


def _timelocks_pb() -> common_pb2.Timelocks:
    w, pw, c, pc = TIMELOCKS
    return common_pb2.Timelocks(
        withdrawal_after_s=w, public_withdrawal_after_s=pw, cancellation_after_s=c, public_cancellation_after_s=pc
    )


class ServicePath:
    def __init__(self, stub: chain_pb2_grpc.ChainServiceStub, evm: EvmDeployment) -> None:
        self._stub = stub
        self._evm = evm

    async def lock(self, hashlock: bytes) -> str:
        reply = await self._stub.CreateLock(
            chain_pb2.CreateLockRequest(
                terms=chain_pb2.LockTerms(
                    token=self._evm.token,
                    amount=str(AMOUNT),
                    hashlock=hashlock,
                    timelocks=_timelocks_pb(),
                    beneficiary=self._evm.receiver.address,
                    safety_deposit=str(DEPOSIT),
                ),
                resolver=chain_pb2.ResolverFunding(salt=str(int.from_bytes(os.urandom(8), "big"))),
            )
        )
        if not reply.sent or reply.lock.state != chain_pb2.LOCK_STATE_ACTIVE:
            raise RuntimeError(f"chain-base CreateLock: sent={reply.sent} state={reply.lock.state}")
        return str(reply.lock.lock_id)

    async def withdraw(self, lock_id: str, secret: bytes) -> None:
        reply = await self._stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret))
        if not reply.sent or reply.lock.state != chain_pb2.LOCK_STATE_WITHDRAWN:
            raise RuntimeError(f"chain-base Withdraw: sent={reply.sent} state={reply.lock.state}")


class DirectPath:
    """web3.py as a plain client uses it: the nonce kept locally, everything else as build_transaction fills it."""

    def __init__(self, w3: AsyncWeb3[AsyncHTTPProvider], evm: EvmDeployment) -> None:
        self._w3 = w3
        self._evm = evm
        self._account: LocalAccount = Account.from_key(evm.resolver.private_key)
        self._escrow = w3.eth.contract(address=evm.escrow_dst, abi=load_artifact("EscrowDst").abi)
        self._nonce = 0

    async def start(self) -> DirectPath:
        self._nonce = await self._w3.eth.get_transaction_count(self._account.address, "pending")
        return self

    async def _send(self, call: Any, value: int) -> TxReceipt:
        params: TxParams = {
            "from": self._account.address,
            "nonce": Nonce(self._nonce),
            "value": Wei(value),
            "chainId": self._evm.chain_id,
        }
        tx = await call.build_transaction(params)
        signed = self._account.sign_transaction(tx)
        self._nonce += 1
        tx_hash = await self._w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = await self._w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        if receipt["status"] != 1:
            raise RuntimeError(f"direct transaction {tx_hash.to_0x_hex()} reverted")
        return receipt

    async def lock(self, hashlock: bytes) -> str:
        w, pw, c, pc = TIMELOCKS
        params = {
            "beneficiary": self._evm.receiver.address,
            "token": self._evm.token,
            "amount": AMOUNT,
            "hashlock": hashlock,
            "timelocks": {"withdrawal": w, "publicWithdrawal": pw, "cancellation": c, "publicCancellation": pc},
            "safetyDeposit": DEPOSIT,
            "salt": int.from_bytes(os.urandom(8), "big"),
        }
        receipt = await self._send(self._escrow.functions.createDstEscrow(params), DEPOSIT)
        for entry in receipt["logs"]:
            if entry["address"] == self._evm.escrow_dst and HexBytes(entry["topics"][0]) == _CREATED_TOPIC:
                return HexBytes(entry["topics"][1]).to_0x_hex()
        raise RuntimeError("createDstEscrow logged no EscrowCreated")

    async def withdraw(self, lock_id: str, secret: bytes) -> None:
        await self._send(self._escrow.functions.withdraw(HexBytes(lock_id), secret), 0)


async def _measure(options: Options, evm: EvmDeployment, address: str, calls: AnvilCalls) -> dict[str, Any]:
    w3 = AsyncWeb3(AsyncHTTPProvider(evm.rpc_url))
    token = w3.eth.contract(address=evm.token, abi=load_artifact("TestToken").abi)
    receiver_before = int(await token.functions.balanceOf(evm.receiver.address).call())
    times: dict[str, dict[str, list[float]]] = {
        op: {"service": [], "direct": []} for op in ("lock", "withdraw", "lock_and_withdraw")
    }
    node_calls: dict[str, dict[str, list[Counter[str]]]] = {
        op: {"service": [], "direct": []} for op in ("lock", "withdraw")
    }
    rounds = options.warmup + options.iterations
    async with grpc.aio.insecure_channel(address) as channel:
        paths: dict[str, ServicePath | DirectPath] = {
            "service": ServicePath(chain_pb2_grpc.ChainServiceStub(channel), evm),
            "direct": await DirectPath(w3, evm).start(),
        }
        for round_no in range(rounds):
            measured = round_no >= options.warmup
            # Alternate who goes first, so a drift in the machine's load falls on both alike.
            order = ["service", "direct"] if round_no % 2 == 0 else ["direct", "service"]
            secrets = {name: os.urandom(32) for name in order}
            lock_ids: dict[str, str] = {}
            lock_ms: dict[str, float] = {}
            for name in order:
                calls.take()
                started = time.perf_counter()
                lock_ids[name] = await paths[name].lock(hashlib.sha256(secrets[name]).digest())
                lock_ms[name] = (time.perf_counter() - started) * 1000
                if measured:
                    times["lock"][name].append(lock_ms[name])
                    node_calls["lock"][name].append(calls.take())
            for name in order:
                calls.take()
                started = time.perf_counter()
                await paths[name].withdraw(lock_ids[name], secrets[name])
                elapsed = (time.perf_counter() - started) * 1000
                if measured:
                    times["withdraw"][name].append(elapsed)
                    times["lock_and_withdraw"][name].append(lock_ms[name] + elapsed)
                    node_calls["withdraw"][name].append(calls.take())
            log.info("chain_base round %d/%d done", round_no + 1, rounds)
    received = int(await token.functions.balanceOf(evm.receiver.address).call()) - receiver_before
    await w3.provider.disconnect()
    expected = 2 * rounds * AMOUNT
    if received != expected:
        raise RuntimeError(f"the receiver got {received} TUSD base units, expected {expected}")
    report: dict[str, Any] = {}
    for op, samples in times.items():
        report[op] = comparison(samples["service"], samples["direct"])
        if op in node_calls:
            report[op]["node_rpcs_per_op"] = {
                name: typical_counts(node_calls[op][name]) for name in ("service", "direct")
            }
    report["checked"] = f"receiver balance grew by {expected} (every lock withdrawn once)"
    return report


def run(options: Options) -> dict[str, Any]:
    work = options.work_dir / "chain-base"
    work.mkdir(parents=True, exist_ok=True)
    with Anvil(log_dir=work) as anvil:
        evm = deploy(anvil.rpc_url)
        service_resolver = dev_account(SERVICE_RESOLVER_INDEX)
        _fund_service_resolver(evm, service_resolver)
        env = {
            **evm.chain_base_settings(),
            "CHAIN_BASE_RESOLVER_KEY": service_resolver.private_key,
            "CHAIN_BASE_CONFIRMATIONS": "2",
            "CHAIN_BASE_POLL_INTERVAL_S": str(POLL_INTERVAL_S),
        }
        proc = start_service("chain-base", "chain_base.main", env, work, "CHAIN_BASE_PORT")
        try:
            assert anvil.log_path is not None
            result = asyncio.run(_measure(options, evm, proc.address, AnvilCalls(anvil.log_path)))
        finally:
            proc.stop()
    return {
        "setup": {
            "anvil": "automine (a block per transaction)",
            "token": "TUSD (ERC-20), amount 1 TUSD, safety deposit 0.001 ETH",
            "timelocks_s": dict(
                zip(("withdrawal", "public_withdrawal", "cancellation", "public_cancellation"), TIMELOCKS, strict=True)
            ),
            "chain_base_poll_interval_s": POLL_INTERVAL_S,
            "rounds": {"warmup": options.warmup, "measured": options.iterations},
        },
        **result,
    }
