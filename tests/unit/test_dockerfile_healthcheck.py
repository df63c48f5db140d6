"""The Dockerfile's HEALTHCHECK: healthy while /healthz answers on the metrics port, unhealthy when nothing does."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from pathlib import Path

from bot.ops.server import Ops, ops_server

ROOT = Path(__file__).resolve().parents[2]


def healthcheck_script() -> str:
    text = (ROOT / "Dockerfile").read_text()
    found = re.search(r'HEALTHCHECK [^\n]*\\\n\s+CMD \["python", "-c", (".*")\]', text)
    assert found, "no HEALTHCHECK CMD [\"python\", \"-c\", ...] in the Dockerfile"
    return str(json.loads(found.group(1)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def check(port: int) -> int:
    env = {**os.environ, "SHEPHERD_METRICS_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", healthcheck_script(), env=env)
    return await proc.wait()


async def test_healthy_while_healthz_answers_and_unhealthy_when_nothing_does() -> None:
    port = free_port()
    async with ops_server(Ops(), "127.0.0.1", port) as bound:
        assert bound == port
        assert await check(port) == 0
    assert await check(port) == 1
