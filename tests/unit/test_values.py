from __future__ import annotations

import contextlib
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.models import DateRange
from commands.values import parse_count, parse_date, parse_names, parse_range, parse_types, parse_window

DEFAULT = DateRange(start=date(2026, 1, 3), end=date(2026, 2, 22))


@pytest.mark.parametrize(
    ("text", "message"),
    [("2026-02-30", "not a real calendar date"), ("21/02/2026", "YYYY-MM-DD"), ("2026-2-1", "YYYY-MM-DD")],
)
def test_bad_dates(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_date(text, "--from")


def test_range_defaults_and_order() -> None:
    assert parse_range(None, None, DEFAULT) == DEFAULT
    assert parse_range("2026-02-01", None, DEFAULT).end == DEFAULT.end
    with pytest.raises(ValueError, match="after"):
        parse_range("2026-02-10", "2026-02-01", DEFAULT)


@pytest.mark.parametrize("text", ["0d", "-5d", "5", "5h", "d", "five", "5.5d", ""])
def test_bad_windows(text: str) -> None:
    with pytest.raises(ValueError, match="--window"):
        parse_window(text)


def test_windows() -> None:
    assert parse_window("auto") is None
    assert parse_window("5d") == 5


def test_counts_and_types() -> None:
    assert parse_count("4", "--parallel", minimum=1, maximum=16) == 4
    for bad in ["0", "-1", "17", "x", "1.5"]:
        with pytest.raises(ValueError, match="--parallel"):
            parse_count(bad, "--parallel", minimum=1, maximum=16)
    assert parse_types("1-3") == (1, 2, 3)
    assert parse_types("3,1") == (1, 3)
    for bad in ["3-1", "a", "1-300", ""]:
        with pytest.raises(ValueError, match="--types"):
            parse_types(bad)


def test_names() -> None:
    assert parse_names("all", "customer") is None
    assert parse_names("Hilton, spirit,hilton", "customer") == ("hilton", "spirit")
    for bad in ["a,,b", "'; drop table x", "hil ton"]:
        with pytest.raises(ValueError):
            parse_names(bad, "customer")


@given(st.text(max_size=30))
def test_parsers_only_raise_value_error(text: str) -> None:
    for fn in (lambda t: parse_date(t, "--from"), parse_window, parse_types,
               lambda t: parse_names(t, "customer"), lambda t: parse_count(t, "-n", minimum=1)):
        with contextlib.suppress(ValueError):
            fn(text)
