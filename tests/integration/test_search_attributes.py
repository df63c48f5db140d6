"""Search attributes on a job's workflow: found by the `temporal` CLI where registered; a namespace
without them still starts the job (without its attributes), and says so in the log."""

from __future__ import annotations

import json
import logging
import subprocess
import uuid
from dataclasses import replace

import pytest
from temporalio.common import WorkflowIDReusePolicy

from bot.embedded.stack import temporal_binary
from bot.temporal.models import BackfillJobInput
from bot.temporal.search_attributes import job_attributes, start_with_attributes

pytestmark = pytest.mark.asyncio(loop_scope="session")


def listed(address: str, query: str) -> list[str]:
    done = subprocess.run([temporal_binary(), "workflow", "list", "--address", address, "--query", query,
                           "--output", "json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [w["execution"]["workflowId"] for w in json.loads(done.stdout or "[]")]


async def test_registered_attributes_find_the_job_by_customer_and_cluster(temporal_env: object) -> None:
    client = temporal_env.client  # type: ignore[attr-defined]
    workflow_id = f"backfill-{uuid.uuid4().hex[:8]}"
    attributes = job_attributes(workflow_id, "backfill", ["hilton", "marriott", "hilton"], ["us-east"], "U_ALICE")
    await start_with_attributes(client, "BackfillJob", None, workflow_id, f"no-worker-{workflow_id}", attributes,
                                WorkflowIDReusePolicy.ALLOW_DUPLICATE)
    address = client.service_client.config.target_host
    assert workflow_id in listed(address, "ShepherdCustomers='marriott' AND ShepherdClusters='us-east'")
    assert workflow_id not in listed(address, "ShepherdCustomers='oportun'")
    await client.get_workflow_handle(workflow_id).terminate("test done")


async def test_a_namespace_without_them_still_starts_the_job(caplog: pytest.LogCaptureFixture) -> None:
    from temporalio.testing import WorkflowEnvironment

    caplog.set_level(logging.WARNING, logger="bot.temporal.search_attributes")
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(), ui=False,
                                                dev_server_extra_args=["--log-level", "error"])
    try:
        attributes = job_attributes("p-1", "purge", ["hilton"], ["us-east"], "U_ALICE")
        await start_with_attributes(env.client, "Purge", None, "purge-p-1", "no-worker", attributes,
                                    WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        described = await env.client.get_workflow_handle("purge-p-1").describe()
        assert described.id == "purge-p-1"
        assert "purge-p-1 started without its search attributes" in caplog.text
        # a backfill started there asks for no attributes on its windows' child workflows either
        tagged = BackfillJobInput(job_id="b-1", plan_hash="h", windows=[], parallel=1, tag_windows=True)
        await start_with_attributes(env.client, "BackfillJob", tagged, "backfill-b-1", "no-worker",
                                    job_attributes("b-1", "backfill", [], [], "U_ALICE"),
                                    WorkflowIDReusePolicy.ALLOW_DUPLICATE, untagged=replace(tagged, tag_windows=False))
        history = await env.client.get_workflow_handle("backfill-b-1").fetch_history()
        payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
        [started] = await env.client.data_converter.decode(payloads, [BackfillJobInput])
        assert started.tag_windows is False
    finally:
        await env.shutdown()
