"""Purge plans that cannot run are refused before anything starts; chunk tags are exact."""

from __future__ import annotations

from datetime import date

import pytest

from bot.errors import UserInputError
from bot.purge.activities import chunk_tag
from bot.purge.service import check_purge_plan
from bot.temporal.models import ChunkInput, ChunkSpec
from commands.chunks import plan_purge
from commands.models import CustomerRef, DateRange, PurgeDayCount, PurgePolicy

RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 6))


def plan(cluster: str = "us-east-2") -> object:
    counts = [PurgeDayCount(cluster=cluster, customer="oportun", day=d, scorecards=10, scores=90)
              for d in RANGE.each_day()]
    return plan_purge(counts, [CustomerRef(name="oportun", cluster=cluster)], RANGE, (1, 2, 3),
                      PurgePolicy(max_rows_per_mutation=100))


def test_a_good_plan_passes() -> None:
    check_purge_plan(plan(), {"us-east-2"})  # type: ignore[arg-type]


def test_an_empty_plan_is_refused() -> None:
    empty = plan().model_copy(update={"clusters": ()})  # type: ignore[attr-defined]
    with pytest.raises(UserInputError, match="no chunks"):
        check_purge_plan(empty, {"us-east-2"})


def test_an_unknown_cluster_is_refused() -> None:
    with pytest.raises(UserInputError, match="unknown cluster mars"):
        check_purge_plan(plan("mars"), {"us-east-2"})  # type: ignore[arg-type]


def test_chunk_tags_name_job_cluster_and_chunk_with_safe_characters_only() -> None:
    spec = ChunkSpec(index=12, customer="oportun", table="scores", start="2026-01-03", end="2026-01-03", rows=1)
    inp = ChunkInput(job_id="p-1a2b3c", cluster="us-east-2", chunk=spec, types=[1], strategy="mutation",
                     max_unfinished_mutations=2, drift_tolerance=0.01)
    assert chunk_tag(inp) == "shepherd:p-1a2b3c:us-east-2:12"
    odd = ChunkInput(**{**inp.__dict__, "job_id": "p-x'; DROP"})
    assert chunk_tag(odd) == "shepherd:p-x___DROP:us-east-2:12"
