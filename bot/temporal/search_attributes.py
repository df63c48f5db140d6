"""Typed search attributes on every Shepherd job workflow, so operators find jobs in Temporal:

    temporal workflow list --query "ShepherdCustomers='hilton' AND ShepherdKind='backfill'"

The embedded dev server registers them at start (`server_args`); a production namespace needs them
once (`temporal operator search-attribute create --name ShepherdJobId --type Keyword ...`, see the
README). A namespace without them still runs jobs: the start is retried without, and that is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from temporalio.client import Client
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)

JOB_ID = SearchAttributeKey.for_keyword("ShepherdJobId")
KIND = SearchAttributeKey.for_keyword("ShepherdKind")
CUSTOMERS = SearchAttributeKey.for_keyword_list("ShepherdCustomers")
CLUSTERS = SearchAttributeKey.for_keyword_list("ShepherdClusters")
REQUESTER = SearchAttributeKey.for_keyword("ShepherdRequester")
KEYS: tuple[SearchAttributeKey, ...] = (JOB_ID, KIND, CUSTOMERS, CLUSTERS, REQUESTER)  # type: ignore[type-arg]
CLI_TYPES = {"KEYWORD": "Keyword", "KEYWORD_LIST": "KeywordList"}


def server_args() -> list[str]:
    """`temporal server start-dev` arguments registering Shepherd's search attributes."""
    out: list[str] = []
    for key in KEYS:
        out += ["--search-attribute", f"{key.name}={CLI_TYPES[key.indexed_value_type.name]}"]
    return out


def job_attributes(job_id: str, kind: str, customers: Iterable[str], clusters: Iterable[str],
                   requester: str) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(JOB_ID, job_id), SearchAttributePair(KIND, kind),
        SearchAttributePair(CUSTOMERS, sorted(set(customers))), SearchAttributePair(CLUSTERS, sorted(set(clusters))),
        SearchAttributePair(REQUESTER, requester),
    ])


def not_registered(err: RPCError) -> bool:
    """Temporal refused a start because the namespace does not know one of the attributes."""
    return err.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in err.message.lower()


def warn_not_registered(job_id: str, err: RPCError) -> None:
    log.warning("job %s started without its search attributes: %s (register them: see the README, Operations)",
                job_id, err.message)


async def start_with_attributes(client: Client, workflow: str, inp: Any, workflow_id: str, task_queue: str,
                                attributes: TypedSearchAttributes, reuse: WorkflowIDReusePolicy,
                                untagged: Any = None) -> None:
    """Start a job's workflow with its search attributes; when the namespace lacks them, start it
    without (with the `untagged` input if given: one that asks for no attributes on child workflows)."""
    async def start(with_attributes: bool) -> None:
        await client.start_workflow(
            workflow, inp if with_attributes or untagged is None else untagged, id=workflow_id, task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, id_reuse_policy=reuse,
            search_attributes=attributes if with_attributes else TypedSearchAttributes.empty)

    try:
        await start(True)
    except RPCError as err:
        if not not_registered(err):
            raise
        warn_not_registered(workflow_id, err)
        await start(False)
