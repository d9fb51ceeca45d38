"""Running the devnet for tests and tools: as a subprocess (`NearDevnetProcess`, what the test fixture
uses, so it behaves like a real node on its own port) or inside this process on a background thread
(`ThreadedDevnet`). Both bootstrap the swap accounts and expose the same controls: raw RPC calls, view
calls, fast-forwarding the chain clock and creating funded accounts.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import secrets
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import aiohttp

from swap_devnet.child import Child, StartStop
from swap_devnet.near.bootstrap import DEFAULT_FUNDING, DEFAULT_SEED, NearAccount, NearDeployment, bootstrap, role_key
from swap_devnet.near.chain import Chain, ChainConfig
from swap_devnet.near.keys import KeyPair
from swap_devnet.near.rpc import DevnetServer

log = logging.getLogger(__name__)

_names = itertools.count(1)


class DevnetError(RuntimeError):
    """The devnet could not be started, or answered an RPC call with an error."""

    def __init__(self, message: str, error: Any = None) -> None:
        super().__init__(message)
        self.error = error


def view_params(
    contract_id: str,
    method: str,
    args: dict[str, Any] | None,
    finality: str = "optimistic",
    block_id: int | str | None = None,
) -> dict[str, Any]:
    """The `query` params of a `call_function` view (JSON args), at `finality` or at `block_id`."""
    at: dict[str, Any] = {"finality": finality} if block_id is None else {"block_id": block_id}
    return {
        "request_type": "call_function",
        **at,
        "account_id": contract_id,
        "method_name": method,
        "args_base64": base64.b64encode(json.dumps(args or {}).encode()).decode(),
    }


def view_result(contract_id: str, method: str, result: dict[str, Any]) -> Any:
    """A view's decoded JSON result; DevnetError when the call failed."""
    if "error" in result:
        raise DevnetError(f"{contract_id}.{method}: {result['error']}", result["error"])
    return json.loads(bytes(result["result"])) if result["result"] else None


