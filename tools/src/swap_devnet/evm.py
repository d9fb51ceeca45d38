"""The local EVM chain: an anvil process with the escrow contracts and a test token deployed on it.

`Anvil` runs the node on a free loopback port, `deploy` puts TestToken, EscrowSrc and EscrowDst on any
JSON-RPC endpoint and funds the dev accounts, and `EvmDeployment` is the JSON description other processes
read to find the chain. `python -m swap_devnet.evm up --out .localnet/evm.json` does all three and keeps the
chain running until interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Self, TypedDict, cast

from chain_base.orders import (
    ORDER_FIELDS,
    TIMELOCKS_FIELDS,
    digest,
    typed_data,
)
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.types import RPCEndpoint, TxParams, TxReceipt, Wei

from swap_devnet.artifacts import anvil_binary, load_artifact
from swap_devnet.child import Child, StartStop

log = logging.getLogger(__name__)

DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
DEFAULT_CHAIN_ID = 31337
TOKEN_DECIMALS = 6
DEFAULT_MINT = 1_000_000 * 10**TOKEN_DECIMALS
MAX_UINT256 = 2**256 - 1


# Indices of the roles among anvil's dev accounts (derivation path m/44'/60'/0'/0/<index>).
DEPLOYER_INDEX, RESOLVER_INDEX, MAKER_INDEX, RECEIVER_INDEX = 0, 1, 2, 3

_LISTENING = re.compile(r"Listening on (\S+):(\d+)")


class AnvilError(RuntimeError):
    """anvil could not be started, or it answers as a different chain."""


# --------------------------------------------------------------------------------------------------------------
# The anvil process
# --------------------------------------------------------------------------------------------------------------


class Anvil(StartStop):
    """An anvil process on 127.0.0.1 and a port the OS picks; use as a context manager or call start()/stop().

    Output goes to `anvil.log` in `log_dir` (a temporary folder, deleted on stop, when not given).
    """

    def __init__(
        self,
        *,
        binary: Path | None = None,
        repo: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        chain_id: int = DEFAULT_CHAIN_ID,
        accounts: int = 10,
        balance_eth: int = 10_000,
        mnemonic: str = DEFAULT_MNEMONIC,
        block_time: float | None = None,
        log_dir: Path | None = None,
        startup_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.binary = binary or anvil_binary(repo)
        self.host = host
        self.chain_id = chain_id
        self.mnemonic = mnemonic
        self.block_time = block_time
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self._accounts = accounts
        self._balance_eth = balance_eth
        self._extra_args = tuple(extra_args)
        self._log_dir = log_dir
        self._owns_log_dir = log_dir is None
        self._child: Child | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise AnvilError("anvil is not running")
        return self._port

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path | None:
        return None if self._log_dir is None else self._log_dir / "anvil.log"

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.running

    def command(self) -> list[str]:
        cmd = [
            str(self.binary),
            "--host",
            self.host,
            "--port",
            str(self._requested_port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self._accounts),
            "--balance",
            str(self._balance_eth),
            "--mnemonic",
            self.mnemonic,
        ]
        if self.block_time is not None:
            cmd += ["--block-time", f"{self.block_time:g}"]
        return cmd + list(self._extra_args)

    def start(self) -> Self:
        if self._child is not None:
            raise AnvilError("anvil is already started")
        if self._log_dir is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix="anvil-"))
        log_path = self._log_dir / "anvil.log"
        self._child = Child("anvil", log_path)
        self._child.spawn(self.command(), own_session=True, fresh_log=True)  # its port is read from the log
        try:
            self._port = self._await_listening(log_path)
            self._await_rpc()
        except BaseException:
            self.stop()
            raise
        log.info("anvil listening on %s (chain id %d, log %s)", self.rpc_url, self.chain_id, log_path)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process and wait for it; idempotent."""
        child, self._child = self._child, None
        if child is not None:
            child.stop(timeout)
        self._port = None
        if self._owns_log_dir and self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def _await_listening(self, log_path: Path) -> int:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            self._raise_if_exited(log_path)
            match = _LISTENING.search(log_path.read_text(errors="replace"))
            if match:
                return int(match.group(2))
            time.sleep(0.02)
        raise AnvilError(f"anvil did not report a listening port within {self.startup_timeout:g}s\n{_tail(log_path)}")

    def _await_rpc(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.log_path is not None:
                self._raise_if_exited(self.log_path)
            try:
                answer = _json_rpc(self.rpc_url, "eth_chainId", [], timeout=1.0)
            except (OSError, ValueError) as exc:
                last_error = exc
                time.sleep(0.05)
                continue
            if int(str(answer), 16) != self.chain_id:
                raise AnvilError(f"{self.rpc_url} answers chain id {answer}, expected {self.chain_id}")
            return
        raise AnvilError(
            f"anvil at {self.rpc_url} did not answer eth_chainId within {self.startup_timeout:g}s: {last_error}"
        )

    def _raise_if_exited(self, log_path: Path) -> None:
        if self._child is not None and self._child.exited:
            raise AnvilError(f"anvil exited with code {self._child.returncode}\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _json_rpc(url: str, method: str, params: list[Any], timeout: float) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    # `url` is always the http:// address this module built from host and port.
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        payload = json.loads(response.read())
    if "error" in payload:
        raise ValueError(f"{method}: {payload['error']}")
    return payload["result"]


# --------------------------------------------------------------------------------------------------------------
# Accounts and the deployment description
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevAccount:
    address: ChecksumAddress
    private_key: str

    @classmethod
    def from_key(cls, private_key: str) -> DevAccount:
        return cls(address=Account.from_key(private_key).address, private_key=_hex(private_key))

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> DevAccount:
        return cls(address=Web3.to_checksum_address(data["address"]), private_key=data["private_key"])


def dev_account(index: int, mnemonic: str = DEFAULT_MNEMONIC) -> DevAccount:
    """The `index`-th account anvil derives from `mnemonic`."""
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
    return DevAccount(address=account.address, private_key=_hex(bytes(account.key)))


@dataclass(frozen=True)
class OrderDomain:
    """What the EIP-712 domain of an order depends on: the chain and the EscrowSrc address."""

    chain_id: int
    escrow_src: ChecksumAddress


@dataclass(frozen=True)
class EvmDeployment:
    rpc_url: str
    chain_id: int
    deploy_block: int
    escrow_src: ChecksumAddress
    escrow_dst: ChecksumAddress
    token: ChecksumAddress
    deployer: DevAccount
    resolver: DevAccount
    maker: DevAccount
    receiver: DevAccount

    @property
    def order_domain(self) -> OrderDomain:
        return OrderDomain(chain_id=self.chain_id, escrow_src=self.escrow_src)

    def chain_base_settings(self, rpc_url: str | None = None) -> dict[str, str]:
        """chain-base's settings for this deployment (its RPC at `rpc_url` when given, e.g. a proxy)."""
        return {
            "CHAIN_BASE_RPC_URL": rpc_url or self.rpc_url,
            "CHAIN_BASE_CHAIN_ID": str(self.chain_id),
            "CHAIN_BASE_ESCROW_SRC": self.escrow_src,
            "CHAIN_BASE_ESCROW_DST": self.escrow_dst,
            "CHAIN_BASE_START_BLOCK": str(self.deploy_block),
            "CHAIN_BASE_RESOLVER_KEY": self.resolver.private_key,
            "CHAIN_BASE_TOKENS": json.dumps([self.token]),
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> EvmDeployment:
        data = json.loads(text)
        return cls(
            rpc_url=data["rpc_url"],
            chain_id=int(data["chain_id"]),
            deploy_block=int(data["deploy_block"]),
            escrow_src=Web3.to_checksum_address(data["escrow_src"]),
            escrow_dst=Web3.to_checksum_address(data["escrow_dst"]),
            token=Web3.to_checksum_address(data["token"]),
            deployer=DevAccount.from_json(data["deployer"]),
            resolver=DevAccount.from_json(data["resolver"]),
            maker=DevAccount.from_json(data["maker"]),
            receiver=DevAccount.from_json(data["receiver"]),
        )

    def write(self, path: Path | str) -> None:
        """Write atomically, so a reader polling for the file never sees it half-written."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(self.to_json() + "\n")
        partial.replace(target)

    @classmethod
    def read(cls, path: Path | str) -> EvmDeployment:
        return cls.from_json(Path(path).read_text())

    def web3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.rpc_url))

    def escrow_src_contract(self, w3: Web3) -> Contract:
        return w3.eth.contract(address=self.escrow_src, abi=load_artifact("EscrowSrc").abi)

    def escrow_dst_contract(self, w3: Web3) -> Contract:
        return w3.eth.contract(address=self.escrow_dst, abi=load_artifact("EscrowDst").abi)

    def token_contract(self, w3: Web3) -> Contract:
        return w3.eth.contract(address=self.token, abi=load_artifact("TestToken").abi)


# --------------------------------------------------------------------------------------------------------------
# Transactions and deployment
# --------------------------------------------------------------------------------------------------------------


class TransactionFailed(RuntimeError):
    def __init__(self, receipt: TxReceipt) -> None:
        super().__init__(f"transaction {receipt['transactionHash'].to_0x_hex()} reverted")
        self.receipt = receipt


def send_transaction(
    w3: Web3,
    private_key: str,
    call: ContractFunction | ContractConstructor | TxParams,
    *,
    value: int = 0,
    timeout: float = 60.0,
) -> TxReceipt:
    """Sign `call` locally with `private_key`, send it and wait for a successful receipt.

    Reverts surface before sending, from gas estimation (web3's ContractCustomError and friends); a transaction
    that is mined but fails anyway raises TransactionFailed.
    """
    sender = Account.from_key(private_key).address
    base: TxParams = {
        "from": sender,
        "nonce": w3.eth.get_transaction_count(sender, "pending"),
        "value": Wei(value),
    }
    tx: TxParams
    # Estimating against the pending block honours a timestamp fixed for the next block
    # (evm_setNextBlockTimestamp); nodes estimate against "latest" by default.
    if isinstance(call, ContractFunction | ContractConstructor):
        base["gas"] = call.estimate_gas(base, block_identifier="pending")
        tx = call.build_transaction(base)
    else:
        tx = cast(TxParams, {**base, **call})
        tx.setdefault("chainId", w3.eth.chain_id)
        tx.setdefault("gas", w3.eth.estimate_gas(tx, block_identifier="pending"))
        if "gasPrice" not in tx:
            priority = w3.eth.max_priority_fee
            base_fee = w3.eth.get_block("latest").get("baseFeePerGas", Wei(0))
            tx.setdefault("maxPriorityFeePerGas", priority)
            tx.setdefault("maxFeePerGas", Wei(priority + 2 * base_fee))
    signed = Account.sign_transaction(tx, private_key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if receipt["status"] != 1:
        raise TransactionFailed(receipt)
    return receipt


def deploy(
    rpc_url: str,
    *,
    mnemonic: str = DEFAULT_MNEMONIC,
    mint_amount: int = DEFAULT_MINT,
    maker_approves: bool = True,
    repo: Path | None = None,
) -> EvmDeployment:
    """Deploy TestToken, EscrowSrc and EscrowDst with the first dev account and fund the swap roles.

    The maker and the resolver each receive `mint_amount` base units of TUSD; the resolver approves EscrowDst
    for unlimited destination locks and, when `maker_approves`, the maker approves EscrowSrc (otherwise the
    maker's wallet has to approve before the first source lock).
    """
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    deployer, resolver, maker, receiver = (
        dev_account(i, mnemonic) for i in (DEPLOYER_INDEX, RESOLVER_INDEX, MAKER_INDEX, RECEIVER_INDEX)
    )
    chain_id = w3.eth.chain_id

    def create(name: str) -> tuple[ChecksumAddress, int]:
        artifact = load_artifact(name, repo)
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = send_transaction(w3, deployer.private_key, factory.constructor())
        address = receipt["contractAddress"]
        if address is None:
            raise RuntimeError(f"{name} deployment returned no contract address")
        log.info("deployed %s at %s", name, address)
        return Web3.to_checksum_address(address), receipt["blockNumber"]

    token_address, deploy_block = create("TestToken")
    src_address, _ = create("EscrowSrc")
    dst_address, _ = create("EscrowDst")
    deployment = EvmDeployment(
        rpc_url=rpc_url,
        chain_id=chain_id,
        deploy_block=deploy_block,
        escrow_src=src_address,
        escrow_dst=dst_address,
        token=token_address,
        deployer=deployer,
        resolver=resolver,
        maker=maker,
        receiver=receiver,
    )

    token = deployment.token_contract(w3)
    for holder in (maker, resolver):
        send_transaction(w3, deployer.private_key, token.functions.mint(holder.address, mint_amount))
    send_transaction(w3, resolver.private_key, token.functions.approve(dst_address, MAX_UINT256))
    if maker_approves:
        send_transaction(w3, maker.private_key, token.functions.approve(src_address, MAX_UINT256))
    return deployment


# --------------------------------------------------------------------------------------------------------------
# Orders, hashlocks and time
# --------------------------------------------------------------------------------------------------------------


class Timelocks(TypedDict):
    """Window offsets in seconds from the escrow's lock time."""

    withdrawal: int
    publicWithdrawal: int
    cancellation: int
    publicCancellation: int


class Order(TypedDict):
    """EscrowSrc.Order with on-chain field names (bytes32 fields as bytes or 0x-hex)."""

    maker: str
    resolver: str
    token: str
    amount: int
    hashlock: bytes | str
    timelocks: Timelocks
    safetyDeposit: int
    dstTermsHash: bytes | str
    nonce: int
    deadline: int


def order_type_string() -> str:
    """The EIP-712 encodeType of Order, the string EscrowSrc hashes into its ORDER_TYPEHASH."""

    def encode(name: str, fields: tuple[tuple[str, str], ...]) -> str:
        return f"{name}({','.join(f'{type_} {field}' for field, type_ in fields)})"

    return encode("Order", ORDER_FIELDS) + encode("Timelocks", TIMELOCKS_FIELDS)


def order_typed_data(chain_id: int, escrow_src: str, order: Mapping[str, Any]) -> dict[str, Any]:
    """The EIP-712 typed data of `order` (on-chain field names), as chain-base hands it to wallets."""
    return typed_data(chain_id, escrow_src, dict(order))


def order_digest(chain_id: int, escrow_src: str, order: Mapping[str, Any]) -> bytes:
    """The EIP-712 digest of `order`: what the maker signs and the id of the source escrow it creates."""
    return digest(order_typed_data(chain_id, escrow_src, order))


def sign_order(domain: EvmDeployment | OrderDomain, order: Mapping[str, Any], private_key: str) -> bytes:
    """65-byte r || s || v (v in {27, 28}) EIP-712 signature of `order`, as createSrcEscrow expects it."""
    where = domain.order_domain if isinstance(domain, EvmDeployment) else domain
    typed = order_typed_data(where.chain_id, where.escrow_src, order)
    signed = Account.sign_message(encode_typed_data(full_message=typed), private_key)
    return bytes(signed.signature)


def order_args(order: Mapping[str, Any]) -> dict[str, Any]:
    """`order` in the shape web3 encodes as the EscrowSrc.Order tuple (bytes32 fields as bytes)."""
    args: dict[str, Any] = {}
    for field, type_ in ORDER_FIELDS:
        value = order[field]
        if type_ == "address":
            args[field] = Web3.to_checksum_address(value)
        elif type_ == "bytes32":
            args[field] = bytes(_bytes32(value))
        elif type_ == "uint256":
            args[field] = int(value)
        else:
            args[field] = {name: int(value[name]) for name, _ in TIMELOCKS_FIELDS}
    return args


def new_secret() -> bytes:
    return os.urandom(32)


def sha256_hashlock(secret: bytes) -> bytes:
    """The hashlock both chains check: SHA-256 of the 32-byte secret."""
    if len(secret) != 32:
        raise ValueError(f"a secret is 32 bytes, got {len(secret)}")
    return hashlib.sha256(secret).digest()


def latest_timestamp(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def mine(w3: Web3, blocks: int = 1) -> None:
    w3.provider.make_request(RPCEndpoint("anvil_mine"), [hex(blocks)])


def increase_time(w3: Web3, seconds: int) -> None:
    """Move the chain clock forward by `seconds` and mine a block carrying the new time."""
    w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
    mine(w3)


def set_next_block_timestamp(w3: Web3, timestamp: int) -> None:
    """The next mined block (the next transaction, under automine) gets exactly `timestamp`."""
    w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [timestamp])


def _bytes32(value: bytes | str) -> HexBytes:
    raw = HexBytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def _hex(key: bytes | str) -> str:
    return HexBytes(key).to_0x_hex()


# --------------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {
        sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with Anvil(port=args.port, chain_id=args.chain_id, block_time=args.block_time, log_dir=args.log_dir) as node:
            deployment = deploy(node.rpc_url, maker_approves=not args.no_maker_approval)
            deployment.write(args.out)
            log.info(
                "EVM devnet up at %s: EscrowSrc %s, EscrowDst %s, TestToken %s; deployment written to %s",
                node.rpc_url,
                deployment.escrow_src,
                deployment.escrow_dst,
                deployment.token,
                args.out,
            )
            while not stop.wait(0.5):
                if not node.running:
                    log.error("anvil exited unexpectedly")
                    return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swap_devnet.evm", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start anvil, deploy the contracts and keep running until interrupted")
    up.add_argument("--out", type=Path, default=Path(".localnet/evm.json"), help="where to write the deployment")
    up.add_argument("--port", type=int, default=0, help="RPC port (default: a free one)")
    up.add_argument("--chain-id", type=int, default=DEFAULT_CHAIN_ID)
    up.add_argument("--block-time", type=float, default=None, help="interval mining in seconds (default: automine)")
    up.add_argument("--log-dir", type=Path, default=None, help="keep anvil's log here (default: a temp folder)")
    up.add_argument("--no-maker-approval", action="store_true", help="leave the maker's EscrowSrc allowance at 0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return _serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
