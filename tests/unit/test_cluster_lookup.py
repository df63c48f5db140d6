"""Cluster lookup: retries with backoff, region fallback, and the seed's empty-validClusters failure."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from bot.adapters.clusters import NO_CLUSTERS, ClusterLookup, DefaultResolver, RegionAttempts
from bot.adapters.ports import ClickHouse, RegionResolver
from bot.config import Cluster, LookupSettings, Region
from bot.errors import ClusterUnavailable, UpstreamError, UserInputError

VOICE = Cluster(
    name="voice-prod",
    regions=(Region(name="us-east-1", database="analytics"), Region(name="us-west-2", database="analytics")),
)
CHAT = Cluster(name="chat-prod", regions=(Region(name="us-east-1", database="chat"),))
SETTINGS = LookupSettings(attempts_per_region=4, base_delay_s=0.5, max_delay_s=8.0)


class FakeClickHouse:
    """A ClickHouse port whose connection check answers or fails."""

    def __init__(self, database: str, healthy: bool = True) -> None:
        self.database = database
        self.healthy = healthy
        self.closed = False

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if not self.healthy:
            raise UpstreamError("ClickHouse (analytics): Code: 210. Connection refused")
        assert sql == "SELECT 1"
        return [(1,)]

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        raise NotImplementedError

    def insert_csv(self, table: str, columns: Sequence[str], csv_data: bytes) -> int:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


Outcome = FakeClickHouse | Exception | None


class ScriptedResolver:
    """Answers from a script per region (the last entry repeats); records every call."""

    def __init__(self, script: dict[str, list[Outcome]]) -> None:
        self.script = script
        self.calls: list[str] = []

    def resolve(self, cluster: Cluster, region: Region) -> ClickHouse | None:
        self.calls.append(region.name)
        answers = self.script[region.name]
        n = sum(1 for c in self.calls if c == region.name)
        answer = answers[min(n, len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


class UpperBound(random.Random):
    """Full jitter at its maximum, so the delays show the backoff schedule exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


def lookup(
    resolver: RegionResolver,
    sleeps: list[float],
    settings: LookupSettings = SETTINGS,
    rng: random.Random | None = None,
) -> ClusterLookup:
    return ClusterLookup([VOICE, CHAT], resolver, settings, sleep=sleeps.append, rng=rng or UpperBound())


def test_fakes_implement_the_ports() -> None:
    assert isinstance(FakeClickHouse("x"), ClickHouse)
    assert isinstance(ScriptedResolver({}), RegionResolver)


def test_first_try_success_has_no_note_and_no_sleep() -> None:
    sleeps: list[float] = []
    client = FakeClickHouse("analytics")
    result = lookup(ScriptedResolver({"us-east-1": [client]}), sleeps).connect("voice-prod")
    assert result.client is client
    assert (result.cluster, result.region, result.attempts, result.fell_back) == (
        "voice-prod",
        "us-east-1",
        1,
        False,
    )
    assert result.tried == [RegionAttempts("us-east-1", 1, None)]
    assert result.note() is None
    assert sleeps == []


def test_seed_intermittent_empty_valid_clusters_is_retried_in_the_same_region() -> None:
    # voice-prod's `cresta-cli connstring` answered no valid clusters twice, then worked.
    sleeps: list[float] = []
    client = FakeClickHouse("analytics")
    resolver = ScriptedResolver({"us-east-1": [None, None, client], "us-west-2": [FakeClickHouse("x")]})
    result = lookup(resolver, sleeps).connect("voice-prod")
    assert result.client is client
    assert result.region == "us-east-1"
    assert result.attempts == 3
    assert result.fell_back is False
    assert result.tried == [RegionAttempts("us-east-1", 3, NO_CLUSTERS)]
    assert resolver.calls == ["us-east-1"] * 3
    assert sleeps == [0.5, 1.0]  # base * 2**(n-1) after the n-th failure
    assert result.note() == "Cluster voice-prod: connected to us-east-1 on attempt 3."


def test_a_region_that_never_answers_falls_back_to_the_next_one() -> None:
    sleeps: list[float] = []
    west = FakeClickHouse("analytics")
    resolver = ScriptedResolver({"us-east-1": [None], "us-west-2": [west]})
    result = lookup(resolver, sleeps).connect("voice-prod")
    assert result.client is west
    assert result.region == "us-west-2"
    assert result.fell_back is True
    assert result.attempts == 5
    assert result.tried == [RegionAttempts("us-east-1", 4, NO_CLUSTERS), RegionAttempts("us-west-2", 1, None)]
    assert resolver.calls == ["us-east-1"] * 4 + ["us-west-2"]
    assert sleeps == [0.5, 1.0, 2.0]  # no wait before moving on to the next region
    note = result.note()
    assert note is not None
    assert (
        "us-east-1 failed 4 times (no valid clusters" in note and "fell back: connected to us-west-2" in note
    )


