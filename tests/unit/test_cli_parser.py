from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.main import build_parser, main


@pytest.mark.parametrize("argv", [
    ["--data-dir", "/x", "dev", "--ready-exit"],
    ["dev", "--data-dir", "/x", "--ready-exit"],
    ["plan", "backfill", "hilton", "--data-dir", "/x"],
    ["worker", "--data-dir", "/x"],
])
def test_data_dir_before_or_after_the_subcommand(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).data_dir == Path("/x")


def test_data_dir_defaults_to_none_when_absent() -> None:
    assert build_parser().parse_args(["dev"]).data_dir is None


def test_worker_without_a_configured_stack_says_what_is_missing(capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHEPHERD_POSTGRES_DSN", raising=False)
    assert main(["worker"]) == 2
    assert "SHEPHERD_POSTGRES_DSN" in capsys.readouterr().err
