"""Fault injection for the local stack: a TCP proxy the tests control, to cut a service off from its
chain RPC (or another service) for a while (connections refused and open ones dropped), to drop the open
connections once, or to delay every chunk passing through, and then let it through again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Self

from swap_devnet.child import StartStop
from swap_devnet.procs import free_port

log = logging.getLogger(__name__)
_CHUNK = 64 * 1024


class TcpProxy(StartStop):
    """127.0.0.1:<port> -> 127.0.0.1:<target_port>, on an event loop of its own in a daemon thread."""

    def __init__(self, target_port: int, port: int = 0) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy-{self.port}", daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._frozen: set[asyncio.StreamWriter] = set()  # their bytes are read and dropped
        self._down = False
        self.delay_s = 0.0  # added before each chunk is passed on, both ways

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._down:
            client_w.close()
            return
        try:
            target_r, target_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.close()
            return
        self._open.update((client_w, target_w))
        await asyncio.gather(self._pipe(client_r, target_w), self._pipe(target_r, client_w))
        self._open.difference_update((client_w, target_w))
        self._frozen.difference_update((client_w, target_w))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
            while data := await reader.read(_CHUNK):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                if self._down:
                    break
                if writer in self._frozen:
                    continue
                writer.write(data)
                await writer.drain()
        writer.close()

    def cut(self) -> None:
        """From now on every connection is refused and the open ones are dropped."""

        def drop() -> None:
            self._down = True
            for writer in list(self._open):
                writer.close()

        self._loop.call_soon_threadsafe(drop)
        log.warning("proxy %s cut", self.port)

    def drop(self) -> None:
        """Closes the open connections once (a reset mid-stream); new ones go through."""

        def close_all() -> None:
            for writer in list(self._open):
                writer.close()

        self._loop.call_soon_threadsafe(close_all)
        log.warning("proxy %s dropped its connections", self.port)

    def freeze(self) -> None:
        """The open connections go silent, both ways, without closing (a peer or middlebox gone without a
        word); new connections go through."""

        def freeze_all() -> None:
            self._frozen.update(self._open)

        self._loop.call_soon_threadsafe(freeze_all)
        log.warning("proxy %s froze its connections", self.port)

    def delay(self, seconds: float) -> None:
        """From now on every chunk waits `seconds` before it is passed on (0: no delay)."""
        self._loop.call_soon_threadsafe(setattr, self, "delay_s", seconds)
        log.warning("proxy %s delays %g s", self.port, seconds)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_down", False)
        log.warning("proxy %s restored", self.port)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._open):
                writer.close()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