def test_a_cluster_that_never_works_names_cluster_regions_attempts_and_reason() -> None:
    sleeps: list[float] = []
    resolver = ScriptedResolver({"us-east-1": [None], "us-west-2": [TimeoutError("connstring timed out")]})
    with pytest.raises(ClusterUnavailable) as info:
        lookup(resolver, sleeps).connect("voice-prod")
    message = info.value.message
    assert "voice-prod" in message
    assert "us-east-1 (4 attempts)" in message and "us-west-2 (4 attempts)" in message
    assert message.endswith("last error: connstring timed out")
    assert isinstance(info.value, UpstreamError)
    assert sleeps == [0.5, 1.0, 2.0] * 2
    assert len(resolver.calls) == 8


def test_a_failing_connection_check_is_a_failed_attempt_and_closes_the_client() -> None:
    sleeps: list[float] = []
    broken = FakeClickHouse("analytics", healthy=False)
    good = FakeClickHouse("analytics")
    result = lookup(ScriptedResolver({"us-east-1": [broken, good]}), sleeps).connect("voice-prod")
    assert result.client is good
    assert broken.closed and not good.closed
    assert result.tried[0].attempts == 2
    assert result.tried[0].last_error is not None
    assert result.tried[0].last_error.startswith("connection check failed: ClickHouse (analytics)")


def test_credentials_in_a_resolver_error_never_reach_the_message() -> None:
    boom = ConnectionError("cannot reach https://shepherd:hunter2@ch.internal:8443 password=hunter2")
    resolver = ScriptedResolver({"us-east-1": [boom]})
    with pytest.raises(ClusterUnavailable) as info:
        lookup(resolver, []).connect("chat-prod")
    assert "hunter2" not in info.value.message
    assert "ch.internal" in info.value.message


def test_backoff_is_capped_at_max_delay() -> None:
    sleeps: list[float] = []
    settings = LookupSettings(attempts_per_region=6, base_delay_s=1.0, max_delay_s=3.0)
    with pytest.raises(ClusterUnavailable):
        lookup(ScriptedResolver({"us-east-1": [None]}), sleeps, settings).connect("chat-prod")
    assert sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_full_jitter_draws_each_delay_below_its_cap() -> None:
    sleeps: list[float] = []
    settings = LookupSettings(attempts_per_region=8, base_delay_s=0.5, max_delay_s=8.0)
    with pytest.raises(ClusterUnavailable):
        lookup(ScriptedResolver({"us-east-1": [None]}), sleeps, settings, random.Random(7)).connect(
            "chat-prod"
        )
    caps = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert len(sleeps) == len(caps)
    assert all(0.0 <= s <= cap for s, cap in zip(sleeps, caps, strict=True))
    assert sleeps != caps  # jittered, not the bare schedule


def test_unknown_cluster_lists_the_known_ones() -> None:
    resolver = ScriptedResolver({})
    with pytest.raises(
        UserInputError, match="unknown cluster 'eu-prod'; known clusters: chat-prod, voice-prod"
    ):
        lookup(resolver, []).connect("eu-prod")
    assert resolver.calls == []


def test_default_resolver_missing_credentials_is_not_retried_and_names_the_variable() -> None:
    cluster = Cluster(
        name="voice-prod",
        regions=(
            Region(
                name="us-east-1", host="ch.use1.internal", username_env="CH_USER", password_env="CH_PASSWORD"
            ),
            Region(
                name="us-west-2", host="ch.usw2.internal", username_env="CH_USER", password_env="CH_PASSWORD"
            ),
        ),
    )
    sleeps: list[float] = []
    env = {"CH_USER": "shepherd"}  # the password variable is missing

    def no_chdb() -> Any:
        raise AssertionError("a clickhouse region must not open chdb")

    lk = ClusterLookup([cluster], DefaultResolver(env, no_chdb), SETTINGS, sleep=sleeps.append)
    with pytest.raises(ClusterUnavailable) as info:
        lk.connect("voice-prod")
    assert "us-east-1 (1 attempt)" in info.value.message and "us-west-2 (1 attempt)" in info.value.message
    assert "environment variable CH_PASSWORD is not set" in info.value.message
    assert sleeps == []
