"""An aiosmtpd server in this process, on a free port, for unit tests of SMTP clients.

`LocalSmtpServer(handler)` runs its own event loop on a thread; `with` starts and stops it.
Binding to port 0 lets the OS pick the port, so parallel test runs never collide.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP


class LocalSmtpServer:
    def __init__(self, handler: Any, **smtp_options: Any) -> None:
        self.handler = handler
        self.smtp_options = {"hostname": "localtest", **smtp_options}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    def __enter__(self) -> LocalSmtpServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        self.port = future.result(timeout=10)
        return self

    async def _start(self) -> int:
        def factory() -> SMTP:
            return SMTP(self.handler, loop=self.loop, **self.smtp_options)

        self._server = await self.loop.create_server(factory, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
