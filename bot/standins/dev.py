"""`shepherd dev`: everything in one process on embedded parts, with a console to play Slack in.

The embedded stack with the demo dataset, a Temporal worker, the Bolt app on a local port, and
the Slack stand-in delivering what the console types (as alice, bob, carol or dave in #ops).
`--script FILE` runs console lines and exits non-zero at the first that fails; `--ready-exit`
starts everything, reports, and stops. `--socket-mode` connects the app to the stand-in in Socket Mode
(as `shepherd serve --socket-mode` connects to Slack): the console's deliveries then go over the
WebSocket as envelopes instead of signed HTTP posts.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.app import Runtime, demo_line, monitoring, open_runtime, slack_app, slack_deps
from bot.cli.worker import connect_temporal, queues_text, run_worker_until, worker_queues
from bot.monitor.service import run_monitor
from bot.ops.server import Ops, ops_server
from bot.settings import Settings

DEMO_USERS = {"U_ALICE": "alice", "U_BOB": "bob", "U_CAROL": "carol", "U_DAVE": "dave"}
DEMO_CHANNELS = {"C_OPS": "ops", "C_RANDOM": "random"}


def _banner(rt: Runtime, settings: Settings, seconds: float, where: str) -> str:
    return (
        f"shepherd dev ready in {seconds:.1f} s\n"
        f"  data:      {settings.data_dir}\n"
        f"  temporal:  {rt.temporal_address} (worker on {queues_text(worker_queues(settings, rt.config))})\n"
        f"  demo:      {len(rt.registry)} customers on {len(rt.config.clusters)} clusters "
        f"(config written to {settings.data_dir / 'shepherd.yml'})\n"
        f"             {demo_line(rt)}\n"
        f"  slack:     local stand-in; {where}\n"
        "  people:    alice (operator, approver), bob (approver), carol (operator), dave (neither); channel #ops\n"
        "Try: /backfill plan hilton --window 5d, click 1, /purge oportun --types 1-3, /as bob, click 1, "
        "/shepherd help"
    )


def _emulator(signing_secret: str, token: str, app_token: str | None, data_dir: Path) -> Any:
    """The stand-in, kept in the data directory: a restart finds the channels and messages it had."""
    from bot.standins.slack.emulator import SlackEmulator
    from bot.standins.slack.store import FILE_NAME

    emu = SlackEmulator(signing_secret=signing_secret, bot_token=token, app_token=app_token,
                        socket_mode=app_token is not None, state_path=Path(data_dir) / FILE_NAME).start()
    for uid, name in DEMO_USERS.items():
        emu.add_user(uid, name)
    for cid, name in DEMO_CHANNELS.items():
        emu.add_channel(cid, name, members=DEMO_USERS)
    return emu


@contextlib.asynccontextmanager
async def _connected(app: Any, emu: Any, app_token: str | None) -> AsyncIterator[str]:
    """The Bolt app connected to the stand-in: over Socket Mode with an app token, else over HTTP.
    Yields where the stand-in's deliveries go."""
    from bot.cli.serve import EVENTS_PATH, http_server, socket_mode

    if app_token is not None:
        async with socket_mode(app, app_token, ping_interval=2.0):
            await emu.wait_connected()
            yield "the Bolt app is connected in Socket Mode (apps.connections.open, then its WebSocket)"
        return
    async with http_server(app, "127.0.0.1", 0) as port:
        emu.app_url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
        yield f"the Bolt app answers at {emu.app_url}"


async def _session(rt: Runtime, settings: Settings, began: float, *, ready_exit: bool, script: Path | None,
                   stop: asyncio.Event, socket: bool = False, ops: Ops | None = None) -> int:
    from bot.app import slack_web_client
    from bot.slack.auth import TokenCheck
    from bot.standins.console.console import Console
    from bot.standins.linear import LinearStandIn

    secret, token = secrets.token_hex(16), "xoxb-dev-" + secrets.token_hex(8)
    app_token = "xapp-dev-" + secrets.token_hex(8) if socket else None
    emu = _emulator(secret, token, app_token, settings.data_dir)
    linear_key = "lin_api_dev_" + secrets.token_hex(8)
    linear = LinearStandIn(api_key=linear_key)
    linear.start()
    linear.add_issue("CONVI-6259")
    try:
        settings = settings.model_copy(update={"slack_signing_secret": SecretStr(secret),
                                               "slack_bot_token": SecretStr(token), "slack_api_url": emu.api_url,
                                               "slack_app_token": SecretStr(app_token) if app_token else None,
                                               "linear_api_key": SecretStr(linear_key), "linear_api_url": linear.url})
        rt.settings = settings
        metrics = ops.metrics if ops is not None else None
        client = await connect_temporal(settings, rt.temporal_address)
        deps = slack_deps(rt, client, slack_web_client(settings, metrics))
        token_check = TokenCheck(deps.client)
        await token_check.check()
        app = slack_app(settings, deps, token_check, metrics)
        worker_ready = asyncio.Event()
        worker = asyncio.create_task(run_worker_until(rt, stop, ready=lambda _: worker_ready.set(), ops=ops))
        if ops is not None:
            ops.metrics.watch_state(rt.pool)
        monitor, poster = monitoring(settings, deps, metrics)
        watching = asyncio.create_task(run_monitor(monitor, poster, stop, min(rt.config.monitor.interval_s, 5.0),
                                                   metrics.observe_tick if metrics is not None else None))
        try:
            await asyncio.wait([asyncio.create_task(worker_ready.wait()), worker], return_when=asyncio.FIRST_COMPLETED)
            async with _connected(app, emu, app_token) as where:
                if ops is not None:
                    ops.readiness.ready()
                print(_banner(rt, settings, time.monotonic() - began, where), flush=True)
                console = Console(emu, default_user="U_ALICE", default_channel="C_OPS", output=sys.stdout)
                if script is not None:
                    return await console.run_script(script)
                if ready_exit:
                    return 0
                if sys.stdin.isatty():
                    await console.run_interactive()
                else:
                    print("Press Ctrl-C to stop.", flush=True)
                    await stop.wait()
                return 0
        finally:
            stop.set()
            await token_check.close()
            await app.shepherd_background.drain()
            await watching
            await worker
            deps.heavy.close()
    finally:
        emu.close()
        linear.stop()


def run_dev(settings: Settings, *, scale: float | None, seed: int | None, ready_exit: bool,
            script: Path | None = None, socket_mode: bool = False, reset: bool = False) -> int:
    began = time.monotonic()

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        ops = Ops()
        async with ops_server(ops, "127.0.0.1", settings.metrics_port or 0) as bound:
            if bound is not None:
                print(f"shepherd dev: /metrics, /healthz and /readyz on http://127.0.0.1:{bound}", flush=True)
            with open_runtime(settings, temporal=True, scale=scale, seed=seed, reset=reset) as rt:
                code = await _session(rt, settings, began, ready_exit=ready_exit, script=script, stop=stop,
                                      socket=socket_mode, ops=ops)
                if not ready_exit and script is None:
                    print("\nstopping the embedded stack ...", flush=True)
                return code

    return asyncio.run(main())
