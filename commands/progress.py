"""What a job's progress means: smoothed rates, ETA ranges, and the events worth a thread post.

Pure: the monitor passes in what it read (windows as Temporal reports them, earlier samples) and
the time. Every event has a key derived from the job's state alone (run, window, attempt, ...), so
a restarted monitor re-derives the same keys: nothing is posted twice and nothing that happened
while it was down is missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median, pstdev

RUNNING = ("running",)
FINAL = ("done", "failed", "cancelled", "stopped")


@dataclass(frozen=True)
class WindowSnap:
    key: str
    customer: str
    cluster: str
    start: str
    end: str
    state: str
    attempt: int
    done: int
    total: int
    started: datetime | None = None
    finished: datetime | None = None
    last_failure: str | None = None
    region: str | None = None
    heartbeat_at: datetime | None = None
    worker: str | None = None  # the Temporal identity of the worker running (or that ran) it


@dataclass(frozen=True)
class Policy:
    stall_s: float
    contention_ratio: float
    expected_rate: float  # conversations per second a window should manage (the throughput's low end)
    home_region: dict[str, str] = field(default_factory=dict)  # cluster -> its first region


@dataclass(frozen=True)
class Event:
    key: str
    text: str
    kind: str  # window_done | window_failed | retry | stall | contention | fallback | state | finished | no_worker


@dataclass(frozen=True)
class WindowRate:
    rate: float | None  # conversations per second, smoothed
    eta_s: tuple[float, float] | None  # remaining time range


def smoothed_rate(samples: Sequence[tuple[datetime, int]], alpha: float = 0.5) -> float | None:
    """An exponentially weighted rate over successive samples (oldest first); None before two."""
    rate: float | None = None
    for (t0, d0), (t1, d1) in zip(samples, samples[1:], strict=False):
        dt = (t1 - t0).total_seconds()
        if dt <= 0:
            continue
        step = max(d1 - d0, 0) / dt
        rate = step if rate is None else alpha * step + (1 - alpha) * rate
    return rate


def eta_range(remaining: int, rates: Sequence[float]) -> tuple[float, float] | None:
    """Remaining seconds at the best and the worst of the recent rates (widened by a quarter each way)."""
    useful = [r for r in rates if r > 0]
    if remaining <= 0:
        return (0.0, 0.0)
    if not useful:
        return None
    return remaining / (max(useful) * 1.25), remaining / (min(useful) * 0.75)


NOISE_K = 1.0  # the band around a window's own mean rate: this many standard deviations of its recent steps
MIN_SPREAD = 0.15  # ... and never narrower than this share of the mean
FLOOR = 0.2  # the slow end never below this share of the mean (a stalled step would make the ETA endless)
HISTORY_STEPS = 3  # the history weighs as much as this many of the window's own steps


def rate_band(rates: Sequence[float]) -> tuple[float, float] | None:
    """A window's likely rate range from its recent rates: the mean, widened by their spread (noisier, wider)."""
    seen = [max(r, 0.0) for r in rates]
    if not seen or (mean := sum(seen) / len(seen)) <= 0:
        return None
    spread = max(MIN_SPREAD * mean, NOISE_K * pstdev(seen) if len(seen) > 1 else 0.0)
    return max(mean - spread, FLOOR * mean), mean + spread


def window_eta(remaining: int, own: Sequence[float], history: tuple[float, float] | None
               ) -> tuple[float, float] | None:
    """Remaining seconds, (soonest, latest): from the window's own recent rates (per second), widened towards
    the customer's past windows' rate range `history` (per second) by a weight that falls as its own steps
    come in (the history only widens it; with no step yet, the history alone). Never negative."""
    remaining = max(remaining, 0)
    if remaining == 0:
        return (0.0, 0.0)
    band = rate_band(own)
    if history is not None and history[0] > 0 and history[1] >= history[0]:
        if band is None:
            band = history
        else:
            weight = HISTORY_STEPS / (HISTORY_STEPS + len(own))
            lo, hi = band
            band = (min(lo, lo + weight * (history[0] - lo)), max(hi, hi + weight * (history[1] - hi)))
    if band is None:
        return None
    return remaining / band[1], remaining / band[0]


