"""Estimates that learn: a customer's rate from its past windows, in place of the configured range.

Pure: the caller reads the finished windows (conversations and how long each took) from the job
results it keeps. With at least MIN_WINDOWS of a customer, its range is the slowest and the fastest
rate seen, each widened by MARGIN; before that, the configured range stands. The plan says which.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from commands.models import Throughput

MIN_WINDOWS = 3
MARGIN = 0.10


@dataclass(frozen=True)
class PastWindow:
    customer: str
    conversations: int
    seconds: float


@dataclass(frozen=True)
class Learned:
    throughput: Throughput  # conversations per hour, one window workflow
    windows: int

    def note(self) -> str:
        t = self.throughput
        return f"learned from {self.windows} past windows: {t.low:,.0f}-{t.high:,.0f}/h"


def learned_rates(history: Sequence[PastWindow], min_windows: int = MIN_WINDOWS,
                  margin: float = MARGIN) -> dict[str, Learned]:
    """Per customer with enough history: the range of its past windows' rates (per hour), widened."""
    rates: dict[str, list[float]] = defaultdict(list)
    for w in history:
        if w.conversations > 0 and w.seconds > 0:
            rates[w.customer].append(w.conversations * 3600.0 / w.seconds)
    return {customer: Learned(Throughput(low=min(found) / (1 + margin), high=max(found) * (1 + margin)), len(found))
            for customer, found in rates.items() if len(found) >= min_windows}


def throughput_for(customers: Sequence[str], learned: Mapping[str, Learned], configured: Throughput
                   ) -> tuple[dict[str, Throughput], dict[str, str]]:
    """Each customer's range and a note of where it came from."""
    said = f"configured: {configured.low:,.0f}-{configured.high:,.0f}/h"
    return ({c: learned[c].throughput if c in learned else configured for c in customers},
            {c: learned[c].note() if c in learned else said for c in customers})
