"""The Temporal SDK's own metrics (workflow and activity task latencies, slots, polls...) in Prometheus form."""

from __future__ import annotations

import logging

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from bot.settings import Settings

log = logging.getLogger(__name__)
SERVE_METRICS_PORT = 9100
WORKER_METRICS_PORT = 9101
SDK_METRICS_PORT = 9102


def sdk_metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal Runtime exporting the SDK's metrics on sdk_metrics_port (default 9102); None when the
    port cannot be bound (said in the log: the worker runs without them)."""
    port = settings.sdk_metrics_port if settings.sdk_metrics_port is not None else SDK_METRICS_PORT
    try:
        return Runtime(telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"{settings.metrics_host}:{port}")))
    except Exception as err:  # the SDK's core reports a taken port as a plain RuntimeError
        log.warning("Temporal SDK metrics are off: cannot listen on %s:%s (%s)", settings.metrics_host, port, err)
        return None
