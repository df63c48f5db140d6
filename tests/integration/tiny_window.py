"""A window workflow that does no work: a job of thousands of windows runs in minutes on the dev server."""

from __future__ import annotations

from typing import Any

from temporalio import workflow


@workflow.defn(name="TinyWindow")
class TinyWindow:
    @workflow.run
    async def run(self, window: dict[str, Any]) -> dict[str, Any]:
        return {"conversations": int(window.get("conversations", 0)), "region": "tiny"}
