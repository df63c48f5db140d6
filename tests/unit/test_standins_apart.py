"""Production code never imports the dev stand-ins (`bot/standins/`): the Slack and Linear stand-ins and the
console live apart, so a deploy cannot come to depend on them. The one door in is `shepherd dev`, which
`bot/cli/main.py` opens with a lazy import of `bot.standins.dev`."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parents[2] / "bot"
STANDINS = BOT / "standins"
ALLOWED = {("cli/main.py", "bot.standins.dev")}  # the `shepherd dev` subcommand


def standin_imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bot.standins")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and (
                node.module.startswith("bot.standins")
                or (node.module == "bot" and any(a.name == "standins" for a in node.names))):
            found.add(node.module)
    return found


def test_production_code_never_imports_the_standins() -> None:
    files = [p for p in sorted(BOT.rglob("*.py")) if STANDINS not in p.parents]
    assert len(files) > 50
    for path in files:
        rel = path.relative_to(BOT).as_posix()
        bad = {m for m in standin_imports(ast.parse(path.read_text())) if (rel, m) not in ALLOWED}
        assert not bad, f"bot/{rel} imports {sorted(bad)}: production code must not need the dev stand-ins"


def test_the_check_catches_a_violation() -> None:
    assert standin_imports(ast.parse("from bot.standins.slack.emulator import SlackEmulator\n"))
    assert standin_imports(ast.parse("import bot.standins.linear\n"))
    assert standin_imports(ast.parse("from bot import standins\n"))
    assert not standin_imports(ast.parse("from bot.slack import blocks\n"))
