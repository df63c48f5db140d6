"""A `shepherd worker` process whose embedded ClickHouse runs no merges (so no mutations) on one table.

`python -m tests.integration.purge_stalled_worker DB.TABLE` (SHEPHERD_* variables as for
`bot.temporal.worker_main`): a purge chunk on that table issues its mutation and then waits on it
for as long as this process lives, so a test can SIGKILL the worker in the middle of a chunk. The
stop lives in this process's memory only: the next worker on the same data runs the mutation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.adapters.chdb_session import shared_session
from bot.adapters.sql import quote_ident
from bot.settings import Settings
from bot.temporal.worker_main import main

if __name__ == "__main__":
    database, table = sys.argv[1].split(".")
    session = shared_session(Path(Settings().data_dir) / "clickhouse")
    session.query(f"SYSTEM STOP MERGES {quote_ident(database)}.{quote_ident(table)}")
    sys.exit(main())
