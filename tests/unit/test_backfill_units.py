"""The backfill engine's pure parts: plan checks, window order, resume points, timeouts, batching."""

from __future__ import annotations

import argparse
import re
import threading
import time
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from bot.backfill.activities import last_heartbeat, resume_point
from bot.backfill.insert_pipeline import InsertPipeline
from bot.backfill.reindex import Reindexer
from bot.backfill.service import check_backfill_plan, window_specs
from bot.backfill.workflows import BackfillJob, start_to_close, window_workflow_id
from bot.cli.worker import add_worker_parser, apply_worker_args
from bot.config import parse_config
from bot.embedded.demo import DemoSpec, demo_config
from bot.errors import UserInputError
from bot.jobs.ids import new_job_id
from bot.settings import Settings
from bot.temporal.models import BackfillJobInput
from commands.models import CustomerRef, DateRange, DayVolume
from commands.schedule import plan_backfill

CONFIG = parse_config(demo_config(DemoSpec(scale=0.01)))
RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 2, 22))


def plan(*customers: tuple[str, str, int], window: int | None = None) -> Any:
    volumes = [DayVolume(customer=name, day=d, conversations=n) for name, _, n in customers for d in RANGE.each_day()]
    refs = [CustomerRef(name=name, cluster=cluster) for name, cluster, _ in customers]
    return plan_backfill(volumes, refs, RANGE, CONFIG.windows, CONFIG.throughput, 4, window_override=window)


def test_good_plan_passes_and_windows_start_largest_first() -> None:
    p = plan(("hilton", "chat-prod", 900), ("care-oregon", "us-west-2", 100))
    check_backfill_plan(p, CONFIG)
    specs = window_specs(p)
    assert [s.conversations for s in specs] == sorted((s.conversations for s in specs), reverse=True)
    assert specs[0].customer == "hilton" and specs[0].key == f"hilton:{specs[0].start}:{specs[0].end}"
    assert {s.key for s in specs} == {f"{w.customer}:{w.start}:{w.end}" for w in p.windows}


def test_bad_plans_are_refused() -> None:
    p = plan(("hilton", "chat-prod", 900), window=5)
    with pytest.raises(UserInputError, match="no windows"):
        check_backfill_plan(p.model_copy(update={"customers": ()}), CONFIG)
    first = p.customers[0]
    w0, w1 = first.windows[0], first.windows[1]
    overlap = replace(w1, start=w0.end)
    with pytest.raises(UserInputError, match="overlap"):
        check_backfill_plan(p.model_copy(update={"customers": (first.model_copy(update={"windows": (w0, overlap)}),)}),
                            CONFIG)
    mars = tuple(replace(w, cluster="mars") for w in first.windows)
    with pytest.raises(UserInputError, match="unknown cluster mars"):
        check_backfill_plan(p.model_copy(update={"customers": (first.model_copy(update={"windows": mars}),)}), CONFIG)
    backwards = replace(w0, end=w0.start - timedelta(days=1))
    with pytest.raises(UserInputError, match="ends before it starts"):
        check_backfill_plan(p.model_copy(update={"customers": (first.model_copy(update={"windows": (backwards,)}),)}),
                            CONFIG)


def test_job_ids_are_short_and_workflow_ids_derive_from_them() -> None:
    job = new_job_id("backfill")
    assert re.fullmatch(r"b-[0-9a-f]{6}", job) and re.fullmatch(r"p-[0-9a-f]{6}", new_job_id("purge"))
    spec = window_specs(plan(("hilton", "chat-prod", 900), window=5))[0]
    assert window_workflow_id(job, spec) == f"backfill:{job}:hilton:{spec.start}:{spec.end}"


def test_resume_point_comes_from_the_last_heartbeat() -> None:
    start, end = date(2026, 1, 3), date(2026, 1, 7)
    assert last_heartbeat(None) == {} and last_heartbeat(["not a dict"]) == {}
    assert resume_point({}, start, end) == (None, 0)
    beat = last_heartbeat([{"day": "2026-01-05", "done_before_day": 420, "ReindexedConversations": 500}])
    assert resume_point(beat, start, end) == (date(2026, 1, 5), 420)
    assert resume_point({"day": "2026-01-03", "done_before_day": 7}, start, end) == (start, 0)
    assert resume_point({"day": "2026-02-01"}, start, end)[0] == end  # clamped into the window


