"""One issuer at a time per cluster table, across every worker of the fleet.

`max_unfinished_mutations` is read from ClickHouse's `system.mutations`, which every worker sees; but
between that read and its `ALTER` another worker (or another chunk in this one) could read the same
count and issue too, so the cap would be passed by one per concurrent issuer. The read and the issue
therefore happen under a transaction-scoped Postgres advisory lock on the state database all workers
share, keyed by (cluster, table), and held until the new mutation shows in `system.mutations`. A
worker that dies holding it loses its connection, and Postgres releases the lock with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOCK_CLASS = 0x5348_4D55  # "SHMU": first key of the two-key advisory lock; the second hashes the table
_local = threading.Lock()  # no state database (unit tests): one issuer per process


@contextmanager
def issue_turn(state: Any, cluster: str, table: str) -> Iterator[bool]:
    """Yields whether this caller holds the turn to read the queue and issue on `cluster`'s `table`
    (never blocks: a False caller waits a moment and asks again)."""
    if state is None:
        got = _local.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                _local.release()
        return
    with state.connection() as conn, conn.transaction():
        row = conn.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))",
                           (LOCK_CLASS, f"{cluster}/{table}")).fetchone()
        yield bool(row and row[0])  # released when the transaction ends
