"""Shepherd's error tree. Every error a person can cause or meet maps to one clear reply.

    ShepherdError
    ├── UserInputError      bad input: what is wrong (+ the usage line); nothing was changed
    │   └── ConfigError     a bad shepherd.yml: every problem with its field path
    ├── NotAuthorized       the person may not do this here
    ├── ConflictError       another job holds what this one needs
    └── UpstreamError       a store or service we depend on failed (ClickHouse, Postgres, Slack, Linear)
        └── ClusterUnavailable  no region of a cluster answered

Messages never contain secrets: build them from names, never from DSNs or tokens.
"""

from __future__ import annotations


class ShepherdError(Exception):
    """Base of every error Shepherd raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, usage: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage

    def reply(self) -> str:
        """The text shown to a person (CLI line or ephemeral Slack message)."""
        if self.usage:
            return f"{self.message}\nUsage: {self.usage}"
        return self.message


class UserInputError(ShepherdError):
    exit_code = 2


class ConfigError(UserInputError):
    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{listed}")


class NotAuthorized(ShepherdError):
    exit_code = 3


class ConflictError(ShepherdError):
    exit_code = 4


class UpstreamError(ShepherdError):
    exit_code = 5


class ClusterUnavailable(UpstreamError):
    pass


class StackBusy(ShepherdError):
    """The embedded stack's data directory is held by another running `shepherd dev`."""

    exit_code = 6
