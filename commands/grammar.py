"""Text of a slash command -> one typed command, or a ParseError that says what is wrong and
shows the usage line. Any string whatsoever yields one or the other, never another exception."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

from commands import verbs as v
from commands.values import parse_count, parse_date, parse_names, parse_parallel, parse_types, parse_window

USAGE: dict[str, str] = {
    "backfill plan": "/backfill plan <customers|all> [--from D] [--to D] [--window auto|Nd] [--parallel N|auto]",
    "backfill run": "/backfill <customers|all> [--window auto|Nd] [--from D] [--to D] [--parallel N|auto] "
    "[--at TIME] [--dry-run]",
    "backfill status": "/backfill status [JOB]",
    "backfill cancel": "/backfill cancel JOB",
    "backfill retry": "/backfill retry JOB [--failed-only]",
    "backfill throttle": "/backfill throttle JOB N|auto",
    "backfill pause": "/backfill pause JOB",
    "backfill resume": "/backfill resume JOB",
    "purge plan": "/purge plan <customers|all> [--types 1-3] [--from D] [--to D] [--clusters all|a,b] [--max-rows N]",
    "purge run": "/purge <customers|all> [--types 1-3] [--from D] [--to D] [--clusters all|a,b] [--max-rows N]",
    "verify": "/verify <customers|all|sample:N> [--types 1-3] [--from D] [--to D] [--job JOB] [--deep]",
    "verify repair": "/verify repair JOB",
    "linear draft": "/linear draft TICKET [--jobs J1,J2 | --since D]",
    "linear post": "/linear post TICKET",
    "linear weekly": "/linear weekly [--team KEY]",
    "shepherd help": "/shepherd help",
    "shepherd jobs": "/shepherd jobs",
}
EXAMPLES: dict[str, str] = {
    "backfill plan": "/backfill plan hilton,marriott --window auto --parallel 8",
    "backfill run": "/backfill hilton --window 5d --at 'sat 22:00'",
    "backfill status": "/backfill status b-7f3a2c",
    "backfill cancel": "/backfill cancel b-7f3a2c",
    "backfill retry": "/backfill retry b-7f3a2c --failed-only",
    "backfill throttle": "/backfill throttle b-7f3a2c 4",
    "backfill pause": "/backfill pause b-7f3a2c",
    "backfill resume": "/backfill resume b-7f3a2c",
    "purge plan": "/purge plan oportun --types 1-3",
    "purge run": "/purge all --types 1-3 --max-rows 1000000",
    "verify": "/verify sample:10 --types 1-3",
    "verify repair": "/verify repair v-7f3a2c",
    "linear draft": "/linear draft CONVI-6259 --jobs b-7f3a2c,p-1c2d3e",
    "linear post": "/linear post CONVI-6259",
    "linear weekly": "/linear weekly --team CONVI",
    "shepherd help": "/shepherd help",
    "shepherd jobs": "/shepherd jobs",
}
JOB_ID = re.compile(r"^[bpv]-[0-9a-f]{6}$")
TICKET = re.compile(r"^[A-Z][A-Z0-9]{0,9}-\d{1,7}$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ParseError(ValueError):
    def __init__(self, message: str, usage: str) -> None:
        super().__init__(f"{message}\nUsage: {usage}")
        self.message = message
        self.usage = usage


def parse(command: str, text: str) -> v.Command:
    """`command` is the slash command ("/backfill" or "backfill"); `text` what followed it."""
    name = command.strip().lstrip("/").lower()
    if name not in ROOTS:
        raise ParseError(f"unknown command /{name}", "/backfill, /purge, /verify, /linear or /shepherd")
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise ParseError(f"cannot read the text: {err} (check the quotes)", _root_usage(name)) from None
    return ROOTS[name](words)


def _root_usage(name: str) -> str:
    return " | ".join(u for k, u in USAGE.items() if k.split()[0] == name)


def _options(words: list[str], key: str, flags: set[str], valued: set[str]) -> tuple[list[str], dict[str, Any]]:
    """Split words into positionals and options; every problem is a ParseError with `key`'s usage."""
    usage = USAGE[key]
    positional: list[str] = []
    opts: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            opt, eq, inline = word.partition("=")
            if opt in flags and not eq:
                opts[opt] = True
            elif opt in valued:
                if eq:
                    value = inline
                elif i + 1 < len(words):
                    i += 1
                    value = words[i]
                else:
                    raise ParseError(f"{opt} needs a value", usage)
                if opt in opts:
                    raise ParseError(f"{opt} is given twice", usage)
                opts[opt] = value
            else:
                raise ParseError(f"unknown option {opt}", usage)
        else:
            positional.append(word)
        i += 1
    return positional, opts


