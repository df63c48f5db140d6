from __future__ import annotations

import pytest

from bot.adapters.sql import ch_table, check_ident, pg_ident, quote_ident
from bot.errors import UserInputError


@pytest.mark.parametrize("name", ["scorecards", "_x", "A1_b2", "t" * 63])
def test_plain_identifiers_are_quoted(name: str) -> None:
    assert quote_ident(name) == f"`{name}`"
    assert pg_ident(name) == f'"{name}"'
    assert check_ident(name) == name


@pytest.mark.parametrize(
    "name",
    ["x; DROP TABLE y", "", "1abc", "a-b", "a.b", "a`b", 'a"b', "abc\n", "t" * 64, "naïve", " x", "x "],
)
def test_anything_else_is_refused(name: str) -> None:
    with pytest.raises(UserInputError, match="not a valid SQL name"):
        quote_ident(name)
    with pytest.raises(UserInputError):
        pg_ident(name)


def test_non_strings_are_refused() -> None:
    with pytest.raises(UserInputError):
        quote_ident(42)  # type: ignore[arg-type]


def test_a_long_bad_name_is_shortened_in_the_message() -> None:
    with pytest.raises(UserInputError) as info:
        quote_ident("x" * 500 + ";")
    assert len(info.value.message) < 200


def test_ch_table_qualifies_and_validates_both_parts() -> None:
    assert ch_table("analytics", "scores") == "`analytics`.`scores`"
    with pytest.raises(UserInputError):
        ch_table("analytics", "scores; DROP TABLE x")
    with pytest.raises(UserInputError):
        ch_table("a.b", "scores")