class DevnetControls:
    """Client-side helpers over a running devnet's RPC; subclasses provide `deployment`."""

    @property
    def deployment(self) -> NearDeployment:
        raise NotImplementedError

    @property
    def rpc_url(self) -> str:
        return self.deployment.rpc_url

    @property
    def chain_id(self) -> str:
        return self.deployment.chain_id

    @property
    def root(self) -> NearAccount:
        return self.deployment.root

    @property
    def token(self) -> NearAccount:
        return self.deployment.token

    @property
    def htlc(self) -> NearAccount:
        return self.deployment.htlc

    @property
    def maker(self) -> NearAccount:
        return self.deployment.maker

    @property
    def resolver(self) -> NearAccount:
        return self.deployment.resolver

    @property
    def receiver(self) -> NearAccount:
        return self.deployment.receiver

    # Raw RPC ------------------------------------------------------------------------------------------------

    @staticmethod
    def _result(method: str, payload: dict[str, Any]) -> Any:
        if "error" in payload:
            raise DevnetError(f"{method}: {payload['error']}", payload["error"])
        return payload["result"]

    def rpc(self, method: str, params: Any, timeout: float = 30.0) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": "devnet", "method": method, "params": params}).encode()
        # rpc_url is the loopback http:// address of the devnet this object started or was given.
        request = urllib.request.Request(  # noqa: S310
            self.rpc_url, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            payload = json.loads(exc.read())
        return self._result(method, payload)

    async def arpc(self, method: str, params: Any, timeout_s: float = 30.0) -> Any:
        body = {"jsonrpc": "2.0", "id": "devnet", "method": method, "params": params}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.post(self.rpc_url, json=body) as response,
        ):
            payload = await response.json(content_type=None)
        return self._result(method, payload)

    # Views --------------------------------------------------------------------------------------------------

    def view(
        self, contract_id: str, method: str, args: dict[str, Any] | None = None, finality: str = "optimistic"
    ) -> Any:
        """Call a view method and decode its JSON result."""
        result = self.rpc("query", view_params(contract_id, method, args, finality))
        return view_result(contract_id, method, result)

    async def aview(
        self,
        contract_id: str,
        method: str,
        args: dict[str, Any] | None = None,
        finality: str = "optimistic",
        block_id: int | str | None = None,
    ) -> Any:
        """A view call at `finality`, or at the block `block_id` (height or hash) when given."""
        result = await self.arpc("query", view_params(contract_id, method, args, finality, block_id))
        return view_result(contract_id, method, result)

    def balance(self, account_id: str) -> int:
        """Native balance in yoctoNEAR."""
        view = self.rpc("query", {"request_type": "view_account", "finality": "optimistic", "account_id": account_id})
        return int(view["amount"])

    async def abalance(self, account_id: str) -> int:
        view = await self.arpc(
            "query", {"request_type": "view_account", "finality": "optimistic", "account_id": account_id}
        )
        return int(view["amount"])

    def token_balance(self, account_id: str) -> int:
        return int(self.view(self.token.account_id, "ft_balance_of", {"account_id": account_id}))

    async def atoken_balance(self, account_id: str) -> int:
        return int(await self.aview(self.token.account_id, "ft_balance_of", {"account_id": account_id}))

    # Devnet controls ------------------------------------------------------------------------------------------

    @staticmethod
    def _ff_params(delta_height: int | None, delta_seconds: float | None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if delta_height is not None:
            params["delta_height"] = delta_height
        if delta_seconds is not None:
            params["delta_seconds"] = delta_seconds
        if not params:
            raise ValueError("give delta_height or delta_seconds")
        return params

    def fast_forward(self, *, delta_height: int | None = None, delta_seconds: float | None = None) -> None:
        """Jump the chain ahead by `delta_height` blocks (a block standing for the block time, 1 s by
        default) or by exactly `delta_seconds` of chain time."""
        self.rpc("sandbox_fast_forward", self._ff_params(delta_height, delta_seconds))

    async def afast_forward(self, *, delta_height: int | None = None, delta_seconds: float | None = None) -> None:
        await self.arpc("sandbox_fast_forward", self._ff_params(delta_height, delta_seconds))

    def stall_blocks(self, seconds: float) -> None:
        """No block for `seconds`; the RPC keeps answering (a stalled network)."""
        self.rpc("devnet_stall_blocks", {"seconds": seconds})

    def _account_params(self, name: str | None, balance: int, keys: Sequence[KeyPair]) -> tuple[str, dict[str, Any]]:
        label = name or "user"
        account_id = f"{label}-{next(_names)}-{secrets.token_hex(3)}.{self.root.account_id}"
        params: dict[str, Any] = {
            "account_id": account_id,
            "public_keys": [key.public_key_text for key in keys],
            "balance": str(balance),
        }
        return account_id, params

    def create_account(
        self,
        name: str | None = None,
        *,
        balance: int = DEFAULT_FUNDING,
        keys: Sequence[KeyPair] | None = None,
    ) -> NearAccount:
        """A fresh funded account `<name>-<n>-<random>.<root>` with full-access `keys` (one new key by
        default), described by its first key."""
        keys = list(keys) if keys else [KeyPair.generate()]
        account_id, params = self._account_params(name, balance, keys)
        self.rpc("devnet_create_account", params)
        return NearAccount.from_key(account_id, keys[0])

    async def acreate_account(
        self,
        name: str | None = None,
        *,
        balance: int = DEFAULT_FUNDING,
        keys: Sequence[KeyPair] | None = None,
    ) -> NearAccount:
        keys = list(keys) if keys else [KeyPair.generate()]
        account_id, params = self._account_params(name, balance, keys)
        await self.arpc("devnet_create_account", params)
        return NearAccount.from_key(account_id, keys[0])

    def block(self, finality: str = "optimistic") -> dict[str, Any]:
        block: dict[str, Any] = self.rpc("block", {"finality": finality})
        return block


class NearDevnetProcess(DevnetControls, StartStop):
    """`python -m swap_devnet.near serve` as a child process; use as a context manager or start()/stop().

    The child exits with us even if we are killed (it watches its parent), and stop() is registered at
    exit, so no devnet outlives the process that started it.
    """

    def __init__(
        self,
        *,
        out: Path | None = None,
        log_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: str = DEFAULT_SEED,
        block_interval: float | None = None,
        startup_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
        data: Path | None = None,
    ) -> None:
        self.data = data  # the node's data directory (--data): kept across restart()
        self._work_dir: Path | None = None
        self._given_log_dir = log_dir
        self._given_out = out
        self._log_dir = log_dir
        self.host = host
        self.port = port
        self.seed = seed
        self.block_interval = block_interval
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self._child: Child | None = None
        self._deployment: NearDeployment | None = None

    @property
    def deployment(self) -> NearDeployment:
        if self._deployment is None:
            raise DevnetError("the NEAR devnet is not running")
        return self._deployment

    @property
    def log_path(self) -> Path | None:
        return None if self._log_dir is None else self._log_dir / "near-devnet.log"

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.running

    def command(self, out: Path) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "swap_devnet.near",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--out",
            str(out),
            "--seed",
            self.seed,
            "--exit-with-parent",
        ]
        if self.block_interval is not None:
            cmd += ["--block-interval", f"{self.block_interval:g}"]
        if self.data is not None:
            cmd += ["--data", str(self.data)]
        return cmd + list(self.extra_args)

    def restart(self) -> Self:
        """Stops the node (it saves its chain in its data directory) and starts it again on the same port,
        going on from where it stopped, as a node restarted on its own data does."""
        if self.data is None:
            raise DevnetError("a restart keeps the chain only with a data directory (data=...)")
        self.port = int(self.rpc_url.rsplit(":", 1)[1])
        self.stop()
        return self.start()

    def start(self) -> Self:
        if self._child is not None:
            raise DevnetError("the NEAR devnet is already started")
        work_dir = None
        if self._given_out is None or self._given_log_dir is None:
            work_dir = self._work_dir = Path(tempfile.mkdtemp(prefix="near-devnet-"))
        log_dir = self._log_dir = self._given_log_dir or work_dir or Path()
        out = self._given_out or (work_dir or Path()) / "near.json"
        log_dir.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        log_path = log_dir / "near-devnet.log"
        self._child = Child("near-devnet", log_path)
        self._child.spawn(self.command(out))
        try:
            self._deployment = self._await_deployment(out, log_path)
        except BaseException:
            self.stop()
            raise
        log.info("NEAR devnet up at %s (log %s)", self.rpc_url, log_path)
        return self

    def _await_deployment(self, out: Path, log_path: Path) -> NearDeployment:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._child is not None and self._child.exited:
                raise DevnetError(f"the NEAR devnet exited with code {self._child.returncode}\n{_tail(log_path)}")
            if out.exists():
                return NearDeployment.read(out)
            time.sleep(0.02)
        raise DevnetError(f"the NEAR devnet did not start within {self.startup_timeout:g}s\n{_tail(log_path)}")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process and wait for it; idempotent."""
        child, self._child = self._child, None
        if child is not None:
            child.stop(timeout)
        self._deployment = None
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def tail(self, lines: int = 30) -> str:
        return "" if self.log_path is None else _tail(self.log_path, lines)


class ThreadedDevnet(DevnetControls, StartStop):
    """The devnet on a background thread of this process, with its own event loop."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, seed: str = DEFAULT_SEED, config: ChainConfig | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self.config = config or ChainConfig(root_key=role_key(seed, ChainConfig.root_account_id))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._deployment: NearDeployment | None = None
        self.server: DevnetServer | None = None

    @property
    def deployment(self) -> NearDeployment:
        if self._deployment is None:
            raise DevnetError("the NEAR devnet is not running")
        return self._deployment

    def start(self, timeout: float = 30.0) -> Self:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), name="near-devnet", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise DevnetError(f"the NEAR devnet did not start within {timeout:g}s")
        if self._error is not None:
            raise DevnetError(f"the NEAR devnet failed to start: {self._error}") from self._error
        return self

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = DevnetServer(Chain(self.config), host=self.host, port=self.port)
        try:
            await server.start()
            self.server = server
            self._deployment = await bootstrap(server.chain, server.rpc_url, seed=self.seed)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            await server.stop()
            return
        self._ready.set()
        await self._stop.wait()
        await server.stop()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._deployment = None


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
