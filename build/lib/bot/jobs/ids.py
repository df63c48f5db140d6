"""Job ids people can type, and the workflow id each job kind runs under."""

from __future__ import annotations

import uuid


def new_job_id(kind: str) -> str:
    """A short id people can type: "b-7f3a2c" for a backfill, "p-..." for a purge."""
    return f"{kind[0]}-{uuid.uuid4().hex[:6]}"


def job_workflow_id(kind: str, job_id: str) -> str:
    return f"{kind}-job:{job_id}"
