"""The Slack app manifest declares exactly the commands, scopes, events and features the code uses: the Web API
methods and events are derived from the code itself (bot/, the stand-ins excepted)."""

from __future__ import annotations

import ast
import inspect
import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli.serve import EVENTS_PATH
from commands.grammar import ROOTS, USAGE

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())
# The bot scopes each Web API method needs (Slack's method pages). A method the code starts calling
# fails the scope test until it is listed here, so the manifest cannot silently fall behind.
NEEDS: dict[str, set[str]] = {
    "chat.postMessage": {"chat:write"}, "chat.update": {"chat:write"}, "chat.postEphemeral": {"chat:write"},
    "chat.getPermalink": set(), "conversations.open": {"im:write"}, "views.open": set(), "views.publish": set(),
    "auth.test": set(),  # Bolt checks the bot token at start-up (bot/slack/auth.py)
    "usergroups.list": {"usergroups:read"}, "usergroups.users.list": {"usergroups:read"},
    "files.getUploadURLExternal": {"files:write"}, "files.completeUploadExternal": {"files:write"},
}
NOT_IN_2021_SPEC = {"apps.connections.open", "files.getUploadURLExternal", "files.completeUploadExternal"}


@cache
def production_trees() -> list[ast.AST]:
    files = [p for p in sorted((ROOT / "bot").rglob("*.py")) if "standins" not in p.parts]
    return [ast.parse(p.read_text()) for p in files]


@cache
def client_methods() -> dict[str, set[str]]:
    """slack_sdk's AsyncWebClient method -> the Web API methods it calls (helpers like files_upload_v2 expanded)."""
    direct: dict[str, set[str]] = {}
    inner: dict[str, set[str]] = {}
    for name, fn in vars(AsyncWebClient).items():
        if callable(fn) and not name.startswith("_"):
            source = inspect.getsource(fn)
            direct[name] = set(re.findall(r'api_call\(\s*"([\w.]+)"', source))
            inner[name] = set(re.findall(r"self\.(\w+)\(", source)) & set(vars(AsyncWebClient))
    return {name: direct[name] | {m for helper in inner[name] for m in direct.get(helper, set())} for name in direct}


@cache
def web_api_methods() -> frozenset[str]:
    """Every Web API method production code calls: client.<method> uses and method names given to the outbox."""
    methods = client_methods()
    known = {m for ms in methods.values() for m in ms}
    found: set[str] = set()
    for tree in production_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in methods and node.attr not in ("api_call",):
                found |= methods[node.attr]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
                found.add(node.value)
    return frozenset(found)


def bolt_listeners(kind: str) -> set[str]:
    """The string arguments of `app.<kind>(...)` registrations (event names, for kind "event")."""
    found: set[str] = set()
    for tree in production_trees():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == kind
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "app"):
                found |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
                found |= {"(pattern)" for a in node.args if not isinstance(a, ast.Constant)}
    return found


def test_commands_match_the_grammar_with_usage_hints() -> None:
    commands = {c["command"]: c for c in MANIFEST["features"]["slash_commands"]}
    assert set(commands) == {f"/{name}" for name in ROOTS}
    for name, c in commands.items():
        assert c["usage_hint"] and c["description"]
        assert c["url"].endswith(EVENTS_PATH)
        assert any(u.startswith(name) for u in USAGE.values())


def test_scopes_are_exactly_those_of_the_methods_the_code_calls() -> None:
    called = web_api_methods()
    unknown = called - set(NEEDS)
    assert not unknown, f"the code calls {sorted(unknown)}: add them to NEEDS with the scopes Slack documents"
    wanted = {"commands"} | {scope for method in called for scope in NEEDS[method]}
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == wanted


def test_the_derivation_sees_what_the_code_calls() -> None:
    called = web_api_methods()
    # direct calls, the outbox's method names, and what slack_sdk's helpers call for the code
    assert {"chat.postMessage", "chat.update", "conversations.open", "views.publish", "views.open",
            "usergroups.users.list", "files.getUploadURLExternal", "files.completeUploadExternal"} <= called
    assert "apps.connections.open" not in called  # the Socket Mode client's, with the app-level token


def test_events_and_features_match_the_listeners() -> None:
    events = bolt_listeners("event")
    assert events == {"app_home_opened"}
    assert set(MANIFEST["settings"]["event_subscriptions"]["bot_events"]) == events
    assert MANIFEST["settings"]["event_subscriptions"]["request_url"].endswith(EVENTS_PATH)
    home = MANIFEST["features"]["app_home"]
    assert home["home_tab_enabled"] is ("app_home_opened" in events and "views.publish" in web_api_methods())
    assert home["messages_tab_enabled"] is ("conversations.open" in web_api_methods())
    interactive = bool(bolt_listeners("action") or bolt_listeners("view"))
    assert interactive is MANIFEST["settings"]["interactivity"]["is_enabled"]


def test_the_standin_answers_every_method_the_code_calls_and_the_contract_has_them() -> None:
    from bot.standins.slack.api import METHODS
    from bot.standins.slack.contract import Contract, default_contract_path

    called = web_api_methods() | {"apps.connections.open", "auth.test"}  # + Socket Mode's and Bolt's own
    assert called <= set(METHODS), sorted(called - set(METHODS))
    path = default_contract_path()
    if path is None:
        pytest.skip("Slack's published spec is not beside the repository")
    missing = {m for m in called if not Contract.load(path).has(m)}
    assert missing == NOT_IN_2021_SPEC, sorted(missing)


def test_interactivity_and_socket_mode() -> None:
    settings = MANIFEST["settings"]
    assert settings["interactivity"]["is_enabled"] and settings["interactivity"]["request_url"].endswith(EVENTS_PATH)
    serve = (ROOT / "bot" / "cli" / "serve.py").read_text()
    assert settings["socket_mode_enabled"] is ("bot.slack.socket_mode" in serve)