def _value(key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ValueError as err:
        raise ParseError(str(err), USAGE[key]) from None


def _one(positional: list[str], key: str, what: str) -> str:
    if not positional:
        raise ParseError(f"missing {what}", USAGE[key])
    if len(positional) > 1:
        raise ParseError(f"unexpected {' '.join(positional[1:])!r} after {positional[0]}", USAGE[key])
    return positional[0]


def _job(word: str, key: str) -> str:
    if not JOB_ID.match(word):
        raise ParseError(f"{word!r} is not a job id (like b-7f3a2c)", USAGE[key])
    return word


def _range(opts: dict[str, Any], key: str) -> tuple[date | None, date | None]:
    start = _value(key, parse_date, opts["--from"], "--from") if "--from" in opts else None
    end = _value(key, parse_date, opts["--to"], "--to") if "--to" in opts else None
    if start and end and start > end:
        raise ParseError(f"--from {start} is after --to {end}", USAGE[key])
    return start, end


def parse_at(text: str) -> v.StartAt:
    """`2026-02-21T22:00` (ISO, optional offset) or a weekday and time like `sat 22:00`."""
    m = re.fullmatch(r"([a-z]{3})[a-z]*\s+(\d{1,2}):(\d{2})", text.strip().lower())
    if m:
        day = m.group(1)
        if day not in WEEKDAYS:
            raise ValueError(f"--at {text!r}: {m.group(1)!r} is not a weekday (mon..sun)")
        hour, minute = int(m.group(2)), int(m.group(3))
        if hour > 23 or minute > 59:
            raise ValueError(f"--at {text!r} is not a time of day")
        return v.StartAt(weekday=WEEKDAYS.index(day), at=time(hour, minute))
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        expected = "an ISO time like 2026-02-21T22:00 or a weekday like 'sat 22:00'"
        raise ValueError(f"--at {text!r} must be {expected}") from None
    return v.StartAt(moment=moment)


def _backfill(words: list[str]) -> v.Command:
    head = words[0].lower() if words else ""
    if not words or head == "help":
        return v.Help(topic="backfill")
    if head == "status":
        pos, _ = _options(words[1:], "backfill status", set(), set())
        if len(pos) > 1:
            raise ParseError(f"unexpected {pos[1]!r}", USAGE["backfill status"])
        return v.JobStatus(job=_job(pos[0], "backfill status") if pos else None)
    if head in ("cancel", "pause", "resume"):
        key = f"backfill {head}"
        pos, _ = _options(words[1:], key, set(), set())
        return v.JobAction.model_validate({"action": head, "job": _job(_one(pos, key, "the job id"), key)})
    if head == "retry":
        pos, opts = _options(words[1:], "backfill retry", {"--failed-only"}, set())
        job = _job(_one(pos, "backfill retry", "the job id"), "backfill retry")
        return v.Retry(job=job, failed_only=bool(opts.get("--failed-only")))
    if head == "throttle":
        pos, _ = _options(words[1:], "backfill throttle", set(), set())
        if len(pos) != 2:
            raise ParseError("throttle needs a job id and a number of windows (or auto)", USAGE["backfill throttle"])
        job = _job(pos[0], "backfill throttle")
        n = _value("backfill throttle", parse_parallel, pos[1], "N")
        if n is not None and n > 64:
            raise ParseError(f"N {n} must be at most 64", USAGE["backfill throttle"])
        return v.Throttle(job=job, parallel=n, auto=n is None)
    planning = head == "plan"
    key = "backfill plan" if planning else "backfill run"
    flags = set() if planning else {"--dry-run"}
    valued = {"--from", "--to", "--window", "--parallel"} | (set() if planning else {"--at"})
    pos, opts = _options(words[1:] if planning else words, key, flags, valued)
    customers = _value(key, parse_names, _one(pos, key, "the customers (a name, a comma list, or all)"), "customer")
    start, end = _range(opts, key)
    window = _value(key, parse_window, opts.get("--window", "auto"))
    parallel = _value(key, parse_parallel, opts["--parallel"]) if "--parallel" in opts else None
    autopilot = (parallel is None) if "--parallel" in opts else None
    args = v.BackfillArgs(customers=customers, start=start, end=end, window_days=window, parallel=parallel,
                          autopilot=autopilot)
    if planning:
        return v.BackfillPlan(args=args)
    at = _value(key, parse_at, opts["--at"]) if "--at" in opts else None
    return v.BackfillRun(args=args, start_at=at, dry_run=bool(opts.get("--dry-run")))


def _purge(words: list[str]) -> v.Command:
    if not words or words[0].lower() == "help":
        return v.Help(topic="purge")
    planning = words[0].lower() == "plan"
    key = "purge plan" if planning else "purge run"
    valued = {"--from", "--to", "--types", "--clusters", "--max-rows"}
    pos, opts = _options(words[1:] if planning else words, key, set(), valued)
    customers = _value(key, parse_names, _one(pos, key, "the customers (a name, a comma list, or all)"), "customer")
    start, end = _range(opts, key)
    args = v.PurgeArgs(
        customers=customers,
        start=start,
        end=end,
        types=_value(key, parse_types, opts["--types"]) if "--types" in opts else None,
        clusters=_value(key, parse_names, opts.get("--clusters", "all"), "cluster"),
        max_rows=_value(key, parse_count, opts["--max-rows"], "--max-rows", minimum=1)
        if "--max-rows" in opts
        else None,
    )
    return v.PurgePlanCmd(args=args) if planning else v.PurgeRun(args=args)


def _verify(words: list[str]) -> v.Command:
    if not words or words[0].lower() == "help":
        return v.Help(topic="verify")
    if words[0].lower() == "repair":
        pos, _ = _options(words[1:], "verify repair", set(), set())
        return v.VerifyRepair(job=_job(_one(pos, "verify repair", "the verification's job id"), "verify repair"))
    pos, opts = _options(words, "verify", {"--deep"}, {"--from", "--to", "--types", "--job"})
    target = _one(pos, "verify", "the customers (names, all, or sample:N)")
    sample = None
    customers = None
    if target.lower().startswith("sample:"):
        sample = _value("verify", parse_count, target[7:], "sample:N", minimum=1, maximum=1000)
    else:
        customers = _value("verify", parse_names, target, "customer")
    start, end = _range(opts, "verify")
    return v.Verify(
        customers=customers, sample=sample, start=start, end=end,
        types=_value("verify", parse_types, opts["--types"]) if "--types" in opts else None,
        job=_job(opts["--job"], "verify") if "--job" in opts else None,
        deep=bool(opts.get("--deep")),
    )


def _linear(words: list[str]) -> v.Command:
    head = words[0].lower() if words else ""
    if head in ("", "help"):
        return v.Help(topic="linear")
    if head == "weekly":
        pos, opts = _options(words[1:], "linear weekly", set(), {"--team"})
        if pos:
            raise ParseError(f"unexpected {pos[0]!r}", USAGE["linear weekly"])
        return v.LinearWeekly(team=opts.get("--team"))
    if head not in ("draft", "post"):
        raise ParseError(f"unknown /linear action {words[0]!r}", _root_usage("linear"))
    key = f"linear {head}"
    pos, opts = _options(words[1:], key, set(), {"--jobs", "--since"} if head == "draft" else set())
    ticket = _one(pos, key, "the ticket (like CONVI-6259)")
    if not TICKET.match(ticket):
        raise ParseError(f"{ticket!r} is not a Linear ticket id (like CONVI-6259)", USAGE[key])
    if head == "post":
        return v.LinearPost(ticket=ticket)
    if "--jobs" in opts and "--since" in opts:
        raise ParseError("give --jobs or --since, not both", USAGE[key])
    jobs = tuple(_job(j.strip(), key) for j in opts["--jobs"].split(",")) if "--jobs" in opts else None
    since = _value(key, parse_date, opts["--since"], "--since") if "--since" in opts else None
    return v.LinearDraft(ticket=ticket, jobs=jobs, since=since)


def _shepherd(words: list[str]) -> v.Command:
    head = words[0].lower() if words else "help"
    if head == "help" and len(words) <= 1:
        return v.Help(topic=None)
    if head == "jobs" and len(words) == 1:
        return v.Jobs()
    raise ParseError(f"unknown /shepherd request {' '.join(words)!r}", _root_usage("shepherd"))


ROOTS: dict[str, Callable[[list[str]], v.Command]] = {
    "backfill": _backfill, "purge": _purge, "verify": _verify, "linear": _linear, "shepherd": _shepherd,
}


def help_text(topic: str | None) -> str:
    keys = [k for k in USAGE if topic is None or k.split()[0] == topic]
    return "\n".join(f"{USAGE[k]}\n    e.g. {EXAMPLES[k]}" for k in keys)