def test_start_to_close_is_twice_the_estimate_with_a_floor() -> None:
    assert start_to_close(3.5) == timedelta(hours=7)
    assert start_to_close(0.001) == timedelta(minutes=2)


def test_child_input_is_window_input_or_the_configured_mapping() -> None:
    spec = window_specs(plan(("hilton", "chat-prod", 900), window=5))[0]
    inp = BackfillJobInput(job_id="b-123456", plan_hash="h", windows=[spec], parallel=1, heartbeat_timeout_s=7)
    own = BackfillJob()._child_input(inp, spec)
    assert (own.customer, own.start, own.heartbeat_timeout_s) == ("hilton", spec.start, 7)
    inp.input_mapping = {"customerName": "customer", "from": "start", "to": "end"}
    assert BackfillJob()._child_input(inp, spec) == {"customerName": "hilton", "from": spec.start, "to": spec.end}


def test_worker_options_override_settings() -> None:
    parser = argparse.ArgumentParser()
    add_worker_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["worker", "--address", "temporal:7233", "--task-queue", "bf", "--tls"])
    settings = apply_worker_args(Settings(temporal_task_queue="shepherd"), args)
    assert (settings.temporal_address, settings.temporal_task_queue, settings.temporal_tls) == (
        "temporal:7233", "bf", True)
    assert apply_worker_args(Settings(), parser.parse_args(["worker"])).temporal_task_queue == "shepherd"


# ---- batching: COPY rows -> batches of batch_rows, one insert in flight -----------------------


class FakeCopy:
    def __init__(self, rows: int, fail_at: int | None = None) -> None:
        self.rows, self.fail_at = rows, fail_at

    def __enter__(self) -> FakeCopy:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __iter__(self) -> Any:
        for i in range(self.rows):
            if i == self.fail_at:
                raise RuntimeError("connection lost")
            yield memoryview(b"hilton,2026-01-03,%d\n" % i)


class FakeConn:
    def __init__(self, copy: FakeCopy) -> None:
        self.copy_ = copy

    def cursor(self) -> Any:
        conn = self

        class Cursor:
            def copy(self, query: Any, params: Any) -> FakeCopy:
                return conn.copy_

        return Cursor()


class SlowClickHouse:
    database = "db"

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()

    def insert_csv(self, table: str, columns: Any, data: bytes) -> int:
        with self.lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        time.sleep(0.01)
        rows = data.count(b"\n")
        assert data.endswith(b"\n")
        with self.lock:
            self.inflight -= 1
            self.batches.append(rows)
        return rows


def stream(rows: int, batch_rows: int, fail_at: int | None = None,
           ch: SlowClickHouse | None = None) -> tuple[SlowClickHouse, list[int], int]:
    ch = ch or SlowClickHouse()
    reported: list[int] = []
    r = Reindexer(CONFIG, None, ch, batch_rows=batch_rows)
    with InsertPipeline(1) as pipe:
        batcher = r._batcher(pipe, "scorecards", ["a"], reported.append)
        batcher.read(FakeConn(FakeCopy(rows, fail_at)), r.selects.cards, {})
        batcher.flush()
    return ch, reported, sum(reported)


def test_stream_inserts_batches_of_batch_rows_one_at_a_time() -> None:
    ch, reported, n = stream(2_500, 1_000)
    assert n == 2_500 and ch.batches == [1_000, 1_000, 500] and reported == ch.batches
    assert ch.max_inflight == 1
    ch, reported, n = stream(0, 1_000)
    assert n == 0 and ch.batches == [] and reported == []


def test_a_failed_read_waits_for_the_insert_in_flight() -> None:
    ch = SlowClickHouse()
    with pytest.raises(RuntimeError, match="connection lost"):
        stream(2_500, 1_000, fail_at=1_500, ch=ch)
    assert ch.batches == [1_000] and ch.inflight == 0  # the first batch's insert ended before the error surfaced
