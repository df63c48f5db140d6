"""`python -m bot.temporal.worker_main`: a worker process configured only by SHEPHERD_* variables.

For worker subprocesses (the crash tests, a process supervisor): SHEPHERD_POSTGRES_DSN,
SHEPHERD_TEMPORAL_ADDRESS, SHEPHERD_TEMPORAL_TASK_QUEUE, SHEPHERD_CONFIG_PATH and, for regions on
the embedded engine, SHEPHERD_DATA_DIR (its chdb lives under DATA_DIR/clickhouse). SIGTERM stops
it; SIGKILL is what a crash looks like.
"""

from __future__ import annotations

import logging
import sys

from bot.errors import ShepherdError
from bot.settings import Settings


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from bot.cli.worker import run_worker

    try:
        return run_worker(Settings())
    except ShepherdError as err:
        print(f"shepherd worker: {err.reply()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
