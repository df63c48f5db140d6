"""A worker interceptor counting the activities running (windows, chunks) and timing each."""

from __future__ import annotations

import inspect
import time
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from bot.ops.metrics import ShepherdMetrics


class ActivityMetrics(Interceptor):
    def __init__(self, metrics: ShepherdMetrics) -> None:
        self.metrics = metrics

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Timed(next, self.metrics)


class _Timed(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, metrics: ShepherdMetrics) -> None:
        super().__init__(next)
        self.metrics = metrics

    def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        running = self.metrics.activities_running.labels(name)
        began = time.monotonic()
        running.inc()
        try:
            result = super().execute_activity(input)
        except BaseException:
            self._done(name, began, "failed")
            raise
        if inspect.isawaitable(result):
            return self._awaited(result, name, began)
        self._done(name, began, "ok")
        return result

    async def _awaited(self, result: Any, name: str, began: float) -> Any:
        try:
            value = await result
        except BaseException:
            self._done(name, began, "failed")
            raise
        self._done(name, began, "ok")
        return value

    def _done(self, name: str, began: float, outcome: str) -> None:
        self.metrics.activities_running.labels(name).dec()
        self.metrics.activity_seconds.labels(name, outcome).observe(time.monotonic() - began)
