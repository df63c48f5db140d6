"""`shepherd serve`: the Bolt app over HTTP (`--http --port P`) or Socket Mode (`--socket-mode`), the
monitor (APScheduler, every `monitor.interval_s`) and the Slack outbox poster.

On the embedded stack (no SHEPHERD_POSTGRES_DSN) it also runs a worker in-process, as `shepherd dev` does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bot.app import (
    Runtime,
    check_demo_spec,
    demo_line,
    is_embedded,
    monitoring,
    open_runtime,
    slack_app,
    slack_deps,
    slack_web_client,
)
from bot.cli.worker import connect_temporal, run_worker_until
from bot.errors import ConfigError, UserInputError
from bot.monitor.service import run_monitor
from bot.ops.health import postgres_check, temporal_check
from bot.ops.server import Ops, ops_server
from bot.ops.temporal_runtime import SERVE_METRICS_PORT
from bot.settings import Settings
from bot.slack.auth import TokenCheck

EVENTS_PATH = "/slack/events"


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    serve: argparse.ArgumentParser = sub.add_parser("serve", help="run the Slack app (HTTP or Socket Mode)")
    mode = serve.add_mutually_exclusive_group(required=True)
    mode.add_argument("--http", action="store_true", help=f"answer Slack's requests at http://HOST:PORT{EVENTS_PATH}")
    mode.add_argument("--socket-mode", action="store_true", help="connect out to Slack (SHEPHERD_SLACK_APP_TOKEN)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=3000, help="0 picks a free port (printed)")
    embedded = serve.add_argument_group("embedded stack (no SHEPHERD_POSTGRES_DSN)")
    embedded.add_argument("--scale", type=float, help="demo data scale when the demo is first loaded (default 0.005)")
    embedded.add_argument("--seed", type=int, help="demo data seed when the demo is first loaded (default 7)")
    embedded.add_argument("--reset", action="store_true",
                          help="delete the data directory's data (demo, jobs, Temporal history) and load afresh")
    return serve


@contextlib.asynccontextmanager
async def http_server(app: Any, host: str, port: int) -> AsyncIterator[int]:
    """Serve the Bolt app's aiohttp application; yields the bound port."""
    runner = web.AppRunner(app.web_app(path=EVENTS_PATH), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        yield sockets[0].getsockname()[1] if sockets else port
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def socket_mode(app: Any, app_token: str, *, ping_interval: float = 10.0) -> AsyncIterator[Any]:
    """Connect the Bolt app to Slack in Socket Mode (apps.connections.open, then the WebSocket it names)."""
    from bot.slack.socket_mode import SocketModeHandler

    handler = SocketModeHandler(app, app_token, ping_interval=ping_interval)
    await handler.connect_async()
    try:
        yield handler
    finally:
        await handler.close_async()


async def check_token(settings: Settings, metrics: Any = None) -> TokenCheck:
    """The bot token, checked once before anything starts: refused is a ConfigError (exit 2);
    Slack not answering is said, and serve starts anyway (acks never need the Web API)."""
    token = TokenCheck(slack_web_client(settings, metrics))
    if not await token.check():
        print("shepherd serve: Slack's Web API did not answer the token check; starting anyway, replies wait"
              " in the outbox", flush=True)
    return token


async def serve_until(rt: Runtime, args: argparse.Namespace, stop: asyncio.Event,
                      token: TokenCheck | None = None, ops: Ops | None = None) -> None:
    settings = rt.settings
    metrics = ops.metrics if ops is not None else None
    token = token or await check_token(settings, metrics)
    client = await connect_temporal(settings, rt.temporal_address)
    deps = slack_deps(rt, client, token.client)
    app = slack_app(settings, deps, token, metrics)
    worker = None
    if rt.embedded is not None:
        worker = asyncio.create_task(run_worker_until(rt, stop, ops=ops))
    elif ops is not None:
        ops.readiness.add("postgres", postgres_check(rt.pool))
        ops.readiness.add("temporal", temporal_check(client))
    if ops is not None:
        ops.metrics.watch_state(rt.pool)
    monitor, poster = monitoring(settings, deps, metrics)
    watching = asyncio.create_task(run_monitor(monitor, poster, stop, rt.config.monitor.interval_s,
                                               metrics.observe_tick if metrics is not None else None))
    try:
        if args.socket_mode:
            assert settings.slack_app_token is not None
            async with socket_mode(app, settings.slack_app_token.get_secret_value()):
                print("shepherd serve: connected to Slack in Socket Mode", flush=True)
                if ops is not None:
                    ops.readiness.ready()
                await stop.wait()
        else:
            async with http_server(app, args.host, args.port) as port:
                print(f"shepherd serve: listening on http://{args.host}:{port}{EVENTS_PATH}", flush=True)
                if ops is not None:
                    ops.readiness.ready()
                await stop.wait()
        if ops is not None:
            ops.readiness.stopping = True
        await app.shepherd_background.drain()  # finish the work already acknowledged
    finally:
        stop.set()
        await token.close()
        await watching
        deps.heavy.close()
        if worker is not None:
            await worker


def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    if settings.slack_signing_secret is None or settings.slack_bot_token is None:
        raise ConfigError("environment", ["SHEPHERD_SLACK_BOT_TOKEN and SHEPHERD_SLACK_SIGNING_SECRET must be set"])
    if args.socket_mode and settings.slack_app_token is None:
        raise UserInputError("--socket-mode needs the app-level token in SHEPHERD_SLACK_APP_TOKEN (xapp-...)")
    if not 0 <= args.port <= 65535:
        raise UserInputError(f"--port {args.port} is not a port number")
    scale, seed, reset = getattr(args, "scale", None), getattr(args, "seed", None), bool(getattr(args, "reset", False))
    if not is_embedded(settings) and (scale is not None or seed is not None or reset):
        raise UserInputError("--scale, --seed and --reset are for the embedded stack; SHEPHERD_POSTGRES_DSN is set")
    if scale is not None and not scale > 0:
        raise UserInputError(f"--scale {scale} must be above 0")
    if is_embedded(settings):
        check_demo_spec(settings, scale, seed, reset=reset)  # before anything starts

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        ops = Ops()
        port = settings.metrics_port if settings.metrics_port is not None else SERVE_METRICS_PORT
        async with ops_server(ops, settings.metrics_host, port) as bound:
            if bound is not None:
                print(f"shepherd serve: /metrics, /healthz and /readyz on http://{settings.metrics_host}:{bound}",
                      flush=True)
            token = await check_token(settings, ops.metrics)
            with open_runtime(settings, temporal=is_embedded(settings), scale=scale, seed=seed, reset=reset) as rt:
                if rt.demo is not None:
                    print(f"shepherd serve: embedded stack in {settings.data_dir}; {demo_line(rt)}", flush=True)
                await serve_until(rt, args, stop, token, ops)

    asyncio.run(main())
    return 0
