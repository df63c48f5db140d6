"""The project's own copies of what it uses of Slack's and Linear's published contracts
(bot/standins/contracts/): they cover every call Shepherd makes, the stand-ins check against them when
the full files are absent, and, where the full published files are on this machine, they are exactly
what `scripts/contracts` makes of them (so they cannot drift) and a faithful subset of them."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from graphql import build_schema
from pydantic import SecretStr

from bot.adapters.linear import DOCUMENTS, LinearClient
from bot.slack.outbox import METHODS as OUTBOX_METHODS
from bot.standins.contracts import LINEAR_FIXTURE, SLACK_FIXTURE, full_linear_schema, full_slack_contract
from bot.standins.contracts.trim import linear_fixture_text, slack_fixture_text, subset_problems
from bot.standins.linear import LinearStandIn, check_document, load_schema
from bot.standins.slack.api import METHODS
from bot.standins.slack.contract import Contract

BOT = Path(__file__).resolve().parents[2] / "bot"
# Newer than Slack's 2021 spec: the 2024 upload methods, and Socket Mode's apps.connections.open.
NEWER_THAN_THE_SPEC = {"files.getUploadURLExternal", "files.completeUploadExternal", "apps.connections.open"}
SDK_CALL = re.compile(r"\.((?:auth|chat|conversations|files|usergroups|users|views)_[A-Za-z_0-9]+)\(")
SDK_COMPOSITES = {"files_upload_v2": {"files.getUploadURLExternal", "files.completeUploadExternal"}}
VARIABLES: dict[str, dict[str, Any]] = {
    "ShepherdIssue": {"id": "CONVI-6259"},
    "ShepherdComment": {"input": {"issueId": "CONVI-6259", "body": "done", "id": str(uuid.uuid4())}},
    "ShepherdFindComment": {"id": str(uuid.uuid4())},
}


def web_api_methods_production_calls() -> set[str]:
    """Every Slack Web API method named in production code (slack_sdk calls and the outbox's methods)."""
    called: set[str] = set()
    for method in OUTBOX_METHODS:  # a Web API method, or slack_sdk's helper for several (files_upload_v2)
        called |= SDK_COMPOSITES.get(method, {method})
    for path in BOT.rglob("*.py"):
        if "standins" in path.relative_to(BOT).parts:
            continue
        for name in SDK_CALL.findall(path.read_text()):
            called |= SDK_COMPOSITES.get(name, {name.replace("_", ".")})
    return called


def operation_name(document: str) -> str:
    match = re.search(r"(?:query|mutation)\s+(\w+)", document)
    assert match, document
    return match.group(1)


# ---- from the fixtures alone --------------------------------------------------------------------


def test_the_slack_fixture_has_every_method_the_stand_in_answers() -> None:
    spec = json.loads(SLACK_FIXTURE.read_text())
    assert {route.lstrip("/") for route in spec["paths"]} == set(METHODS) - NEWER_THAN_THE_SPEC
    contract = Contract.load(SLACK_FIXTURE)
    assert contract.check("chat.postMessage", {"text": "x"})[0] == ["[ERROR] missing required field: channel"]
    assert contract.check("chat.update", {"channel": "C1", "ts": "1.2", "text": "x", "metadata": "{}"}) == (
        [], ["metadata"])  # an argument newer than the 2021 spec is reported apart, not refused


def test_production_calls_only_methods_the_stand_in_answers() -> None:
    called = web_api_methods_production_calls()
    assert {"chat.postMessage", "chat.update", "views.open", "usergroups.users.list"} <= called
    assert called <= set(METHODS), f"add {sorted(called - set(METHODS))} to the Slack stand-in and its contract"


def test_every_document_shepherd_sends_validates_against_the_linear_fixture() -> None:
    schema = load_schema(LINEAR_FIXTURE)
    for document in DOCUMENTS:
        name = operation_name(document)
        assert check_document(schema, document, VARIABLES[name], name) == [], name
    assert check_document(schema, "query Bad { issue(id: 5) { identifier nope } }", {}, "Bad")
    assert check_document(schema, DOCUMENTS[1], {"input": {"issueId": 7}}, "ShepherdComment")


async def test_the_linear_client_round_trips_through_the_stand_in_on_the_fixture() -> None:
    with LinearStandIn(api_key="lin_api_fixture", schema=LINEAR_FIXTURE) as standin:
        standin.add_issue("CONVI-6259", "Appeal cleanup")
        async with LinearClient(standin.url, SecretStr("lin_api_fixture"), attempts=1) as linear:
            issue = await linear.issue("CONVI-6259")
            made = await linear.comment(issue.id, "Backfill done", comment_id=str(uuid.uuid4()))
            found = await linear.find_comment(made.id)
    assert issue.title == "Appeal cleanup" and found == made and standin.violations == []
    assert [c["body"] for c in standin.comments] == ["Backfill done"]


def test_the_subset_check_catches_a_changed_field() -> None:
    fixture = build_schema(LINEAR_FIXTURE.read_text())
    tampered = LINEAR_FIXTURE.read_text().replace("title: String!", "title: Int")
    assert subset_problems(fixture, fixture) == []
    assert subset_problems(build_schema(tampered), fixture) == [
        "Issue.title: its type or arguments differ from the published ones"]


# ---- against the full published files, where this machine has them -------------------------------

FULL_SLACK, FULL_LINEAR = full_slack_contract(), full_linear_schema()
needs_slack = pytest.mark.skipif(FULL_SLACK is None, reason="Slack's full published spec is not on this machine")
needs_linear = pytest.mark.skipif(FULL_LINEAR is None, reason="Linear's full published schema is not on this machine")


@needs_slack
def test_the_slack_fixture_is_the_full_spec_trimmed() -> None:
    assert FULL_SLACK is not None
    assert SLACK_FIXTURE.read_text() == slack_fixture_text(FULL_SLACK), "stale: run scripts/contracts"
    full, mine = json.loads(FULL_SLACK.read_text()), json.loads(SLACK_FIXTURE.read_text())
    assert {k: v for k, v in mine.items() if k not in ("paths", "definitions")} == {
        k: v for k, v in full.items() if k not in ("paths", "definitions")}
    for route, operations in mine["paths"].items():
        assert operations == full["paths"][route], route
    for name, definition in mine["definitions"].items():
        assert definition == full["definitions"][name], name
    assert not NEWER_THAN_THE_SPEC & {route.lstrip("/") for route in full["paths"]}


@needs_linear
def test_the_linear_fixture_is_the_full_schema_pruned() -> None:
    assert FULL_LINEAR is not None
    assert LINEAR_FIXTURE.read_text() == linear_fixture_text(FULL_LINEAR), "stale: run scripts/contracts"
    full = load_schema(FULL_LINEAR)
    assert subset_problems(load_schema(LINEAR_FIXTURE), full) == []
    for document in DOCUMENTS:
        name = operation_name(document)
        assert check_document(full, document, VARIABLES[name], name) == [], name


def test_the_fixtures_carry_their_licences() -> None:
    for fixture in (SLACK_FIXTURE, LINEAR_FIXTURE):
        licence = (fixture.parent / "LICENSE").read_text()
        assert licence.startswith("MIT License") and "Copyright (c)" in licence

