"""Parsers for the values every command shares: dates, windows, types, counts, name lists.

Each raises `ValueError` with a message fit to show a person as is (what is wrong, what is
expected); the grammar and the CLI add the usage line.
"""

from __future__ import annotations

import re
from datetime import date

from commands.models import DateRange

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WINDOW = re.compile(r"^(\d+)d$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def parse_date(text: str, option: str = "date") -> date:
    if not _DATE.match(text):
        raise ValueError(f"{option} {text!r} is not a date like 2026-02-21 (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a real calendar date") from None


def parse_range(start: str | None, end: str | None, default: DateRange) -> DateRange:
    lo = parse_date(start, "--from") if start is not None else default.start
    hi = parse_date(end, "--to") if end is not None else default.end
    if lo > hi:
        raise ValueError(f"--from {lo} is after --to {hi}")
    return DateRange(start=lo, end=hi)


def parse_window(text: str) -> int | None:
    """`auto` -> None (the policy decides); `Nd` -> N days (N >= 1)."""
    if text == "auto":
        return None
    m = _WINDOW.match(text)
    if not m:
        raise ValueError(f"--window {text!r} must be 'auto' or a number of days like 5d")
    days = int(m.group(1))
    if days < 1:
        raise ValueError(f"--window {text!r} must be at least 1d")
    if days > 3660:
        raise ValueError(f"--window {text!r} is longer than ten years")
    return days


def parse_count(text: str, option: str, *, minimum: int, maximum: int | None = None) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"{option} {text!r} must be a whole number")
    n = int(text)
    if n < minimum:
        raise ValueError(f"{option} {n} must be at least {minimum}")
    if maximum is not None and n > maximum:
        raise ValueError(f"{option} {n} must be at most {maximum}")
    return n


def parse_parallel(text: str, option: str = "--parallel") -> int | None:
    """A number of windows at once (1 or more), or `auto` (None: the autopilot decides)."""
    if text.strip().lower() == "auto":
        return None
    if not re.fullmatch(r"[+-]?\d+", text.strip()):
        raise ValueError(f"{option} {text!r} must be a whole number of windows or auto")
    return parse_count(text.strip(), option, minimum=1)


def parse_types(text: str) -> tuple[int, ...]:
    """`1-3`, `1,2,3` or `2` -> sorted unique scorecard types (0..255)."""
    types: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"(\d{1,3})(?:-(\d{1,3}))?", part.strip())
        if not m:
            raise ValueError(f"--types {text!r} must be a type, a range like 1-3, or a comma list")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if lo > hi or hi > 255:
            raise ValueError(f"--types {text!r}: {part.strip()} is not a range of types between 0 and 255")
        types.update(range(lo, hi + 1))
    return tuple(sorted(types))


def parse_names(text: str, what: str) -> tuple[str, ...] | None:
    """`all` -> None; `a,b` -> ('a', 'b'), each a plausible name, duplicates removed in order."""
    if text == "all":
        return None
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip().lower()
        if not name:
            raise ValueError(f"{what} list {text!r} has an empty name")
        if not _NAME.match(name):
            raise ValueError(f"{what} {raw.strip()!r} is not a valid name (letters, digits, '.', '_', '-')")
        if name not in names:
            names.append(name)
    return tuple(names)
