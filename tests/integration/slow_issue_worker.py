"""A `shepherd worker` process whose purge deletes reach ClickHouse `ISSUE_DELAY_S` after the chunk
decided to issue (its queue check passed), as over a slow link to a far cluster.

`python -m tests.integration.slow_issue_worker [worker arguments]`. The delay widens the moment
between reading `system.mutations` and the `ALTER` landing: without the fleet-wide issue lock, two
workers reading the queue within it would both issue.
"""

from __future__ import annotations

import sys
import time

from bot.cli.main import main
from bot.purge.target import Target

ISSUE_DELAY_S = 0.8
_issue = Target.issue


def slow_issue(self: Target, strategy: str) -> None:
    time.sleep(ISSUE_DELAY_S)
    _issue(self, strategy)


if __name__ == "__main__":
    Target.issue = slow_issue  # type: ignore[method-assign]
    sys.exit(main(["worker", *sys.argv[1:]]))
