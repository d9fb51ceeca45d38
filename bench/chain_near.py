"""chain-near vs py-near: destination locks of native NEAR and of TUSD (NEP-141) and their withdrawals.

Service path: CreateLock (ResolverFunding) and Withdraw over gRPC, timed at the client until the reply. Direct
path: py-near's `Account.function_call` from the resolver's account, one call per contract call: `lock_native`
(deposit = amount + safety deposit + the HTLC's storage fee); for TUSD `deposit_native` (the safety deposit
and the storage fee, prepaid on the HTLC) then `ft_transfer_call` to the HTLC with the lock terms as its
message; `withdraw`. py-near reads the key's nonce before every transaction and waits with
`broadcast_tx_commit`, as chain-near does.

The direct path signs with an access key of its own on the resolver's account: NEAR orders nonces per key, so
it never disturbs the nonces chain-near caches for its keys. Node calls are counted afterwards, in a separate
pass through a counting JSON-RPC proxy, so the timed runs carry no extra hop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from py_near.account import Account
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap_devnet.near import NEAR, KeyPair, NearDeployment, NearDevnetProcess, lock_id_for

from bench.procs import start_service
from bench.proxies import JsonRpcCounter
from bench.stats import comparison, typical_counts

log = logging.getLogger("bench.chain_near")

TGAS = 10**12
CALL_GAS = 100 * TGAS  # chain-near's defaults (CHAIN_NEAR_CALL_GAS_TGAS, CHAIN_NEAR_FT_CALL_GAS_TGAS)
FT_CALL_GAS = 200 * TGAS
NATIVE_AMOUNT = NEAR // 100
TOKEN_AMOUNT = 1_000_000  # 1 TUSD (6 decimals)
DEPOSIT = 10**22  # yoctoNEAR: the quote service's default safety deposit on NEAR
TIMELOCKS_S = (0, 10, 3600, 7200)
POLL_INTERVAL_S = 0.2  # the local stack's default
KINDS = ("native", "ft")
# Rounds before the counted one: chain-near checks out its 8 signer keys in turn and reads each key's
# nonce on its first use, which a steady state no longer does.
_COUNT_WARMUP = 2


@dataclass(frozen=True)
class Options:
    iterations: int
    warmup: int
    work_dir: Path
    count_rpcs: bool


def _nonce() -> str:
    return str(int.from_bytes(os.urandom(12), "big"))


class ServicePath:
    def __init__(self, stub: chain_pb2_grpc.ChainServiceStub, near: NearDeployment) -> None:
        self._stub = stub
        self._near = near

    async def lock(self, kind: str, hashlock: bytes) -> str:
        w, pw, c, pc = TIMELOCKS_S
        reply = await self._stub.CreateLock(
            chain_pb2.CreateLockRequest(
                terms=chain_pb2.LockTerms(
                    token="native" if kind == "native" else self._near.token.account_id,
                    amount=str(NATIVE_AMOUNT if kind == "native" else TOKEN_AMOUNT),
                    hashlock=hashlock,
                    timelocks=common_pb2.Timelocks(
                        withdrawal_after_s=w,
                        public_withdrawal_after_s=pw,
                        cancellation_after_s=c,
                        public_cancellation_after_s=pc,
                    ),
                    beneficiary=self._near.receiver.account_id,
                    safety_deposit=str(DEPOSIT),
                ),
                resolver=chain_pb2.ResolverFunding(salt=_nonce()),
            )
        )
        if not reply.sent or reply.lock.state != chain_pb2.LOCK_STATE_ACTIVE:
            raise RuntimeError(f"chain-near CreateLock ({kind}): sent={reply.sent} state={reply.lock.state}")
        return str(reply.lock.lock_id)

    async def withdraw(self, lock_id: str, secret: bytes) -> None:
        reply = await self._stub.Withdraw(chain_pb2.WithdrawRequest(lock_id=lock_id, secret=secret))
        if not reply.sent or reply.lock.state != chain_pb2.LOCK_STATE_WITHDRAWN:
            raise RuntimeError(f"chain-near Withdraw: sent={reply.sent} state={reply.lock.state}")


def _failure(result: Any) -> str | None:
    """The first failure of a transaction or of any receipt it caused (ft_transfer_call refunds a lock
    that ft_on_transfer refused and still succeeds at the top)."""
    statuses = [result.status, *(outcome.status for outcome in result.receipt_outcome)]
    for status in statuses:
        if isinstance(status, dict) and "Failure" in status:
            return json.dumps(status["Failure"])[:300]
    return None


class DirectPath:
    def __init__(self, account: Any, near: NearDeployment) -> None:
        self._account = account
        self._near = near
        self.lock_ids: list[str] = []
        self._storage_fee: int | None = None

    async def storage_fee(self) -> int:
        """The HTLC's storage fee per lock (its storage_fee view, a constant: read once)."""
        if self._storage_fee is None:
            view = await self._account.view_function(self._near.htlc.account_id, "storage_fee", {})
            self._storage_fee = int(view.result)
        return self._storage_fee

    async def _call(self, contract: str, method: str, args: dict[str, Any], gas: int, deposit: int) -> None:
        result = await self._account.function_call(contract, method, args, gas=gas, amount=deposit)
        if (failure := _failure(result)) is not None:
            raise RuntimeError(f"direct {contract}.{method} failed: {failure}")

    async def lock(self, kind: str, hashlock: bytes) -> str:
        nonce = _nonce()
        message: dict[str, Any] = {
            "nonce": nonce,
            "beneficiary": self._near.receiver.account_id,
            "operator": self._near.resolver.account_id,
            "hashlock": hashlock.hex(),
            "timelocks": dict(
                zip(
                    ("withdrawal", "public_withdrawal", "cancellation", "public_cancellation"),
                    (str(s * 10**9) for s in TIMELOCKS_S),
                    strict=True,
                )
            ),
            "safety_deposit": str(DEPOSIT),
        }
        htlc = self._near.htlc.account_id
        fee = await self.storage_fee()
        if kind == "native":
            await self._call(htlc, "lock_native", message, CALL_GAS, NATIVE_AMOUNT + DEPOSIT + fee)
        else:
            await self._call(htlc, "deposit_native", {}, CALL_GAS, DEPOSIT + fee)
            args = {"receiver_id": htlc, "amount": str(TOKEN_AMOUNT), "msg": json.dumps(message)}
            await self._call(self._near.token.account_id, "ft_transfer_call", args, FT_CALL_GAS, 1)
        lock_id = lock_id_for(self._near.resolver.account_id, nonce)
        self.lock_ids.append(lock_id)
        return lock_id

    async def withdraw(self, lock_id: str, secret: bytes) -> None:
        await self._call(
            self._near.htlc.account_id, "withdraw", {"lock_id": lock_id, "secret": secret.hex()}, CALL_GAS, 0
        )


