"""The Temporal Cloud connection options build the right client arguments (no Temporal Cloud is
reachable from the tests: the clients are built lazily and their configuration read back)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.service import TLSConfig

from bot.cli.worker import connect_temporal
from bot.errors import UserInputError
from bot.settings import Settings
from bot.temporal.connection import client_options, without_secrets

KEY = "tcld-secret-api-key-123"


async def test_an_api_key_goes_over_tls_to_the_namespace() -> None:
    settings = Settings(temporal_namespace="acme.a1b2c", temporal_api_key=SecretStr(KEY))
    options = client_options(settings)
    assert options == {"namespace": "acme.a1b2c", "tls": True, "api_key": KEY}
    client = await Client.connect("acme.a1b2c.tmprl.cloud:7233", **options, lazy=True)
    assert client.namespace == "acme.a1b2c"
    assert client.service_client.config.api_key == KEY and client.service_client.config.tls is True
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())
    assert without_secrets(f"bad key {KEY}", settings) == "bad key ***"


async def test_mtls_reads_the_client_certificate_key_and_ca(tmp_path: Path) -> None:
    for name in ("client.pem", "client.key", "ca.pem"):
        (tmp_path / name).write_bytes(f"-----{name}-----".encode())
    settings = Settings(temporal_tls_cert=tmp_path / "client.pem", temporal_tls_key=tmp_path / "client.key",
                        temporal_tls_ca=tmp_path / "ca.pem", temporal_tls_server_name="acme.tmprl.cloud")
    options = client_options(settings)
    assert options["tls"] == TLSConfig(client_cert=b"-----client.pem-----", client_private_key=b"-----client.key-----",
                                       server_root_ca_cert=b"-----ca.pem-----", domain="acme.tmprl.cloud")
    assert options["api_key"] is None
    client = await Client.connect("acme.tmprl.cloud:7233", **options, lazy=True)
    assert client.service_client.config.tls == options["tls"]


async def test_a_missing_half_or_an_unreadable_file_is_named_without_contents(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("PRIVATE")
    with pytest.raises(UserInputError, match="both SHEPHERD_TEMPORAL_TLS_CERT and SHEPHERD_TEMPORAL_TLS_KEY"):
        await connect_temporal(Settings(temporal_tls_cert=cert), "acme.tmprl.cloud:7233")
    settings = Settings(temporal_tls_cert=cert, temporal_tls_key=tmp_path / "nope.key")
    with pytest.raises(UserInputError) as info:
        client_options(settings)
    assert "SHEPHERD_TEMPORAL_TLS_KEY" in info.value.reply() and "nope.key" in info.value.reply()
    assert "PRIVATE" not in info.value.reply()


def test_plain_settings_keep_the_tls_flag() -> None:
    assert client_options(Settings())["tls"] is False
    assert client_options(Settings(temporal_tls=True))["tls"] is True


def test_a_clickhouse_region_over_tls_names_its_ca_file() -> None:
    from bot.adapters.clickhouse import connect_options
    from bot.config import Region

    env = {"CH_USER": "reader", "CH_PASSWORD": "pw-secret"}
    region = Region(name="us-west-2", host="ch.usw2.internal", port=8443, database="analytics",
                    ca_file="/etc/ssl/private-ca.pem", username_env="CH_USER", password_env="CH_PASSWORD")
    assert connect_options(region, env) == {
        "host": "ch.usw2.internal", "port": 8443, "secure": True, "database": "analytics", "username": "reader",
        "password": "pw-secret", "ca_cert": "/etc/ssl/private-ca.pem"}
    plain = region.model_copy(update={"tls": False})
    assert "ca_cert" not in connect_options(plain, env) and connect_options(plain, env)["secure"] is False
