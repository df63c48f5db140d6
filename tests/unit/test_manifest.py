"""The Slack app manifest declares exactly the commands Shepherd answers and only the scopes it uses."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.cli.serve import EVENTS_PATH
from commands.grammar import ROOTS, USAGE

MANIFEST = yaml.safe_load((Path(__file__).resolve().parents[2] / "manifest.yml").read_text())


def test_commands_match_the_grammar_with_usage_hints() -> None:
    commands = {c["command"]: c for c in MANIFEST["features"]["slash_commands"]}
    assert set(commands) == {f"/{name}" for name in ROOTS}
    for name, c in commands.items():
        assert c["usage_hint"] and c["description"]
        assert c["url"].endswith(EVENTS_PATH)
        assert any(u.startswith(name) for u in USAGE.values())


def test_scopes_are_the_ones_shepherd_calls_for() -> None:
    # chat.postMessage/update/postEphemeral/getPermalink: chat:write; the chart upload: files:write;
    # usergroups.list and usergroups.users.list (groups in access lists): usergroups:read.
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == {"commands", "chat:write", "files:write",
                                                              "usergroups:read"}


def test_interactivity_and_socket_mode() -> None:
    settings = MANIFEST["settings"]
    assert settings["interactivity"]["is_enabled"] and settings["interactivity"]["request_url"].endswith(EVENTS_PATH)
    assert settings["socket_mode_enabled"] is True
