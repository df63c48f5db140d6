"""The one chdb session of this process.

chdb allows a single data path per process ("EmbeddedServer already initialized with path ...").
Every part of Shepherd that needs embedded ClickHouse (the stack, the demo loader, tests) goes
through `shared_session`, so they share one session, one database per cluster.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from bot.errors import UpstreamError

_lock = threading.Lock()
_session: Any = None
_path: Path | None = None


def shared_session(path: Path) -> Any:
    """Open (once) and return the process's chdb session at `path`."""
    global _session, _path
    path = Path(path).resolve()
    with _lock:
        if _session is not None:
            if _path != path:
                raise UpstreamError(
                    f"embedded ClickHouse is already open at {_path}; one process can use one data path"
                )
            return _session
        from chdb import session as chdb_session

        path.mkdir(parents=True, exist_ok=True)
        _session = chdb_session.Session(str(path))
        _path = path
        return _session


def current_path() -> Path | None:
    return _path
