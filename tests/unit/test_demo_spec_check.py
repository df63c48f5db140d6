"""A --scale/--seed other than the loaded demo's is refused before anything starts, naming --reset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.app import check_demo_spec
from bot.cli.main import main
from bot.embedded.demo_marker import DemoSpecChanged
from bot.settings import Settings


def loaded(tmp_path: Path, scale: float = 0.002, seed: int = 7) -> Settings:
    (tmp_path / "demo.json").write_text(json.dumps({"scale": scale, "seed": seed, "loaded_at": "2026-12-01T10:00"}))
    return Settings(data_dir=tmp_path)


def test_a_changed_spec_is_refused_and_names_reset(tmp_path: Path) -> None:
    settings = loaded(tmp_path)
    with pytest.raises(DemoSpecChanged) as caught:
        check_demo_spec(settings, 0.005, None)
    said = caught.value.reply()
    assert "--scale 0.005 (loaded: 0.002)" in said and "--reset" in said and "--data-dir" in said
    with pytest.raises(DemoSpecChanged, match=r"--seed 8 \(loaded: 7\)"):
        check_demo_spec(settings, None, 8)


def test_the_same_spec_no_spec_a_reset_or_nothing_loaded_pass(tmp_path: Path) -> None:
    settings = loaded(tmp_path)
    check_demo_spec(settings, 0.002, 7)
    check_demo_spec(settings, None, None)
    check_demo_spec(settings, 0.5, 1, reset=True)
    check_demo_spec(Settings(data_dir=tmp_path / "fresh"), 0.5, 1)


def test_dev_with_another_scale_starts_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHEPHERD_POSTGRES_DSN", raising=False)
    monkeypatch.delenv("SHEPHERD_CONFIG_PATH", raising=False)
    loaded(tmp_path)
    assert main(["--data-dir", str(tmp_path), "dev", "--scale", "0.01", "--ready-exit"]) == 2
    err = capsys.readouterr().err
    assert "--scale 0.01 (loaded: 0.002)" in err and "--reset" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.json"]  # no lock, no server, nothing written


def test_serve_demo_options_are_for_the_embedded_stack_only(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEPHERD_POSTGRES_DSN", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("SHEPHERD_SLACK_BOT_TOKEN", "xoxb-x")
    monkeypatch.setenv("SHEPHERD_SLACK_SIGNING_SECRET", "s")
    for extra in (["--reset"], ["--scale", "0.01"], ["--seed", "3"]):
        assert main(["serve", "--http", *extra]) == 2
        assert "for the embedded stack" in capsys.readouterr().err
