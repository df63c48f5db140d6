"""Slack's published Web API contract (OpenAPI v2 / swagger 2.0), used to check the arguments of calls.

`Contract.load(path)` reads a spec: by default Slack's full published one where this machine has it
(`$SHEPHERD_SLACK_CONTRACT`, or `shared/contracts/slack/` beside the repository), else the project's
fixture, the same operations for every method the stand-in answers (bot/standins/contracts/).
`Contract.check(method, args)` answers
`(violations, unknown)`: missing required arguments and values of the wrong declared type, and
arguments the spec does not list (the spec dates from 2021 and predates some arguments, so those are
reported apart and are not errors).

Where an argument comes from (header, query, form, JSON body) is not checked: Slack accepts every
argument in any of them. `token` is never required, since clients send it as a Bearer header.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.standins.contracts import SLACK_FIXTURE, full_slack_contract

_INTEGER = re.compile(r"^-?\d+$")
_BOOLEANS = {"true", "false", "1", "0"}


def default_contract_path() -> Path:
    """Slack's full published spec where this machine has it, else the project's own fixture."""
    return full_slack_contract() or SLACK_FIXTURE


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # string | integer | number | boolean (anything else is not checked)
    required: bool


@dataclass
class Contract:
    source: Path
    operations: dict[str, dict[str, Param]]  # method name -> argument name -> Param

    @classmethod
    def load(cls, path: Path) -> Contract:
        return _load(path.resolve(), path.stat().st_mtime_ns)

    @classmethod
    def parse(cls, path: Path) -> Contract:
        spec = json.loads(path.read_text())
        operations: dict[str, dict[str, Param]] = {}
        for route, verbs in spec.get("paths", {}).items():
            params: dict[str, Param] = {}
            for operation in verbs.values():
                for p in operation.get("parameters", []):
                    params[p["name"]] = Param(p["name"], str(p.get("type", "string")), bool(p.get("required")))
            operations[route.lstrip("/")] = params
        return cls(path, operations)

    def has(self, method: str) -> bool:
        return method in self.operations

    def check(self, method: str, args: dict[str, Any]) -> tuple[list[str], list[str]]:
        """Problems with `args` for `method` as Slack words them, and the arguments the spec does not list."""
        params = self.operations.get(method)
        if params is None:
            return [], []
        violations: list[str] = []
        for p in params.values():
            if p.required and p.name != "token" and _missing(args.get(p.name)):
                violations.append(f"[ERROR] missing required field: {p.name}")
        unknown: list[str] = []
        for name, value in args.items():
            param = params.get(name)
            if param is None:
                unknown.append(name)
            elif value is not None and not _fits(param.type, value):
                violations.append(f"[ERROR] expected {param.type} for field {name}, got {_describe(value)}")
        return violations, unknown


@functools.lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int) -> Contract:  # one parse per file version (the full spec is 1 MB)
    return Contract.parse(path)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _fits(kind: str, value: Any) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and bool(_INTEGER.match(value.strip())))
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool) or value in (0, 1) or (
            isinstance(value, str) and value.strip().lower() in _BOOLEANS)
    # A string argument may arrive as a JSON array or object (slack_sdk sends blocks that way in JSON
    # bodies; Slack reads it as the encoded string) or as a JSON scalar, which Slack reads as its text.
    return True


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
