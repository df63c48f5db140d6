"""Operations on real processes: `shepherd serve` on the embedded stack and a `shepherd worker` beside it.

While a backfill runs, /metrics shows the job, the windows running, the ack latency of the command and
the Slack calls; /readyz names Postgres, Temporal and the worker's task queue; the worker exports the
Temporal SDK's own metrics; SIGTERM stops both with exit 0 and no traceback.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from bot.embedded.demo import DemoSpec
from bot.embedded.stack import temporal_binary
from tests.integration.serve_proc import (
    ROOT,
    Serve,
    clean_env,
    kill_servers,
    new_data_dir,
    pg,
    standin,
    write_config,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
SPEC = DemoSpec(scale=0.001, seed=7)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format (None when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def workflow_ids(address: str, query: str) -> list[str]:
    """`temporal workflow list --query QUERY`: the workflow ids it finds."""
    done = subprocess.run([temporal_binary(), "workflow", "list", "--address", address, "--query", query,
                           "--output", "json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout or "[]")
    return sorted(w["execution"]["workflowId"] for w in found)


async def until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


async def test_metrics_readiness_and_clean_stop_of_serve_and_worker() -> None:
    data = new_data_dir()
    data.mkdir(parents=True)
    config = write_config(data, SPEC, monitor={"interval_s": 1}, backfill={"pause_between_days_s": 0.5})
    emu = standin()
    serve = worker = None
    try:
        serve = Serve(data, emu, config, "--scale", str(SPEC.scale), "--seed", str(SPEC.seed))
        emu.app_url = serve.ready()
        assert serve.ops_url is not None, serve.output
        async with httpx.AsyncClient(base_url=serve.ops_url, timeout=30) as ops:
            assert (await ops.get("/healthz")).status_code == 200

            async def ready() -> str | None:
                r = await ops.get("/readyz")
                return r.text if r.status_code == 200 else None

            body = await until(ready, 180, "serve ready")
            assert "postgres: ok" in body and "temporal: ok" in body and "task_queue: ok" in body

            assert (await emu.slash("U_ALICE", "C_OPS", "/backfill", "hilton,marriott --window 5d")).status == 200

            async def running() -> str | None:
                text = (await ops.get("/metrics")).text
                busy = (sample(text, "shepherd_jobs", kind="backfill", state="running") == 1
                        and (sample(text, "shepherd_activities_running", activity="reindex_window") or 0) >= 1
                        and (sample(text, "shepherd_windows", kind="backfill", state="running") or 0) >= 1)
                return text if busy else None

            text = await until(running, 240, "a running backfill in /metrics")
            assert (sample(text, "shepherd_ack_seconds_count", command="/backfill") or 0) >= 1
            assert (sample(text, "shepherd_slack_calls_total", result="ok") or 0) >= 1
            assert sample(text, "shepherd_outbox_depth") is not None
            assert sample(text, "shepherd_outbox_oldest_age_seconds") is not None
            assert (sample(text, "shepherd_monitor_tick_seconds_count") or 0) >= 1

            async def rate() -> float | None:
                value = sample((await ops.get("/metrics")).text, "shepherd_rows_per_second", kind="backfill")
                return value if value and value > 0 else None

            assert await until(rate, 180, "rows per second above 0") > 0

            # the job is found in Temporal by its search attributes, with the real `temporal` CLI
            stack = json.loads((data / "stack.json").read_text())
            [(job_id, workflow_id)] = pg(data, "SELECT id, workflow_id FROM shepherd.jobs WHERE kind = 'backfill'")
            assert workflow_ids(stack["temporal"], "ShepherdCustomers='hilton' AND ShepherdKind='backfill'") == [
                workflow_id]
            windows = workflow_ids(stack["temporal"], "ShepherdCustomers='hilton' AND ShepherdKind='backfill-window'")
            assert windows and all(w.startswith(f"backfill:{job_id}:hilton:") for w in windows)
            assert workflow_ids(stack["temporal"], f"ShepherdJobId='{job_id}' AND ShepherdKind='backfill'"
                                " AND ShepherdRequester='U_ALICE'") == [workflow_id]
            assert workflow_ids(stack["temporal"], "ShepherdCustomers='oportun'") == []

            # a worker beside serve, on its own task queue, against the same Postgres and Temporal
            worker_port, sdk_port = free_port(), free_port()
            env = clean_env()
            env.update(SHEPHERD_POSTGRES_DSN=stack["postgres"], SHEPHERD_TEMPORAL_ADDRESS=stack["temporal"],
                       SHEPHERD_CONFIG_PATH=str(data / "shepherd.yml"), SHEPHERD_TEMPORAL_TASK_QUEUE="ops-test",
                       SHEPHERD_METRICS_HOST="127.0.0.1", SHEPHERD_METRICS_PORT=str(worker_port),
                       SHEPHERD_SDK_METRICS_PORT=str(sdk_port), SHEPHERD_DATA_DIR=str(data.parent / "worker"))
            worker = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "worker"], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{worker_port}", timeout=30) as w:
                async def worker_ready() -> str | None:
                    if worker is not None and worker.poll() is not None:
                        raise AssertionError(f"worker exited {worker.returncode}: {worker.stderr.read()}")
                    try:
                        r = await w.get("/readyz")
                    except httpx.TransportError:
                        return None
                    return r.text if r.status_code == 200 else None

                body = await until(worker_ready, 180, "worker ready")
                assert "task_queue: ok" in body and "postgres: ok" in body
                async with httpx.AsyncClient(timeout=30) as sdk:
                    sdk_text = (await sdk.get(f"http://127.0.0.1:{sdk_port}/metrics")).text
                assert "temporal_" in sdk_text
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
            assert "Traceback" not in out + err

        serve.proc.send_signal(signal.SIGTERM)
        assert serve.stop() == 0, serve.output[-3000:]
        assert "Traceback" not in serve.output, serve.output[-3000:]
        assert not re.search(r"CancelledError", serve.output), serve.output[-3000:]
        serve = None
    finally:
        if serve is not None and serve.proc.poll() is None:
            serve.kill()
        if worker is not None and worker.poll() is None:
            worker.kill()
        emu.close()
        kill_servers(data)
        shutil.rmtree(data.parent, ignore_errors=True)