LockPath = ServicePath | DirectPath
Hook = Callable[[], Counter[str]]


async def _round(
    paths: dict[str, LockPath], order: list[str], kind: str, between: Hook | None = None
) -> dict[str, dict[str, tuple[float, Counter[str]]]]:
    """One lock and one withdrawal per path, interleaved: lock A, lock B, withdraw A, withdraw B.
    Returns {op: {path: (ms, node calls)}}; the calls are empty without a counter."""
    take: Hook = between or Counter
    out: dict[str, dict[str, tuple[float, Counter[str]]]] = {"lock": {}, "withdraw": {}}
    secrets = {name: os.urandom(32) for name in order}
    lock_ids: dict[str, str] = {}
    for name in order:
        take()
        start = time.perf_counter()
        lock_ids[name] = await paths[name].lock(kind, hashlib.sha256(secrets[name]).digest())
        out["lock"][name] = ((time.perf_counter() - start) * 1000, take())
    for name in order:
        take()
        start = time.perf_counter()
        await paths[name].withdraw(lock_ids[name], secrets[name])
        out["withdraw"][name] = ((time.perf_counter() - start) * 1000, take())
    return out


async def _direct_account(near: NearDeployment, key: KeyPair, rpc_url: str) -> Any:
    account = Account(near.resolver.account_id, key.secret_key_text, rpc_url)
    await account.startup()
    return account


async def _add_direct_key(near: NearDeployment, key: KeyPair) -> None:
    owner = Account(near.resolver.account_id, near.resolver.private_key, near.rpc_url)
    await owner.startup()
    try:
        await owner.add_full_access_public_key(key.public_key_text)
    finally:
        await owner.shutdown()


