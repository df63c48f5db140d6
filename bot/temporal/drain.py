"""A stopping worker hands its running activities back instead of finishing or cancelling them.

On SIGTERM the worker stops polling and tells its activities (`activity.is_worker_shutdown()`); each
one, at its next progress point, raises WorkerStopping: a retryable failure, so Temporal gives the
attempt to another worker at once, which resumes from the last heartbeat (a window from its day, a
purge chunk by following the mutation it issued). Nothing is cancelled: a purge chunk's mutation keeps
running in ClickHouse. What has not handed back within the drain time is cancelled by the SDK and
handed back the same way.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

WORKER_STOPPING = "WorkerStopping"


def stopping() -> bool:
    return activity.is_worker_shutdown()


def handed_back(where: str) -> ApplicationError:
    # BENIGN: an expected hand-back, logged by the SDK at debug level (no traceback in a clean stop's log).
    return ApplicationError(f"worker stopping: handed back {where}; another worker resumes it", type=WORKER_STOPPING,
                            category=ApplicationErrorCategory.BENIGN)


def hand_back_if_stopping(where: str) -> None:
    if stopping():
        raise handed_back(where)
