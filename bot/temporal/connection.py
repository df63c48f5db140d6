"""The arguments `Client.connect` gets from settings: namespace, TLS (server CA, mTLS client cert), API key.

Temporal Cloud takes either an API key (SHEPHERD_TEMPORAL_API_KEY, sent over TLS) or an mTLS client
certificate and key (SHEPHERD_TEMPORAL_TLS_CERT / _TLS_KEY, file paths). A self-hosted Temporal with
its own CA names it in SHEPHERD_TEMPORAL_TLS_CA. No key or file content ever reaches a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.service import TLSConfig

from bot.errors import UserInputError
from bot.settings import Settings


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserInputError(f"{setting}: cannot read {path} ({err.strerror})") from None


def tls_option(settings: Settings) -> bool | TLSConfig:
    """True/False, or a TLSConfig when a CA, a client certificate or a server name is given."""
    cert, key = settings.temporal_tls_cert, settings.temporal_tls_key
    if (cert is None) != (key is None):
        raise UserInputError("mTLS needs both SHEPHERD_TEMPORAL_TLS_CERT and SHEPHERD_TEMPORAL_TLS_KEY "
                             "(the client certificate and its private key, PEM files)")
    ca, server_name = settings.temporal_tls_ca, settings.temporal_tls_server_name
    if cert is None and ca is None and server_name is None:
        return settings.temporal_tls or settings.temporal_api_key is not None  # an API key always goes over TLS
    return TLSConfig(
        server_root_ca_cert=_read(ca, "SHEPHERD_TEMPORAL_TLS_CA") if ca is not None else None,
        client_cert=_read(cert, "SHEPHERD_TEMPORAL_TLS_CERT") if cert is not None else None,
        client_private_key=_read(key, "SHEPHERD_TEMPORAL_TLS_KEY") if key is not None else None,
        domain=server_name,
    )


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `Client.connect` beyond the address (and the runtime)."""
    key = settings.temporal_api_key
    return {"namespace": settings.temporal_namespace, "tls": tls_option(settings),
            "api_key": key.get_secret_value() if key is not None else None}


def without_secrets(text: str, settings: Settings) -> str:
    key = settings.temporal_api_key
    return text.replace(key.get_secret_value(), "***") if key is not None and key.get_secret_value() else text
