"""Process settings from the environment (prefix SHEPHERD_): secrets, DSNs, where things live.

Secrets are `SecretStr`: their repr is masked, so they cannot leak through logs or exceptions.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHEPHERD_", extra="ignore")

    config_path: Path = Path("shepherd.yml")
    data_dir: Path = Path(".shepherd")  # embedded stack data (shepherd dev, CLI)

    # Postgres: bot state, and by default also the source scorecards. None: embedded server.
    postgres_dsn: SecretStr | None = None
    source_dsn: SecretStr | None = None  # None: same database as postgres_dsn

    temporal_address: str | None = None  # None: embedded dev server
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    # Temporal Cloud / a TLS-secured Temporal (bot/temporal/connection.py): an API key, or an mTLS client
    # certificate and key (PEM file paths); a CA file and server name for a private CA.
    temporal_api_key: SecretStr | None = None
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_task_queue: str = "shepherd"  # the control queue: job workflows (and clusters naming no queue)
    # The task queues a worker polls, comma-separated. None: the control queue and every cluster's queue.
    worker_queues: str | None = None
    # On SIGTERM a worker stops taking work and waits this long for its activities to hand back (each
    # does at its next progress point; what is still running then is cancelled and handed back too).
    worker_drain_s: float = 30.0

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # Socket Mode
    slack_api_url: str | None = None  # None: https://slack.com/api/

    linear_api_key: SecretStr | None = None
    linear_api_url: str = "https://api.linear.app/graphql"

    # Operations (bot/ops): /metrics, /healthz and /readyz on metrics_host:metrics_port. None: the
    # command's default (serve 9100, worker 9101, dev a free port); 0: a free port (printed).
    metrics_host: str = "0.0.0.0"
    metrics_port: int | None = None
    sdk_metrics_port: int | None = None  # the worker's Temporal SDK metrics (Prometheus); None: 9102
    log_format: str = "text"  # text | json (one JSON object a line)
