"""An aiohttp application served on an ephemeral 127.0.0.1 port from its own thread and event loop.

Requests out (to the app under test) also run on that loop, so callers on any loop, or on none, can
use the server: `await server.post(...)` hands the request over and waits for its answer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from bot.standins.slack.model import Delivery

T = TypeVar("T")


class BackgroundServer:
    def __init__(self, app: web.Application, name: str = "slack-emulator") -> None:
        self.app = app
        self.name = name
        self.base_url: str | None = None  # http://127.0.0.1:PORT/ once started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> str:
        if self._thread is not None and self.base_url is not None:
            return self.base_url
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._open())
            except BaseException as err:  # handed to start()'s caller
                failure.append(err)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shut())
            loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.wait()
        if failure or self.base_url is None:
            self._thread = None
            raise failure[0] if failure else RuntimeError("the server did not start")
        return self.base_url

    async def _open(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/"

    async def _shut(self) -> None:
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def close(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None

    async def call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the server's loop (where its WebSockets live); awaitable from any other loop."""
        if self._loop is None:
            work.close()
            raise RuntimeError("the emulator is not started: call start() first")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Delivery:
        """POST from the server's loop; awaitable from any other loop."""
        if self._loop is None or self._session is None:
            raise RuntimeError("the emulator is not started: call start() first")
        session = self._session

        async def send() -> Delivery:
            began = time.monotonic()
            async with session.post(url, data=body, headers=headers) as answer:
                text = await answer.text()
                return Delivery(answer.status, text, time.monotonic() - began)

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(send(), self._loop))