async def _measure(options: Options, devnet: NearDevnetProcess, address: str, key: KeyPair) -> dict[str, Any]:
    near = devnet.deployment
    times: dict[str, dict[str, dict[str, list[float]]]] = {
        kind: {op: {"service": [], "direct": []} for op in ("lock", "withdraw", "lock_and_withdraw")} for kind in KINDS
    }
    receiver = near.receiver.account_id
    native_before = await devnet.abalance(receiver)
    tokens_before = await devnet.atoken_balance(receiver)
    account = await _direct_account(near, key, near.rpc_url)
    direct = DirectPath(account, near)
    rounds = options.warmup + options.iterations
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            paths: dict[str, LockPath] = {"service": ServicePath(chain_pb2_grpc.ChainServiceStub(channel), near)}
            paths["direct"] = direct
            for round_no in range(rounds):
                # The service goes first in round 0: its first TUSD lock registers the HTLC with the token.
                order = ["service", "direct"] if round_no % 2 == 0 else ["direct", "service"]
                for kind in KINDS:
                    result = await _round(paths, order, kind)
                    if round_no < options.warmup:
                        continue
                    for name in order:
                        lock_ms, withdraw_ms = result["lock"][name][0], result["withdraw"][name][0]
                        times[kind]["lock"][name].append(lock_ms)
                        times[kind]["withdraw"][name].append(withdraw_ms)
                        times[kind]["lock_and_withdraw"][name].append(lock_ms + withdraw_ms)
                log.info("chain_near round %d/%d done", round_no + 1, rounds)
    finally:
        await account.shutdown()
    native_got = await devnet.abalance(receiver) - native_before
    tokens_got = await devnet.atoken_balance(receiver) - tokens_before
    if native_got != 2 * rounds * NATIVE_AMOUNT or tokens_got != 2 * rounds * TOKEN_AMOUNT:
        raise RuntimeError(f"the receiver got {native_got} yoctoNEAR and {tokens_got} TUSD units, not 2 x {rounds}")
    states = {
        (await devnet.aview(near.htlc.account_id, "get_lock", {"lock_id": lock_id}))["state"]
        for lock_id in direct.lock_ids
    }
    if states != {"withdrawn"}:
        raise RuntimeError(f"direct locks ended in {states}")
    report: dict[str, Any] = {
        kind: {op: comparison(s["service"], s["direct"]) for op, s in per_op.items()} for kind, per_op in times.items()
    }
    report["checked"] = (
        f"receiver got exactly {2 * rounds} native and {2 * rounds} TUSD payouts; every direct lock reads withdrawn"
    )
    return report


async def _count(devnet: NearDevnetProcess, key: KeyPair, work: Path, counter: JsonRpcCounter) -> dict[str, Any]:
    """One more chain-near and py-near account, both pointed at the counting proxy; returns the node calls of
    each operation of the last of a few rounds."""
    near = devnet.deployment
    env = {
        **near.chain_near_settings(counter.url),
        "CHAIN_NEAR_POLL_INTERVAL_S": str(POLL_INTERVAL_S),
    }
    proc = await asyncio.to_thread(start_service, "chain-near-counted", "chain_near.main", env, work, "CHAIN_NEAR_PORT")
    account = await _direct_account(near, key, counter.url)
    counts: dict[str, Any] = {}
    try:
        async with grpc.aio.insecure_channel(proc.address) as channel:
            paths: dict[str, LockPath] = {
                "service": ServicePath(chain_pb2_grpc.ChainServiceStub(channel), near),
                "direct": DirectPath(account, near),
            }
            for round_no in range(_COUNT_WARMUP + 1):
                for kind in KINDS:
                    result = await _round(paths, ["service", "direct"], kind, counter.take)
                    if round_no == _COUNT_WARMUP:
                        counts[kind] = {
                            op: {name: typical_counts([calls]) for name, (_, calls) in per_path.items()}
                            for op, per_path in result.items()
                        }
    finally:
        await account.shutdown()
        await asyncio.to_thread(proc.stop)
    return counts


async def _run_async(options: Options, devnet: NearDevnetProcess, work: Path) -> dict[str, Any]:
    near = devnet.deployment
    key = KeyPair.generate()
    await _add_direct_key(near, key)
    env = {**near.chain_near_settings(), "CHAIN_NEAR_POLL_INTERVAL_S": str(POLL_INTERVAL_S)}
    proc = await asyncio.to_thread(start_service, "chain-near", "chain_near.main", env, work, "CHAIN_NEAR_PORT")
    try:
        report = await _measure(options, devnet, proc.address, key)
    finally:
        await asyncio.to_thread(proc.stop)
    if options.count_rpcs:
        counter = await JsonRpcCounter(near.rpc_url).start()
        try:
            counts = await _count(devnet, key, work, counter)
        finally:
            await counter.stop()
        for kind in KINDS:
            for op in ("lock", "withdraw"):
                report[kind][op]["node_rpcs_per_op"] = counts[kind][op]
    return report


def run(options: Options) -> dict[str, Any]:
    work = options.work_dir / "chain-near"
    work.mkdir(parents=True, exist_ok=True)
    with NearDevnetProcess(out=work / "near.json", log_dir=work) as devnet:
        report = asyncio.run(_run_async(options, devnet, work))
    return {
        "setup": {
            "devnet": "swap_devnet.near (0.1 s blocks when idle; final = 2 blocks behind head)",
            "native": "lock_native of 0.01 NEAR, safety deposit 0.01 NEAR",
            "ft": (
                "TUSD (NEP-141) 1 TUSD via ft_transfer_call, safety deposit 0.01 NEAR and the storage fee prepaid "
                "with deposit_native"
            ),
            "timelocks_s": dict(
                zip(
                    ("withdrawal", "public_withdrawal", "cancellation", "public_cancellation"), TIMELOCKS_S, strict=True
                )
            ),
            "chain_near_signer_keys": 8,
            "chain_near_poll_interval_s": POLL_INTERVAL_S,
            "rounds": {"warmup": options.warmup, "measured": options.iterations},
            "node_rpcs": "counted in a separate untimed pass through a counting proxy" if options.count_rpcs else "off",
        },
        **report,
    }
