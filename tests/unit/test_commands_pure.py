"""`commands/` stays pure: no Slack, Temporal, drivers, network, processes, or clock."""

from __future__ import annotations

import ast
from pathlib import Path

COMMANDS = Path(__file__).resolve().parents[2] / "commands"
FORBIDDEN_MODULES = {
    "bot", "slack_bolt", "slack_sdk", "temporalio", "psycopg", "psycopg_pool", "chdb", "clickhouse_connect",
    "httpx", "aiohttp", "requests", "socket", "urllib", "subprocess", "apscheduler", "os", "time", "random",
}
CLOCK_CALLS = {"now", "today", "utcnow", "time", "monotonic"}


def imported_modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def clock_calls(tree: ast.AST) -> list[str]:
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
            calls.append(f"line {node.lineno}: .{node.func.attr}()")
    return calls


def test_commands_import_nothing_impure() -> None:
    files = sorted(COMMANDS.glob("*.py"))
    assert files
    for path in files:
        tree = ast.parse(path.read_text())
        bad = imported_modules(tree) & FORBIDDEN_MODULES
        assert not bad, f"{path.name} imports {sorted(bad)}"
        assert not clock_calls(tree), f"{path.name} reads the clock: {clock_calls(tree)}"


def test_the_check_catches_a_violation() -> None:
    tree = ast.parse("import temporalio\nfrom datetime import datetime\nx = datetime.now()\n")
    assert "temporalio" in imported_modules(tree) & FORBIDDEN_MODULES
    assert clock_calls(tree)
