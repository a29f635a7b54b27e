"""A TCP proxy for network-fault tests: Toxiproxy's job, in-process and on loopback only.

It listens on 127.0.0.1:<free port> and forwards to an upstream (RabbitMQ by default). The
mode can be switched while connections are open:

- pass: bytes flow both ways;
- latency: every chunk is held `seconds` in each direction, order preserved;
- blackhole: sockets stay open and bytes are dropped both ways; a close from either side is
  held back too (a dead path carries no FIN); connections made meanwhile are left unread
  until the path is back, as a SYN retransmitted by the kernel would be;
- reset: every connection, open or new, is reset (SO_LINGER 0, then close: an RST);
- fail_over (not a mode, a moment): the server's address has moved to another host, as
  a floating IP does in a failover. Every connection open then is dead without a word (no
  FIN, no RST, nothing to read) until its client sends, which is answered with an RST; new
  connections pass as before.

One asyncio loop in a daemon thread does all the I/O: no thread ever sits in recv() on a
socket that another closes, which would keep Linux from sending the RST.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")
_CHUNK = 64 * 1024
_RST_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends an RST


class Mode(enum.Enum):
    PASS = "pass"
    LATENCY = "latency"
    BLACKHOLE = "blackhole"
    RESET = "reset"


class TcpProxy:
    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int = 5672) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode = Mode.PASS
        self.latency_s = 0.0
        self.accepted = 0  # client connections taken, for "did it reconnect?" checks
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcpproxy", daemon=True)
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._path_open: asyncio.Event | None = None

    # --- control, from the test's thread --------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def url(self, amqp_url: str) -> str:
        """`amqp_url` with its host and port replaced by the proxy's."""
        parts = urlsplit(amqp_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def pass_through(self) -> None:
        self._call(self._switch(Mode.PASS, 0.0))

    def latency(self, seconds: float) -> None:
        self._call(self._switch(Mode.LATENCY, seconds))

    def blackhole(self) -> None:
        self._call(self._switch(Mode.BLACKHOLE, 0.0))

    def reset(self) -> int:
        """Reset every open connection, and every new one until the mode changes; returns
        how many were open."""
        return self._call(self._switch(Mode.RESET, 0.0))

    def fail_over(self) -> int:
        """Every open connection's path dies silently (see the module's docstring); returns
        how many were open."""
        return self._call(self._fail_over())

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # --- on the loop -----------------------------------------------------------------------

    async def _listen(self) -> None:
        self._path_open = asyncio.Event()
        self._path_open.set()
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _switch(self, mode: Mode, latency_s: float) -> int:
        assert self._path_open is not None
        self.mode, self.latency_s = mode, latency_s
        if mode is Mode.BLACKHOLE:
            self._path_open.clear()
        else:
            self._path_open.set()
        if mode is not Mode.RESET:
            return 0
        links = list(self._links)
        for link in links:
            link.reset()
        return len(links)

    async def _fail_over(self) -> int:
        links = list(self._links)
        for link in links:
            link.go_silent()
        return len(links)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._switch(Mode.RESET, 0.0)  # also wakes the links a blackhole holds
        running = [link.runner for link in self._links if link.runner is not None]
        if running:
            await asyncio.wait(running, timeout=5)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(self, reader, writer)
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)

    @property
    def blackholed(self) -> bool:
        return self.mode is Mode.BLACKHOLE

    async def wait_for_path(self) -> None:
        assert self._path_open is not None
        await self._path_open.wait()


class _Link:
    """One client connection and its upstream connection."""

    def __init__(
        self, proxy: TcpProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.proxy = proxy
        self.client = (reader, writer)
        self.writers = [writer]
        self.tasks: list[asyncio.Task[None]] = []
        self.runner = asyncio.current_task()
        self.silent = False  # fail_over: the client's next bytes get an RST, nothing else

    async def run(self) -> None:
        await self.proxy.wait_for_path()  # blackhole: leave the client's bytes unread
        if self.proxy.mode is Mode.RESET:
            self.reset()
            return
        try:
            upstream = await asyncio.open_connection(*self.proxy.upstream)
        except OSError:
            self.reset()
            return
        self.writers.append(upstream[1])
        self.tasks = [
            asyncio.create_task(self._pipe(self.client[0], upstream[1], from_client=True)),
            asyncio.create_task(self._pipe(upstream[0], self.client[1])),
        ]
        await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        if self.silent:  # no close for the client: it learns only when it sends
            await asyncio.wait(self.tasks[:1])
        self.close()

    def go_silent(self) -> None:
        """The path died: the upstream connection goes (its server side ends), the client's
        stays open and hears nothing until it sends."""
        self.silent = True
        if self.tasks:
            self.tasks[1].cancel()
        if len(self.writers) > 1:
            self.writers[1].transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, from_client: bool = False
    ) -> None:
        """Read chunks and hand them to a sender that releases each at its due time."""
        loop = asyncio.get_running_loop()
        due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(due, writer))
        last = 0.0
        try:
            while chunk := await _read(reader):
                if from_client and self.silent:
                    self.reset()  # what a host that knows nothing of the connection says
                    return
                if self.proxy.blackholed:
                    continue
                # Never before the chunk ahead of it, even when the latency shrinks.
                last = max(last, loop.time() + self.proxy.latency_s)
                due.put_nowait((last, chunk))
            await self.proxy.wait_for_path()  # a dead path carries no close either
            due.put_nowait((max(last, loop.time() + self.proxy.latency_s), b""))
            await sender
        finally:
            sender.cancel()

    async def _send(
        self, due: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            at, chunk = await due.get()
            await asyncio.sleep(max(0.0, at - loop.time()))
            if not chunk:
                return
            if self.proxy.blackholed:
                continue  # sent into the dead path while it was delayed
            writer.write(chunk)
            try:
                await writer.drain()
            except OSError:
                return

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            writer.close()

    def reset(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            sock = writer.get_extra_info("socket")
            # A socket already closed by its peer's side of the link has nothing to reset.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_ON_CLOSE)
            writer.transport.abort()


async def _read(reader: asyncio.StreamReader) -> bytes:
    """The next chunk, or b"" at the end (a reset counts as the end)."""
    try:
        return await reader.read(_CHUNK)
    except OSError:
        return b""
