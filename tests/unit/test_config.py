from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import load_config
from bot.errors import ConfigError
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_is_valid() -> None:
    config = load_config(ROOT / "shepherd.example.yml")
    assert config.cluster("voice-prod").regions[1].name == "us-west-2"
    assert config.appeal_types == (1, 2, 3)
    assert config.windows.rules[0].min_daily == 80_000
    assert config.throughput.low == 35_000 and config.throughput.high == 50_000


def test_bad_file_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "shepherd.yml"
    bad.write_text(
        "clusters:\n"
        "  - name: Voice Prod\n"
        "    regions: []\n"
        "purge: {max_rows_per_mutation: 0, strategy: nuke}\n"
        "throughput: {low: 50000, high: 35000}\n"
        "colour: blue\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    text = info.value.reply()
    for expected in ["clusters.0.name", "clusters.0.regions", "purge.max_rows_per_mutation",
                     "purge.strategy", "throughput", "colour"]:
        assert expected in text, text
    assert len(info.value.problems) >= 6
    assert "Traceback" not in text


def test_unknown_cluster_reference_and_missing_customers(tmp_path: Path) -> None:
    bad = tmp_path / "s.yml"
    bad.write_text("clusters: [{name: a, regions: [{name: r}]}]\ncustomers: {explicit: [{name: x, cluster: b}]}\n")
    with pytest.raises(ConfigError, match="unknown clusters: b"):
        load_config(bad)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "s.yml"
    bad.write_text("clusters:\n  - name: a\n   regions: [\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(bad)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yml")


def test_secrets_are_masked_in_repr_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEPHERD_SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("SHEPHERD_POSTGRES_DSN", "postgresql://u:hunter2@db/x")
    settings = Settings()
    assert isinstance(settings.slack_bot_token, SecretStr)
    shown = repr(settings) + str(settings)
    assert "very-secret" not in shown and "hunter2" not in shown
