"""`shepherd doctor` as a real process against real servers: the test Postgres, the Temporal dev
server, ClickHouse (chdb behind its HTTP interface) and the Slack stand-in."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.embedded.demo import DemoSpec, demo_config
from bot.standins.slack.emulator import SlackEmulator
from tests.integration.test_backfill_crash import ROOT
from tests.integration.test_worker_fleet import ChdbServer

pytestmark = pytest.mark.asyncio(loop_scope="session")
TOKEN = "xoxb-doctor-secret-token"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def doctor(env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "bot.cli.main", "doctor"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def line(out: str, *words: str) -> str:
    return next((ln for ln in out.splitlines() if all(w in ln for w in words)), "")


async def test_doctor_names_what_answers_and_what_does_not(temporal_env: Any, pg_server_dsn: str,
                                                           tmp_path: Path) -> None:
    chdb = ChdbServer(tmp_path)
    raw = demo_config(DemoSpec(scale=0.002))
    closed = closed_port()
    for cluster in raw["clusters"]:
        cluster["regions"] = [{**r, "engine": "clickhouse", "host": "127.0.0.1", "tls": False,
                               "port": closed if r["name"] == "us-east-1" else chdb.port}
                              for r in cluster["regions"]]  # voice-prod's first region is down, its second answers
    (tmp_path / "shepherd.yml").write_text(yaml.safe_dump(raw))
    import clickhouse_connect

    ch = clickhouse_connect.get_client(host="127.0.0.1", port=chdb.port, username="default", password="",
                                       compress=False)
    for database in {r["database"] for c in raw["clusters"] for r in c["regions"]}:
        ch.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    with SlackEmulator(signing_secret="s", bot_token=TOKEN) as emu:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")},
               "SHEPHERD_POSTGRES_DSN": pg_server_dsn, "SHEPHERD_CONFIG_PATH": str(tmp_path / "shepherd.yml"),
               "SHEPHERD_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
               "SHEPHERD_SLACK_BOT_TOKEN": TOKEN, "SHEPHERD_SLACK_API_URL": emu.api_url}
        try:
            code, out = doctor(env)
            assert code == 0, out
            assert "ok" in line(out, "postgres") and "ok" in line(out, "temporal", "default")
            assert "ok" in line(out, "slack") and "ok" in line(out, "chat-prod/local")
            assert "down" in line(out, "voice-prod/us-east-1") and "ok" in line(out, "voice-prod/us-west-2")
            assert "no worker polling" in line(out, "task queue", "shepherd")
            assert "everything required answers" in out
            # Temporal unreachable and a cluster whose only region is closed: both named, exit 1.
            raw["clusters"] = [{**c, "regions": [{**r, "port": closed} for r in c["regions"]]}
                               if c["name"] == "chat-prod" else c for c in raw["clusters"]]
            (tmp_path / "shepherd.yml").write_text(yaml.safe_dump(raw))
            code, out = doctor({**env, "SHEPHERD_TEMPORAL_ADDRESS": f"127.0.0.1:{closed_port()}"})
            assert code == 1, out
            assert "DOWN" in line(out, "temporal") and "DOWN" in line(out, "chat-prod/local")
            assert "ok" in line(out, "postgres")
            assert "2 required connection(s) down" in out
        finally:
            chdb.stop()
    assert TOKEN not in out and "Traceback" not in out
