"""The backfill autopilot: how many windows to run at once, from the rates the windows report.

Pure and deterministic (the BackfillJob workflow runs it): the caller passes in each reading (the
running windows' summed rate, in conversations per hour) and the time; `decide` answers the next N,
or nothing. It climbs while the aggregate rate climbs (N x 1.5 each step), then searches between the
best N and the first N that did not pay (halving the gap), and settles on the best N it measured
(the smallest N no larger N beat by `min_gain`).
Settled, it lowers N when the aggregate has fallen well below what that N gave and the per-window rate
has collapsed (contention), and climbs again from there. N never leaves [floor, maximum] and never
changes twice within `hold_s`; a reading is judged only when exactly N windows were running, at least
`settle_s` after the change (new windows getting going). Readings that carry the job's done count are
judged by the job's progress over wall time (`progress_rate`), not by the sum of the windows' rates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from statistics import median
from typing import Any

CLIMBING, SEARCHING, SETTLED = "climbing", "searching", "settled"
MIN_READINGS = 2


@dataclass(frozen=True)
class Policy:
    floor: int = 1
    maximum: int = 16
    start: int = 2
    hold_s: float = 600.0  # at least this long between two changes of N
    settle_s: float = 120.0  # readings this soon after a change are not judged (windows starting up)
    interval_s: float = 60.0  # how often the job reads its windows' heartbeats
    min_gain: float = 0.10  # a higher N must raise the aggregate by this fraction to be worth it
    collapse_ratio: float = 0.5  # per-window rate below this x the best seen, aggregate down: contention

    def clamp(self, n: int) -> int:
        return max(self.floor, min(self.maximum, n))


@dataclass(frozen=True)
class Reading:
    at: float  # seconds (the workflow's clock)
    running: int  # windows running with a measured rate (judged by progress: windows in flight)
    aggregate: float  # their summed rate, conversations per hour
    # The job's conversations done by `at`: finished windows' counts plus the running ones' heartbeats
    # carried forward to `at` at their rates. Given, the judgement is the job's own progress over wall
    # time between readings, which also sees what heartbeats do not show: windows starting, the gap
    # between one finishing and the next running. None: judged by the summed heartbeat rates.
    done: float | None = None
    known: int | None = None  # with `done`: how many windows' rates make `aggregate` (None: `running`)

    def window_rate(self) -> float:
        """The mean heartbeat rate of a window in this reading (per hour)."""
        known = self.running if self.known is None else self.known
        return self.aggregate / known if known > 0 else 0.0


@dataclass(frozen=True)
class Change:
    at: float
    from_n: int
    to_n: int
    reason: str
    aggregate: float  # the aggregate measured at from_n (per hour)
    per_window: float


@dataclass(frozen=True)
class State:
    n: int
    since: float  # when N was last set (or last judged)
    phase: str = CLIMBING
    measured: tuple[tuple[int, float], ...] = ()  # (N, aggregate per hour), latest per N, N ascending
    readings: tuple[Reading, ...] = ()  # since the last judgement
    best_per_window: float = 0.0
    settled_at: float = 0.0  # the aggregate the settled N gave


def start(policy: Policy, now: float, n: int | None = None) -> State:
    return State(n=policy.clamp(policy.start if n is None else n), since=now)


def observe(state: State, reading: Reading) -> State:
    return replace(state, readings=(*state.readings, reading))


Beats = dict[str, tuple[float, int]]  # {window: (last heartbeat time s, done)}


def window_rates(before: Mapping[str, tuple[float, int]], after: Mapping[str, tuple[float, int]]) -> dict[str, float]:
    """Per-window rate (per hour) between two heartbeat samples {window: (heartbeat time s, done)}."""
    rates: dict[str, float] = {}
    for key, (t1, d1) in after.items():
        if key in before and t1 > before[key][0]:
            t0, d0 = before[key]
            rates[key] = max(d1 - d0, 0) * 3600.0 / (t1 - t0)
    return rates


def advance(beats: Mapping[str, tuple[float, int]], rates: Mapping[str, float],
            samples: Mapping[str, tuple[float, int]]) -> tuple[Beats, dict[str, float]]:
    """The running windows' beats and rates after a read: a window whose heartbeat has not moved since
    the last read keeps its last rate (heartbeats reach Temporal only every few seconds); a new window
    has none yet; a window no longer running is dropped."""
    fresh = window_rates(beats, samples)
    kept: Beats = {}
    now_rates: dict[str, float] = {}
    for key, sample in samples.items():
        if key in fresh:
            kept[key], now_rates[key] = sample, fresh[key]
        elif key in beats and sample[0] <= beats[key][0]:
            kept[key] = beats[key]
            if key in rates:
                now_rates[key] = rates[key]
        else:
            kept[key] = sample
    return kept, now_rates


def reading(at: float, running: int, rates: Mapping[str, float]) -> Reading:
    """The summed rate of `running` windows from the rates known: windows that just started have none
    yet (their first heartbeats), so with at least three quarters known, the rest are counted at the
    known ones' mean (the windows share one resource); with fewer, the reading counts only the known
    ones, and is not judged at N."""
    known = len(rates)
    if known and 4 * known >= 3 * running:
        return Reading(at=at, running=running, aggregate=sum(rates.values()) * running / known)
    return Reading(at=at, running=known, aggregate=sum(rates.values()))


def job_done(at: float, finished: int, beats: Mapping[str, tuple[float, int]], rates: Mapping[str, float]) -> float:
    """The job's conversations done by `at`: `finished` (the ended windows' counts) plus each running
    window's last heartbeat count, carried forward from its heartbeat's time at its rate (per hour), so a
    heartbeat a few seconds old does not read as progress lost."""
    carried = 0.0
    for key, (t, done) in beats.items():
        carried += done + rates.get(key, 0.0) * max(at - t, 0.0) / 3600.0
    return finished + carried


def progress_rate(readings: list[Reading]) -> float | None:
    """Conversations per hour over wall time from the first to the last reading (None without the counts)."""
    if len(readings) < 2 or any(r.done is None for r in readings) or readings[-1].at <= readings[0].at:
        return None
    first, last = readings[0], readings[-1]
    assert first.done is not None and last.done is not None
    return max(last.done - first.done, 0.0) * 3600.0 / (last.at - first.at)


def next_up(n: int) -> int:
    return n + max(1, math.ceil(n / 2))


def decide(state: State, policy: Policy, now: float, pending: int) -> tuple[State, Change | None]:
    """The state after judging the readings so far, and the change of N to make (None: keep N).

    `pending` is how many windows have not started yet: with none left, N is not raised."""
    if now - state.since < policy.hold_s:
        return state, None
    judged = [r for r in state.readings if r.at >= state.since + policy.settle_s and r.running == state.n]
    if len(judged) < MIN_READINGS:
        return state, None  # not N windows running long enough (draining after a cut, or the job's tail)
    n = state.n
    by_progress = progress_rate(judged)
    aggregate = median(r.aggregate for r in judged) if by_progress is None else by_progress
    per_window = aggregate / n
    # Contention is the windows' own rate collapsing: read from their heartbeats whatever judges N.
    beat_rate = per_window if by_progress is None else median(r.window_rate() for r in judged)
    levels = {**dict(state.measured), n: aggregate}
    base = replace(state, measured=tuple(sorted(levels.items())), readings=(), since=now,
                   best_per_window=max(state.best_per_window, beat_rate))
    figures = f"aggregate {aggregate:,.0f}/h at N={n} ({per_window:,.0f}/h per window)"

    def move(to: int, reason: str, **updates: Any) -> tuple[State, Change | None]:
        to = policy.clamp(to)
        after = replace(base, n=to, **updates)
        if to == n:
            return after, None
        return after, Change(at=now, from_n=n, to_n=to, reason=reason, aggregate=aggregate, per_window=per_window)

    if state.phase == SETTLED:
        if (n > policy.floor and aggregate < state.settled_at * (1 - policy.min_gain)
                and beat_rate < policy.collapse_ratio * state.best_per_window):
            return move(n // 2, f"contention: {figures}, down from {state.settled_at:,.0f}/h; the per-window rate "
                                f"({beat_rate:,.0f}/h) fell below {policy.collapse_ratio:.0%} of its best "
                                f"({state.best_per_window:,.0f}/h)",
                        phase=CLIMBING, measured=(), best_per_window=0.0)
        return move(n, "")
    if state.phase == CLIMBING:
        below = [a for m, a in levels.items() if m < n]
        previous = below[-1] if below else None
        if previous is None or aggregate >= previous * (1 + policy.min_gain):
            if n < policy.maximum and pending > 0:
                why = "the first reading" if previous is None else f"up from {previous:,.0f}/h"
                return move(min(next_up(n), n + pending), f"rising: {figures}, {why}")
            return move(n, "", phase=SETTLED, settled_at=aggregate)
        return _search(move, levels, policy, figures)
    return _search(move, levels, policy, figures)


def best_level(levels: Mapping[int, float], min_gain: float) -> int:
    """The smallest N that no larger N beats by `min_gain` (fewer windows, less load, for the same work)."""
    ordered = sorted(levels)
    best = ordered[0]
    for n in ordered[1:]:
        if levels[n] >= levels[best] * (1 + min_gain):
            best = n
    return best


def _search(move: Any, levels: dict[int, float], policy: Policy, figures: str) -> tuple[State, Change | None]:
    """Try halfway between the best N and the next measured N above it, then (see below) the one below it;
    settle on the best once there is nothing left to try between."""
    best = best_level(levels, policy.min_gain)
    above = min((m for m in levels if m > best), default=policy.maximum + 1)
    below = max((m for m in levels if m < best), default=policy.floor - 1)
    said = f"{levels[best]:,.0f}/h at N={best} is the best so far"
    if above - best > 1:
        mid = (best + above) // 2
        return move(mid, f"searching: {figures}; {said}, trying N={mid}", phase=SEARCHING)
    # Below the best only if the climb may have stepped over the knee: nothing measured below (the start
    # was past it), or the per-window rate already fell between the level below and the best.
    past_knee = below < policy.floor or levels[best] / best < levels[below] / below * (1 - policy.min_gain)
    if past_knee and best - below > 1:
        mid = (best + below + 1) // 2
        return move(mid, f"searching: {figures}; {said}, trying N={mid}", phase=SEARCHING)
    return move(best, f"settled: {figures}; {said}, and its neighbours gave less", phase=SETTLED,
                settled_at=levels[best])


def describe(change: Change) -> str:
    """One line for the job's thread: the change, why, and the figures behind it."""
    arrow = ":arrow_up:" if change.to_n > change.from_n else ":arrow_down:"
    return f"{arrow} autopilot: {change.from_n} -> {change.to_n} windows at once. {change.reason}"
