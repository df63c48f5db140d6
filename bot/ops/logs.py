"""Logs: plain text by default; `SHEPHERD_LOG_FORMAT=json` gives one JSON object a line.

Each JSON line has ts, level, logger and message and, where known, job_id, workflow_id, user and
command: set for a scope with `log_context(...)` (context variables, so concurrent tasks keep their
own), and inside an activity taken from Temporal's activity info. Secrets never reach a record in the
first place (they are SecretStr); the formatter adds nothing but these fields.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from bot.errors import ConfigError

FIELDS = ("job_id", "workflow_id", "user", "command")
_context: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"shepherd_log_{name}", default=None) for name in FIELDS}
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def log_context(**values: str | None) -> Iterator[None]:
    """Within this scope (and the tasks it starts), log lines carry these fields."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log fields: {sorted(unknown)}")
    tokens = [(_context[k], _context[k].set(v)) for k, v in values.items() if v is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_context() -> dict[str, str]:
    found = {name: value for name, var in _context.items() if (value := var.get()) is not None}
    if "workflow_id" not in found:
        found.update(_activity_context())
    return found


def _activity_context() -> dict[str, str]:
    from temporalio import activity

    if not activity.in_activity():
        return {}
    info = activity.info()
    return {"workflow_id": info.workflow_id or "", "activity": info.activity_type}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(current_context())
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(log_format: str, level: int = logging.WARNING) -> None:
    """Set the root handler's format: "text" (the default) or "json"."""
    if log_format not in ("text", "json"):
        raise ConfigError("environment", [f"SHEPHERD_LOG_FORMAT={log_format!r}: use text or json"])
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level)
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    for handler in root.handlers:
        handler.setFormatter(formatter)
