"""SHEPHERD_LOG_FORMAT=json: one JSON object a line, with the job, workflow, user and command where known."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.errors import ConfigError
from bot.ops.logs import JsonFormatter, configure_logging, log_context
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("bot.monitor.service", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_line_is_one_json_object_with_level_logger_and_message() -> None:
    line = JsonFormatter().format(record("monitor: reading %s failed", "b-1"))
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["level"] == "warning" and doc["logger"] == "bot.monitor.service"
    assert doc["message"] == "monitor: reading b-1 failed"
    assert not {"job_id", "workflow_id", "user", "command"} & set(doc)


async def test_the_context_names_the_job_user_and_command_and_each_task_keeps_its_own() -> None:
    async def one(job: str) -> dict[str, str]:
        with log_context(job_id=job, user="U_ALICE", command="/backfill"):
            await asyncio.sleep(0.01)
            return dict(json.loads(JsonFormatter().format(record("tick"))))

    a, b = await asyncio.gather(one("b-1"), one("p-2"))
    assert (a["job_id"], b["job_id"]) == ("b-1", "p-2")
    assert a["user"] == "U_ALICE" and a["command"] == "/backfill"
    assert "job_id" not in json.loads(JsonFormatter().format(record("after")))


def test_an_exception_stays_in_the_same_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError as err:
        doc = json.loads(JsonFormatter().format(record("failed", exc=err)))
    assert "RuntimeError: boom" in doc["exception"]


def test_no_secret_in_a_json_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEPHERD_SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("SHEPHERD_POSTGRES_DSN", "postgresql://u:hunter2@db/x")
    settings = Settings()
    try:
        raise ValueError(f"could not connect with {settings.postgres_dsn!r}")
    except ValueError as err:
        line = JsonFormatter().format(record("settings %s token %s", settings, settings.slack_bot_token, exc=err))
    assert "very-secret" not in line and "hunter2" not in line
    assert isinstance(settings.slack_bot_token, SecretStr)


def test_an_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="SHEPHERD_LOG_FORMAT='xml': use text or json"):
        configure_logging("xml")


def test_the_cli_logs_json_lines_and_refuses_an_unknown_format(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SHEPHERD_LOG_FORMAT": "json",
           "SHEPHERD_POSTGRES_DSN": "postgresql://u:hunter2@127.0.0.1:1/x",
           "SHEPHERD_CONFIG_PATH": str(tmp_path / "absent.yml")}
    bad = subprocess.run([sys.executable, "-m", "bot.cli.main", "plan", "purge", "hilton"], cwd=ROOT, env={
        **env, "SHEPHERD_LOG_FORMAT": "xml"}, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "use text or json" in bad.stderr and "Traceback" not in bad.stderr
    code = ("import logging, sys; from bot.ops.logs import configure_logging, log_context;"
            "configure_logging('json'); log = logging.getLogger('bot.x');"
            "exec('with log_context(job_id=\"b-7\"):\\n log.warning(\"hello %s\", 1)')")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    doc = json.loads(done.stderr.strip())
    assert doc["message"] == "hello 1" and doc["job_id"] == "b-7" and doc["logger"] == "bot.x"
