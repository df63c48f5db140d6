"""The ops HTTP server of `shepherd serve`, `worker` and `dev`: /metrics, /healthz and /readyz.

/healthz answers 200 while the process's event loop runs. /readyz runs the readiness checks:
200 when all pass, else 503; the body names each check and what is wrong ("postgres: ...").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.ops.health import Readiness
from bot.ops.metrics import ShepherdMetrics

log = logging.getLogger(__name__)


@dataclass
class Ops:
    """What a process exposes to its operators; built once by the command that runs."""
    metrics: ShepherdMetrics = field(default_factory=ShepherdMetrics)
    readiness: Readiness = field(default_factory=Readiness)


def ops_app(ops: Ops) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        import asyncio

        body = await asyncio.to_thread(ops.metrics.exposition)  # reads Postgres: off the event loop
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        results = await ops.readiness.run()
        failing = {name: why for name, why in results.items() if why != "ok"}
        lines = [f"{name}: {why}" for name, why in results.items()]
        return web.Response(status=503 if failing else 200,
                            text=("ready\n" if not failing else "not ready\n") + "\n".join(lines) + "\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


@contextlib.asynccontextmanager
async def ops_server(ops: Ops, host: str, port: int) -> AsyncIterator[int | None]:
    """Serve /metrics, /healthz and /readyz; yields the bound port (None when the port is taken: said, not fatal)."""
    runner = web.AppRunner(ops_app(ops), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as err:
        log.warning("ops server: cannot listen on %s:%s (%s): /metrics, /healthz and /readyz are off",
                    host, port, err.strerror or err)
        await runner.cleanup()
        yield None
        return
    try:
        sockets = getattr(site._server, "sockets", None) or []
        yield sockets[0].getsockname()[1] if sockets else port
    finally:
        await runner.cleanup()
