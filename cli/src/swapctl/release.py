"""Releasing the maker's secret (secret mode "maker") once the destination chain shows the right lock.

Fed every snapshot of the session while it is followed: when it reaches awaiting_secret, the destination
lock is read from the destination chain (swapctl.verify) and checked against what the maker asked for;
only then is the secret sent. A lock that does not match is reported and the secret kept: the session
refunds at its deadline, and the maker loses nothing. A lock not final yet is looked at again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from swapctl.client import Gateway
from swapctl.errors import CliError, ExitCode
from swapctl.secrets import Held, SecretStore
from swapctl.stream import TERMINAL_STATES
from swapctl.verify import ChainAccess, ChainReader, problems

Json = dict[str, Any]
_RECHECK_S = 1.0
_SEND_ATTEMPTS = 5


class Releaser:
    def __init__(
        self,
        gateway: Gateway,
        store: SecretStore,
        held: Held,
        chains: dict[str, ChainAccess],
        *,
        say: Callable[[str, str], None],
        min_time_left_s: int,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.held = held
        self.chains = chains
        self.say = say  # (message, style)
        self.min_time_left_s = min_time_left_s
        self.refused: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def feed(self, session: Json) -> None:
        state = session.get("state")
        if state in TERMINAL_STATES:
            self.store.forget(self.held)
            return
        if state != "awaiting_secret" or self.held.released or self.refused:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.release_when_checked(session))

    async def release_when_checked(self, session: Json) -> None:
        access = self.chains.get(self.held.dst_chain)
        if access is None:
            self.refused = [f"no {self.held.dst_chain} entry in the chains file: cannot check the destination lock"]
            self.say(f"secret kept: {self.refused[0]}", "bold red")
            return
        lock_id = str(session.get("dst_lock_id") or "")
        async with httpx.AsyncClient(timeout=10) as client:
            reader = ChainReader(client)
            while True:
                try:
                    lock = await reader.read(self.held.dst_chain, access, lock_id)
                except CliError as e:
                    self.say(f"could not read the destination lock yet ({e.message}); trying again", "yellow")
                    await asyncio.sleep(_RECHECK_S)
                    continue
                found = problems(lock, session, self.held, self.min_time_left_s)
                if found == ["it is not final yet"]:
                    await asyncio.sleep(_RECHECK_S)
                    continue
                break
        if found:
            self.refused = found
            self.say(
                "secret kept: the destination lock on chain is not what you asked for: "
                + "; ".join(found)
                + ". The session refunds your source at its deadline.",
                "bold red",
            )
            return
        self.say(
            f"destination lock checked on {self.held.dst_chain}: {lock.amount} to {lock.beneficiary}, "
            f"{lock.cancellation_at - lock.chain_now} s before it can be cancelled; releasing the secret",
            "green",
        )
        for attempt in range(_SEND_ATTEMPTS):
            try:
                await self.gateway.reveal_secret(str(session["session_id"]), self.held.secret)
                break
            except CliError as e:
                if e.exit_code in (ExitCode.UNREACHABLE, ExitCode.SERVER) and attempt + 1 < _SEND_ATTEMPTS:
                    await asyncio.sleep(_RECHECK_S)
                    continue
                self.say(f"the secret was not taken: {e.message}", "bold red")
                self.refused = [e.message]
                return
        self.held.released = True
        self.store.save(self.held)

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
