"""The slash-command grammar: typed commands for good input, a clear ParseError for anything else."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import verbs as v
from commands.grammar import USAGE, ParseError, help_text, parse


def test_typical_backfill() -> None:
    cmd = parse("/backfill", "hilton --window 5d")
    assert isinstance(cmd, v.BackfillRun)
    assert cmd.args.customers == ("hilton",) and cmd.args.window_days == 5 and not cmd.dry_run


def test_plan_with_everything() -> None:
    cmd = parse("/backfill", "plan hilton,marriott --from 2026-01-03 --to=2026-02-22 --parallel 8")
    assert isinstance(cmd, v.BackfillPlan)
    assert cmd.args.start == date(2026, 1, 3) and cmd.args.end == date(2026, 2, 22) and cmd.args.parallel == 8


def test_at_weekday_resolves_to_the_next_one() -> None:
    cmd = parse("/backfill", "all --at 'sat 22:00' --dry-run")
    assert isinstance(cmd, v.BackfillRun) and cmd.dry_run and cmd.args.customers is None
    assert cmd.start_at is not None and cmd.start_at.weekday == 5 and cmd.start_at.at == time(22, 0)
    friday = datetime(2026, 2, 20, 12, 0, tzinfo=UTC)
    assert cmd.start_at.resolve(friday) == datetime(2026, 2, 21, 22, 0, tzinfo=UTC)
    saturday_late = datetime(2026, 2, 21, 23, 0, tzinfo=UTC)
    assert cmd.start_at.resolve(saturday_late).date() == date(2026, 2, 28)


def test_job_commands() -> None:
    assert parse("/backfill", "status") == v.JobStatus(job=None)
    assert parse("/backfill", "cancel b-7f3a2c") == v.JobAction(action="cancel", job="b-7f3a2c")
    assert parse("/backfill", "retry b-7f3a2c --failed-only") == v.Retry(job="b-7f3a2c", failed_only=True)
    assert parse("/backfill", "throttle b-7f3a2c 4") == v.Throttle(job="b-7f3a2c", parallel=4)
    assert parse("/backfill", "throttle b-7f3a2c AUTO") == v.Throttle(job="b-7f3a2c", auto=True)


def test_parallel_auto_and_its_absence() -> None:
    auto = parse("/backfill", "hilton,united-east --parallel auto")
    assert isinstance(auto, v.BackfillRun) and auto.args.autopilot is True and auto.args.parallel is None
    fixed = parse("/backfill", "plan hilton --parallel=3")
    assert isinstance(fixed, v.BackfillPlan) and fixed.args.autopilot is False and fixed.args.parallel == 3
    unsaid = parse("/backfill", "hilton")
    assert isinstance(unsaid, v.BackfillRun) and unsaid.args.autopilot is None  # the configuration decides


def test_purge_verify_linear_shepherd() -> None:
    purge = parse("/purge", "plan oportun --types 1-3 --clusters voice-prod --max-rows 1000")
    assert isinstance(purge, v.PurgePlanCmd) and purge.args.types == (1, 2, 3) and purge.args.max_rows == 1000
    assert isinstance(parse("/purge", "all"), v.PurgeRun)
    assert parse("/verify", "sample:10").sample == 10  # type: ignore[union-attr]
    assert parse("/verify", "hilton --deep") == v.Verify(customers=("hilton",), deep=True)
    assert parse("/verify", "hilton").deep is False  # type: ignore[union-attr]
    assert parse("/verify", "repair v-7f3a2c") == v.VerifyRepair(job="v-7f3a2c")
    assert parse("/linear", "draft CONVI-6259 --jobs b-7f3a2c,p-1c2d3e").jobs == ("b-7f3a2c", "p-1c2d3e")  # type: ignore[union-attr]
    assert parse("/shepherd", "jobs") == v.Jobs()
    assert parse("/shepherd", "") == v.Help(topic=None)


BAD = [
    ("/backfill", "", None),
    ("/backfill", "plan", "missing the customers"),
    ("/backfill", "hilton --window 0d", "at least 1d"),
    ("/backfill", "hilton --window -5d", "--window"),
    ("/backfill", "hilton --window fast", "--window"),
    ("/backfill", "hilton --from 2026-02-30", "not a real calendar date"),
    ("/backfill", "hilton --from 2026-02-10 --to 2026-02-01", "after"),
    ("/backfill", "hilton --parallel 0", "at least 1"),
    ("/backfill", "hilton --parallel x", "whole number"),
    ("/backfill", "hilton --parallel autox", "--parallel 'autox' must be a whole number of windows or auto"),
    ("/backfill", "plan hilton --parallel 0", "--parallel 0 must be at least 1"),
    ("/backfill", "throttle b-7f3a2c autox", "N 'autox' must be a whole number of windows or auto"),
    ("/backfill", "hilton --at 'someday 25:00'", "--at"),
    ("/backfill", "hilton --at 'sat 25:00'", "not a time of day"),
    ("/backfill", "hilton --frobnicate", "unknown option --frobnicate"),
    ("/backfill", "hilton spirit", "unexpected"),
    ("/backfill", "hilton --window", "needs a value"),
    ("/backfill", "'hilton", "quotes"),
    ("/backfill", "cancel", "missing the job id"),
    ("/backfill", "cancel 42", "not a job id"),
    ("/backfill", "throttle b-7f3a2c", "needs a job id and a number"),
    ("/backfill", "throttle b-7f3a2c 0", "at least 1"),
    ("/backfill", "plan hilton --dry-run", "unknown option --dry-run"),
    ("/purge", "oportun --types 3-1", "--types"),
    ("/purge", "oportun --max-rows -1", "--max-rows"),
    ("/purge", "oportun --clusters 'a;b'", "not a valid name"),
    ("/verify", "sample:0", "at least 1"),
    ("/verify", "repair", "missing the verification's job id"),
    ("/verify", "repair hilton", "not a job id"),
    ("/verify", "sample:x", "whole number"),
    ("/verify", "hilton --deep=yes", "unknown option --deep"),
    ("/linear", "draft convi", "not a Linear ticket"),
    ("/linear", "draft CONVI-1 --jobs b-7f3a2c --since 2026-02-01", "not both"),
    ("/linear", "shout", "unknown /linear action"),
    ("/shepherd", "dance", "unknown /shepherd"),
    ("/deploy", "prod", "unknown command"),
]


@pytest.mark.parametrize(("command", "text", "message"), BAD)
def test_bad_input_says_what_is_wrong_and_shows_usage(command: str, text: str, message: str | None) -> None:
    if message is None:  # an empty /backfill is a request for help, not an error
        assert parse(command, text) == v.Help(topic="backfill")
        return
    with pytest.raises(ParseError) as info:
        parse(command, text)
    assert message in info.value.message
    assert info.value.usage.startswith("/")


def test_help_lists_every_command_with_an_example() -> None:
    text = help_text(None)
    for usage in USAGE.values():
        assert usage in text
    assert text.count("e.g. ") == len(USAGE)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["/backfill", "/purge", "/verify", "/linear", "/shepherd", "/x"]), st.text(max_size=80))
def test_any_text_is_a_command_or_a_parse_error(command: str, text: str) -> None:
    with contextlib.suppress(ParseError):
        parse(command, text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["plan", "hilton", "all", "--window", "5d", "--at", "sat 22:00", "--from",
                                 "2026-01-03", "--to", "--parallel", "3", "status", "b-7f3a2c", "retry",
                                 "--failed-only", "throttle", "=", "'", '"', "--types", "1-3", "sample:3"]),
                max_size=8))
def test_word_salad_never_crashes(words: list[str]) -> None:
    for command in ("/backfill", "/purge", "/verify", "/linear"):
        with contextlib.suppress(ParseError):
            parse(command, " ".join(words))
