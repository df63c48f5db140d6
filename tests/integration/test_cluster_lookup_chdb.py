"""Cluster lookup handing out real embedded ClickHouse connections."""

from __future__ import annotations

import os
from typing import Any

import pytest

from bot.adapters.clickhouse import ChdbClickHouse
from bot.adapters.clusters import NO_CLUSTERS, ClusterLookup, DefaultResolver, RegionAttempts
from bot.adapters.ports import ClickHouse
from bot.adapters.sql import ch_table
from bot.config import Cluster, LookupSettings, Region

pytestmark = pytest.mark.integration

SETTINGS = LookupSettings(attempts_per_region=4, base_delay_s=0.5, max_delay_s=8.0)


class FlakyConnstring:
    """Like the seed's `cresta-cli connstring`: no valid clusters for the first `empty` calls."""

    def __init__(self, session: Any, empty: int) -> None:
        self.session = session
        self.empty = empty
        self.calls = 0

    def resolve(self, cluster: Cluster, region: Region) -> ClickHouse | None:
        self.calls += 1
        if self.calls <= self.empty:
            return None
        return ChdbClickHouse(self.session, region.database)


def test_intermittent_empty_answer_then_a_working_chdb_connection(
    chdb_session: Any, ch_database: str
) -> None:
    chdb_session.query(
        f"CREATE TABLE {ch_table(ch_database, 'scores')} (customer_id String, value Float64)"
        " ENGINE = MergeTree ORDER BY customer_id"
    )
    cluster = Cluster(
        name="voice-prod",
        regions=(
            Region(name="us-east-1", engine="chdb", database=ch_database),
            Region(name="us-west-2", engine="chdb", database=ch_database),
        ),
    )
    sleeps: list[float] = []
    resolver = FlakyConnstring(chdb_session, empty=2)
    result = ClusterLookup([cluster], resolver, SETTINGS, sleep=sleeps.append).connect("voice-prod")
    assert (result.region, result.attempts, result.fell_back) == ("us-east-1", 3, False)
    assert result.tried == [RegionAttempts("us-east-1", 3, NO_CLUSTERS)]
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0
    client = result.client
    assert isinstance(client, ChdbClickHouse) and client.database == ch_database
    assert client.insert_csv("scores", ["customer_id", "value"], b"hilton,1.5\nhilton,2.5\n") == 2
    table = ch_table(client.database, "scores")
    assert client.query(
        f"SELECT sum(value) FROM {table} WHERE customer_id = {{c:String}}", {"c": "hilton"}
    ) == [(4.0,)]


def test_default_resolver_gives_each_chdb_region_its_database(chdb_session: Any, ch_database: str) -> None:
    cluster = Cluster(name="chat-prod", regions=(Region(name="local", engine="chdb", database=ch_database),))
    lookup = ClusterLookup(
        [cluster], DefaultResolver(os.environ, lambda: chdb_session), SETTINGS, sleep=lambda s: None
    )
    result = lookup.connect("chat-prod")
    assert result.attempts == 1 and result.note() is None
    assert isinstance(result.client, ChdbClickHouse)
    assert result.client.database == ch_database
    assert result.client.query("SELECT {db:String}, 1 + 1", {"db": ch_database}) == [(ch_database, 2)]
