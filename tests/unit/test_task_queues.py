"""Per-cluster task queues: the config, the queues a worker polls, where windows go, who ran them."""

from __future__ import annotations

import argparse
import dataclasses
import re
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.converter import DataConverter

from bot.backfill.service import JobService, window_specs
from bot.cli.worker import add_worker_parser, apply_worker_args, worker_queues
from bot.config import parse_config
from bot.embedded.demo import DemoSpec, demo_config
from bot.errors import ConfigError, UserInputError
from bot.monitor.job_view import snapshots
from bot.settings import Settings
from bot.slack import status_blocks
from bot.temporal.models import BackfillProgress, WindowState
from bot.temporal.window_table import specs_of
from commands.models import CustomerRef, DateRange, DayVolume
from commands.schedule import plan_backfill

RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 22))


def config_with(queues: dict[str, str], **backfill: Any) -> Any:
    raw = demo_config(DemoSpec(scale=0.01))
    for cluster in raw["clusters"]:
        if cluster["name"] in queues:
            cluster["task_queue"] = queues[cluster["name"]]
    raw["backfill"] = backfill
    return parse_config(raw)


def test_a_cluster_names_its_queue_and_a_bad_name_is_refused() -> None:
    config = config_with({"voice-prod": "shepherd-usw2", "chat-prod": "shepherd-usw2", "us-east-2": "shepherd-use2"})
    assert config.task_queues() == ("shepherd-usw2", "shepherd-use2")
    assert config.cluster_queue("voice-prod") == "shepherd-usw2" and config.cluster_queue("eu-west-1") is None
    with pytest.raises(ConfigError) as info:
        config_with({"chat-prod": "bad queue!"})
    assert "clusters.1.task_queue" in info.value.reply() and "bad queue!" in info.value.reply()


def test_a_worker_polls_the_control_queue_and_every_clusters_queue_unless_told() -> None:
    config = config_with({"voice-prod": "shepherd-usw2", "us-east-2": "shepherd-use2"})
    assert worker_queues(Settings(), config) == ["shepherd", "shepherd-usw2", "shepherd-use2"]
    parser = argparse.ArgumentParser()
    add_worker_parser(parser.add_subparsers(dest="command"))
    only = apply_worker_args(Settings(), parser.parse_args(["worker", "--queues", "shepherd-usw2, shepherd-usw2"]))
    assert worker_queues(only, config) == ["shepherd-usw2"]
    for bad in (",", "a b"):
        with pytest.raises(UserInputError) as info:
            worker_queues(Settings(worker_queues=bad), config)
        assert "usage: shepherd worker" in info.value.reply()


def backfill_plan() -> Any:
    refs = [CustomerRef(name="hilton", cluster="chat-prod"), CustomerRef(name="spirit", cluster="voice-prod")]
    volumes = [DayVolume(customer=r.name, day=d, conversations=500) for r in refs for d in RANGE.each_day()]
    config = config_with({})
    return plan_backfill(volumes, refs, RANGE, config.windows, config.throughput, 2, window_override=10)


def job_input(config: Any, plan: Any) -> Any:
    client = SimpleNamespace(data_converter=DataConverter.default)  # what _job_input sizes the input with
    return JobService(client, None, config, "shepherd")._job_input(  # type: ignore[arg-type]
        "b-1", plan, window_specs(plan), 2, run=1)


def test_each_window_goes_to_its_clusters_queue_unless_an_in_house_queue_is_set() -> None:
    plan = backfill_plan()
    config = config_with({"voice-prod": "shepherd-usw2"})
    inp = job_input(config, plan)
    assert {(w.cluster, w.task_queue) for w in specs_of(inp.table)} == {
        ("chat-prod", None), ("voice-prod", "shepherd-usw2")}
    inhouse = config_with({"voice-prod": "shepherd-usw2"}, window_task_queue="theirs")
    inp = job_input(inhouse, plan)
    assert {w.task_queue for w in specs_of(inp.table)} == {None} and inp.window_task_queue == "theirs"


