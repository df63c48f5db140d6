"""Property tests past the grammar (issue 19): commands with extreme values (dates at the calendar's limits,
huge counts, every option combination) parsed, then checked and planned against the demo data on the
embedded stack, yield a plan (or a report) or a clear UserInputError, never another exception, each
within a time bound."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.errors import UserInputError
from bot.planning import BackfillRequest, PlanningService, PurgeRequest
from bot.registry import CustomerRegistry
from bot.verify.service import VerifyService
from commands import limits
from commands import verbs as v
from commands.grammar import ParseError, parse

SECONDS = 20.0  # one command, checked and planned, on 2 shared cores
NOW = datetime(2026, 2, 24, 9, 30, tzinfo=UTC)  # two days after the demo data's last day

CUSTOMERS = st.sampled_from(["hilton", "oportun", "all", "hilton,oportun", "nobody-such", "spirit,united-east"])
DATES = st.one_of(st.dates(), st.dates(date(2025, 12, 1), date(2026, 3, 31)),
                  st.sampled_from([date.min, date.max, date(2000, 1, 1), date(1999, 12, 31)])).map(date.isoformat)
COUNTS = st.one_of(st.integers(-3, 40), st.integers(0, 10**25), st.sampled_from([1600, 1601, 16, 17])).map(str)
MOMENTS = st.one_of(
    st.datetimes(timezones=st.sampled_from([UTC, None])).map(lambda d: d.isoformat(timespec="minutes")),
    st.sampled_from(["sat 22:00", "mon 00:00", "sun 23:59", "9999-12-31T23:59-23:00", "0001-01-01T00:00+23:00",
                     "2026-02-24T09:29", "2026-03-10T09:30", "2026-03-10T09:31"]))
OPTIONS = st.fixed_dictionaries({}, optional={
    "--from": DATES, "--to": DATES, "--window": st.one_of(st.just("auto"), st.integers(1, 3660).map("{}d".format)),
    "--parallel": COUNTS, "--at": MOMENTS, "--types": st.sampled_from(["1-3", "0", "4-9", "1", "255", "0-255", "2,3"]),
    "--max-rows": COUNTS, "--clusters": st.sampled_from(["all", "chat-prod", "us-east-2", "mars", "chat-prod,mars"]),
})
BACKFILL_OPTS = {"--from", "--to", "--window", "--parallel", "--at"}
PURGE_OPTS = {"--from", "--to", "--types", "--max-rows", "--clusters"}
VERIFY_OPTS = {"--from", "--to", "--types"}


@pytest.fixture(scope="module")
def stack(make_demo: Any) -> tuple[PlanningService, VerifyService]:
    demo = make_demo(scale=0.002)
    registry = CustomerRegistry.from_config(demo.config)
    return (PlanningService(demo.config, registry, demo.pool, demo.lookup),
            VerifyService(demo.config, registry, demo.pool, demo.lookup))


def _text(target: str, opts: dict[str, str], allowed: set[str], head: str = "") -> str:
    words = [head, target] if head else [target]
    for key, value in opts.items():
        if key in allowed:
            words += [key, f"'{value}'"]
    return " ".join(words)


def _run(stack: tuple[PlanningService, VerifyService], cmd: v.Command) -> None:
    planning, verify = stack
    today = NOW.date()
    match cmd:
        case v.BackfillPlan(args=a) | v.BackfillRun(args=a):
            if isinstance(cmd, v.BackfillRun) and cmd.start_at is not None:
                try:
                    limits.start_moment(cmd.start_at, NOW, planning.config.limits.at_horizon_days)
                except ValueError as err:
                    raise UserInputError(str(err)) from None
            planning.registry.resolve(a.customers)
            rng = planning.range_for(a.start, a.end, today)
            plan = planning.plan_backfill(BackfillRequest(a.customers, rng, a.window_days, a.parallel), today)
            assert plan.windows and len(plan.windows) <= planning.config.limits.max_windows
            assert plan.range.start >= rng.start and plan.range.end <= rng.end
        case v.PurgePlanCmd(args=a) | v.PurgeRun(args=a):
            planning.registry.check_clusters(a.clusters)
            rng = planning.range_for(a.start, a.end, today)
            plan = planning.plan_purge(PurgeRequest(a.customers, rng, a.types, a.clusters, a.max_rows), today).plan
            assert plan.max_rows_per_mutation <= planning.config.purge.max_rows_per_mutation
            assert set(plan.types) <= set(planning.config.appeal_types)
        case v.Verify():
            report = verify.verify(cmd.customers, cmd.sample, cmd.start, cmd.end, cmd.types, seed=1, today=today)
            assert report.customers


def _check(stack: tuple[PlanningService, VerifyService], command: str, text: str) -> None:
    try:
        cmd = parse(command, text)
    except ParseError:
        event("parse error")
        return
    began = time.monotonic()
    try:
        _run(stack, cmd)
        event("planned")
    except UserInputError as err:
        event(f"refused: {err.message.split(' ')[0]}")
    assert time.monotonic() - began < SECONDS, f"{command} {text}: {time.monotonic() - began:.1f} s"


SETTINGS = settings(max_examples=100, deadline=timedelta(seconds=SECONDS * 3),
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(CUSTOMERS, OPTIONS, st.booleans())
def test_backfill_at_the_edges_plans_or_says_what_is_wrong(stack: Any, target: str, opts: dict[str, str],
                                                           run: bool) -> None:
    _check(stack, "/backfill", _text(target, opts, BACKFILL_OPTS if run else BACKFILL_OPTS - {"--at"},
                                     "" if run else "plan"))


@SETTINGS
@given(CUSTOMERS, OPTIONS, st.booleans())
def test_purge_at_the_edges_plans_or_says_what_is_wrong(stack: Any, target: str, opts: dict[str, str],
                                                        run: bool) -> None:
    _check(stack, "/purge", _text(target, opts, PURGE_OPTS, "" if run else "plan"))


@settings(max_examples=40, deadline=timedelta(seconds=SECONDS * 3), suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(CUSTOMERS, st.integers(-1, 10**6).map("sample:{}".format)), OPTIONS)
def test_verify_at_the_edges_reports_or_says_what_is_wrong(stack: Any, target: str, opts: dict[str, str]) -> None:
    _check(stack, "/verify", _text(target, opts, VERIFY_OPTS))


def test_plans_above_the_size_caps_are_refused(stack: tuple[PlanningService, VerifyService]) -> None:
    planning, _ = stack
    small = planning.config.model_copy(update={"limits": limits.Limits(max_windows=3, max_chunks=2)})
    capped = PlanningService(small, planning.registry, planning.source, planning.lookup)
    today = NOW.date()
    with pytest.raises(UserInputError, match=r"windows, more than the configured maximum of 3 \(limits.max_windows\)"):
        capped.plan_backfill(BackfillRequest(("hilton",), None, 1), today)
    with pytest.raises(UserInputError, match=r"chunks, more than the configured maximum of 2 \(limits.max_chunks\)"):
        capped.plan_purge(PurgeRequest(("oportun",)), today)
    assert len(planning.plan_backfill(BackfillRequest(("hilton",), None, 1), today).windows) > 3


def test_verify_over_the_whole_calendar_is_a_clear_refusal(stack: tuple[PlanningService, VerifyService]) -> None:
    _, verify = stack
    with pytest.raises(UserInputError, match="--from 0001-01-01 is before 2000-01-01"):
        verify.verify(None, None, date.min, date.max, today=NOW.date())
    with pytest.raises(UserInputError, match="--to 9999-12-31 is after 2027-12-31"):
        verify.verify(("hilton",), None, None, date.max, today=NOW.date())