def window_rate(samples: Sequence[tuple[datetime, int]], total: int,
                history: tuple[float, float] | None = None, done: int = 0) -> WindowRate:
    """A running window's smoothed rate and ETA range. `history`: its customer's past windows' rates (per
    second, slowest and fastest), when there are enough; `done`: its count when there is no sample yet."""
    rate = smoothed_rate(samples)
    recent = [max(d1 - d0, 0) / (t1 - t0).total_seconds()
              for (t0, d0), (t1, d1) in zip(samples[-6:], samples[-5:], strict=False) if t1 > t0]
    done = samples[-1][1] if samples else done
    own = [rate, *recent] if rate is not None else []
    return WindowRate(rate, window_eta(total - done, own, history))


def duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def window_events(job_state: str, run: int, windows: Sequence[WindowSnap], rates: dict[str, WindowRate],
                  now: datetime, policy: Policy) -> list[Event]:
    out: list[Event] = []
    for w in windows:
        name = f"{w.customer} {w.start}..{w.end}"
        if w.state == "done":
            took = (w.finished - w.started).total_seconds() if w.finished and w.started else 0.0
            speed = f", {w.done / took:,.0f}/s" if took > 0 else ""
            out.append(Event(f"done:{run}:{w.key}", f":white_check_mark: {name} finished: {w.done:,} conversations in "
                                                    f"{duration(took)}{speed}", "window_done"))
        elif w.state == "failed":
            why = (w.last_failure or "no reason given")[:300]
            out.append(Event(f"failed:{run}:{w.key}", f":x: {name} failed after {w.attempt} attempt(s): {why}",
                             "window_failed"))
        if w.attempt > 1 and w.state in ("running", "done", "failed"):
            out.append(Event(f"retry:{run}:{w.key}:{w.attempt}", f":repeat: {name}: attempt {w.attempt}"
                             + (f" after: {w.last_failure[:300]}" if w.last_failure else ""), "retry"))
        if w.region and policy.home_region.get(w.cluster) not in (None, w.region):
            said = f":twisted_rightwards_arrows: {name}: cluster {w.cluster} answered from region {w.region}"
            out.append(Event(f"fallback:{w.key}:{w.region}", said, "fallback"))
        if w.state == "running" and w.heartbeat_at and (now - w.heartbeat_at).total_seconds() >= policy.stall_s:
            out.append(Event(f"stall:{run}:{w.key}:{w.attempt}:{w.done}",
                             f":warning: {name} looks stalled: no heartbeat since {w.heartbeat_at:%H:%M:%S} UTC "
                             f"({duration((now - w.heartbeat_at).total_seconds())}) at {w.done:,}/{w.total:,}",
                             "stall"))
    running = [w for w in windows if w.state == "running" and rates.get(w.key, WindowRate(None, None)).rate is not None]
    floor = policy.contention_ratio * policy.expected_rate
    if len(running) >= 2 and all((rates[w.key].rate or 0) < floor for w in running):
        slow = median(rates[w.key].rate or 0 for w in running)
        said = (f":turtle: all {len(running)} running windows are below {policy.contention_ratio:.0%} of the "
                f"expected {policy.expected_rate:,.1f}/s (median {slow:,.1f}/s): the cluster looks contended. "
                f"Consider `/backfill throttle JOB {max(len(running) // 2, 1)}`.")
        out.append(Event(f"contention:{run}", said, "contention"))
    if job_state in ("paused", "cancelling"):
        out.append(Event(f"state:{run}:{job_state}", f":information_source: job is {job_state}", "state"))
    return out
