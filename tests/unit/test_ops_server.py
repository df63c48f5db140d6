"""The ops server: /healthz while alive; /readyz 503 naming what is not ready; /metrics in Prometheus text."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.ops.acks import command_of, user_of
from bot.ops.server import Ops, ops_server


async def test_readyz_names_what_is_not_ready_and_turns_ready() -> None:
    ops = Ops()
    broken = {"postgres": True}

    async def postgres() -> None:
        if broken["postgres"]:
            raise ConnectionError("connection refused at db:5432")

    async def temporal() -> None:
        await asyncio.sleep(10)  # never answers

    ops.readiness.timeout_s = 0.2
    ops.readiness.add("postgres", postgres)
    ops.readiness.add("temporal", temporal)
    async with ops_server(ops, "127.0.0.1", 0) as port, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/healthz")).status_code == 200
        r = await http.get("/readyz")
        assert r.status_code == 503
        assert "postgres: ConnectionError: connection refused at db:5432" in r.text
        assert "temporal: no answer in 0.2 s" in r.text and "process: starting" in r.text
        broken["postgres"] = False
        ops.readiness.checks.pop("temporal")
        ops.readiness.ready()
        r = await http.get("/readyz")
        assert r.status_code == 200 and r.text.startswith("ready") and "postgres: ok" in r.text
        ops.readiness.stopping = True
        assert "process: stopping" in (await http.get("/readyz")).text
        ops.metrics.observe_tick(0.3)
        metrics = await http.get("/metrics")
        assert metrics.status_code == 200 and "shepherd_monitor_tick_seconds_count 1.0" in metrics.text


async def test_a_taken_port_is_said_and_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    async with ops_server(Ops(), "127.0.0.1", 0) as port, ops_server(Ops(), "127.0.0.1", port or 0) as second:
        assert second is None
    assert "are off" in caplog.text


@pytest.mark.parametrize(("body", "command", "user"), [
    ({"command": "/backfill", "user_id": "U_ALICE"}, "/backfill", "U_ALICE"),
    ({"type": "block_actions", "user": {"id": "U_BOB"}}, "block_actions", "U_BOB"),
    ({"type": "view_submission", "view": {"callback_id": "backfill_modal"}, "user": {"id": "U_A"}},
     "view_submission:backfill_modal", "U_A"),
    ({"type": "event_callback", "event": {"type": "app_home_opened", "user": "U_C"}}, "event:app_home_opened", "U_C"),
    ("not a dict", "other", None),
])
def test_ack_labels_are_bounded(body: object, command: str, user: str | None) -> None:
    assert command_of(body) == command and user_of(body) == user