def test_the_status_and_summary_say_which_worker_ran_each_window() -> None:
    windows = [WindowState(key=str(i), customer="hilton", cluster="chat-prod", start=f"2026-01-0{i + 1}",
                           end=f"2026-01-0{i + 1}", state="done", done=10, total=10, worker=f"{100 + i % 2}@host",
                           started="2026-02-01T00:00:00+00:00", finished="2026-02-01T00:10:00+00:00")
               for i in range(3)]
    windows.append(WindowState(key="3", customer="hilton", cluster="chat-prod", start="2026-01-05", end="2026-01-05",
                               state="running", done=4, total=10, worker="101@host"))
    p = BackfillProgress(job_id="b-123456", state="running", parallel=2, paused=False, start_at=None, windows=windows)
    figures = status_blocks.JobFigures(40.0, 34, 40, 1.0, None)
    status = status_blocks.backfill_status("b-123456", "U_ALICE", "running", snapshots(p), {}, figures,
                                           datetime(2026, 2, 1, tzinfo=UTC), listed=12)
    assert "worker" in str(status.blocks) and "101@host" in str(status.blocks)
    summary = status_blocks.backfill_summary("b-123456", "done", snapshots(p)[:3], None)
    assert "2: 100@host (2 windows), 101@host (1 window)" in str(summary.blocks)


def test_a_purge_summary_names_the_workers_of_each_cluster() -> None:
    clusters = {"voice-prod": (2, 2, 30, 30), "chat-prod": (1, 1, 5, 5)}
    summary = status_blocks.purge_summary("p-123456", "done", clusters, None,
                                          {"voice-prod": ["7@usw2", "8@usw2", "7@usw2"], "chat-prod": []})
    text = str(summary.blocks)
    assert "voice-prod: 2/2 chunks, 30 rows deleted (on 7@usw2, 8@usw2)" in text
    assert re.search(r"chat-prod: 1/1 chunks, 5 rows deleted(?! \(on)", text)


def test_a_running_job_waits_on_its_own_queue_and_its_unfinished_clusters_queues() -> None:
    from bot.monitor.queue_watch import backfill_queues, no_worker_text, purge_queues
    from bot.temporal.models import ChunkState, PurgeProgress

    config = config_with({"voice-prod": "shepherd-usw2", "chat-prod": "shepherd-chat"})
    windows = [WindowState(key="a", customer="spirit", cluster="voice-prod", start="2026-01-01", end="2026-01-05"),
               WindowState(key="b", customer="hilton", cluster="chat-prod", start="2026-01-01", end="2026-01-05",
                           state="done"),
               WindowState(key="c", customer="oportun", cluster="us-east-2", start="2026-01-01", end="2026-01-05",
                           state="running")]
    p = BackfillProgress(job_id="b-1", state="running", parallel=2, paused=False, start_at=None, windows=windows)
    assert backfill_queues(p, config, "shepherd") == {"shepherd", "shepherd-usw2"}
    p.state = "paused"
    assert backfill_queues(p, config, "shepherd") == set()
    chunks = {"voice-prod": [ChunkState(0, "spirit", "scores", "2026-01-01", "2026-01-01", 5, state="done")],
              "chat-prod": [ChunkState(0, "hilton", "scores", "2026-01-01", "2026-01-01", 5)]}
    purge = PurgeProgress(job_id="p-1", state="running", paused=False, stop_reason=None, clusters=chunks)
    assert purge_queues(purge, config, "shepherd") == {"shepherd", "shepherd-chat"}
    assert no_worker_text("shepherd-usw2", 125) == (
        ":warning: no worker on shepherd-usw2 for 2 min: the job waits until one polls it"
        " (`shepherd worker --queues shepherd-usw2`)")


def test_the_window_columns_carry_each_clusters_queue_and_each_windows_worker() -> None:
    from bot.temporal.window_table import states_of, table_of, window_states

    plan = backfill_plan()
    config = config_with({"voice-prod": "shepherd-usw2"})
    again = specs_of(job_input(config, plan).table)
    assert {(s.cluster, s.task_queue) for s in again} == {("chat-prod", None), ("voice-prod", "shepherd-usw2")}
    assert table_of([dataclasses.replace(s, task_queue=None) for s in again]).queues == []  # as tables always were
    windows = window_states(again, None, lambda s: s.key)
    windows[0].state, windows[0].started, windows[0].worker = "done", "2026-02-01T00:00:00+00:00", "7@usw2"
    states = states_of(again, windows, "2026-02-01T00:00:00+00:00")
    assert states.workers == ["7@usw2"] and states.worker[0] == 0
    assert window_states(again, states, lambda s: s.key)[0].worker == "7@usw2"
