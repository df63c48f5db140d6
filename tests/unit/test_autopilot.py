"""Properties of the backfill autopilot (commands/autopilot.py) on simulated rate curves."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from commands import autopilot as ap


@dataclass(frozen=True)
class Curve:
    """A stationary contended resource: each window does `per_window`/h until more than `knee` run at
    once; past the knee the aggregate falls by `decay` per extra window."""

    per_window: float
    knee: int
    decay: float

    def aggregate(self, n: int) -> float:
        if n <= self.knee:
            return n * self.per_window
        return self.knee * self.per_window * self.decay ** (n - self.knee)


@dataclass
class Run:
    ns: list[tuple[float, int]]  # (time, N) after every tick
    changes: list[ap.Change]
    running: list[int]


def simulate(curve: Curve, policy: ap.Policy, ticks: int, drain_every: int = 1, pending: int = 10_000,
             noise: list[float] | None = None) -> Run:
    """Tick every interval: windows start at once up to N; above N one window ends every `drain_every` ticks."""
    state = ap.start(policy, 0.0)
    running = state.n
    out = Run([], [], [])
    for i in range(1, ticks + 1):
        now = i * policy.interval_s
        if running < state.n:
            running = state.n
        elif running > state.n and i % drain_every == 0:
            running -= 1
        factor = noise[i % len(noise)] if noise else 1.0
        state = ap.observe(state, ap.Reading(at=now, running=running, aggregate=curve.aggregate(running) * factor))
        state, change = ap.decide(state, policy, now, pending)
        if change is not None:
            out.changes.append(change)
        out.ns.append((now, state.n))
        out.running.append(running)
    return out


POLICY = ap.Policy(floor=1, maximum=16, start=2, hold_s=600, settle_s=120, interval_s=60)
curves = st.builds(Curve, per_window=st.floats(1_000, 100_000), knee=st.integers(1, 20),
                   decay=st.floats(0.3, 0.95))
policies = st.builds(ap.Policy, floor=st.integers(1, 3), maximum=st.integers(3, 24), start=st.integers(1, 6),
                     hold_s=st.sampled_from([60.0, 300.0, 600.0]), settle_s=st.sampled_from([0.0, 60.0, 120.0]),
                     interval_s=st.just(30.0))


@settings(max_examples=200, deadline=None)
@given(curves, policies, st.integers(1, 4), st.lists(st.floats(0.5, 1.5), min_size=1, max_size=7))
def test_never_leaves_floor_and_max_and_holds_between_changes(curve: Curve, policy: ap.Policy, drain: int,
                                                               noise: list[float]) -> None:
    run = simulate(curve, policy, ticks=400, drain_every=drain, noise=noise)
    assert all(policy.floor <= n <= max(policy.maximum, policy.floor) for _, n in run.ns)
    for a, b in zip(run.changes, run.changes[1:], strict=False):
        assert b.at - a.at >= policy.hold_s
    for c in run.changes:
        assert c.from_n != c.to_n and c.reason and f"{c.aggregate:,.0f}/h" in c.reason


@settings(max_examples=200, deadline=None)
@given(curves, st.integers(1, 4))
def test_converges_on_a_stationary_curve_near_its_best_throughput(curve: Curve, drain: int) -> None:
    run = simulate(curve, POLICY, ticks=2_000, drain_every=drain)
    last_change = run.changes[-1].at if run.changes else 0.0
    assert last_change < 1_000 * POLICY.interval_s, "still changing N in the second half"
    final = run.ns[-1][1]
    best = max(curve.aggregate(n) for n in range(POLICY.floor, POLICY.maximum + 1))
    assert curve.aggregate(final) >= best / (1 + POLICY.min_gain) ** 2


def test_climbs_to_the_knee_then_settles_there() -> None:
    run = simulate(Curve(per_window=40_000, knee=5, decay=0.6), POLICY, ticks=300)
    assert [(c.from_n, c.to_n) for c in run.changes] == [(2, 3), (3, 5), (5, 8), (8, 6), (6, 5)]
    assert run.ns[-1][1] == 5
    assert run.changes[0].reason.startswith("rising: aggregate 80,000/h at N=2 (40,000/h per window)")
    assert run.changes[-1].reason.startswith("settled:")


def test_a_cluster_that_gets_contended_later_makes_it_back_off() -> None:
    policy = POLICY
    state = ap.State(n=8, since=0.0, phase=ap.SETTLED, settled_at=8 * 40_000, best_per_window=40_000,
                     measured=((8, 8 * 40_000),))
    for t in (200.0, 300.0, 400.0):
        state = ap.observe(state, ap.Reading(at=t, running=8, aggregate=8 * 12_000))
    state, change = ap.decide(state, policy, 700.0, pending=20)
    assert change is not None and (change.from_n, change.to_n) == (8, 4)
    assert change.reason.startswith("contention: aggregate 96,000/h at N=8 (12,000/h per window)")
    assert state.phase == ap.CLIMBING


def test_a_steady_settled_job_is_left_alone_and_the_tail_never_raises() -> None:
    state = ap.State(n=4, since=0.0, phase=ap.SETTLED, settled_at=160_000, best_per_window=40_000)
    for t in (200.0, 300.0):
        state = ap.observe(state, ap.Reading(at=t, running=4, aggregate=150_000))
    assert ap.decide(state, POLICY, 700.0, pending=5)[1] is None
    climbing = ap.start(POLICY, 0.0)
    for t in (200.0, 300.0):
        climbing = ap.observe(climbing, ap.Reading(at=t, running=2, aggregate=80_000))
    assert ap.decide(climbing, POLICY, 700.0, pending=0)[1] is None  # nothing left to start: no raise
    assert ap.decide(climbing, POLICY, 500.0, pending=9)[1] is None  # within the hold time
    raised = ap.decide(climbing, POLICY, 700.0, pending=1)[1]
    assert raised is not None and raised.to_n == 3  # not past what is left to start


def test_window_rates_from_heartbeats() -> None:
    before = {"a": (100.0, 1_000), "b": (100.0, 0)}
    after = {"a": (160.0, 2_000), "b": (100.0, 0), "c": (170.0, 50)}
    assert ap.window_rates(before, after) == {"a": 60_000.0}
    assert ap.reading(1.0, 4, {"a": 100.0, "b": 200.0, "c": 300.0}) == ap.Reading(1.0, 4, 800.0)  # one just started
    assert ap.reading(1.0, 4, {"a": 100.0, "b": 200.0}) == ap.Reading(1.0, 2, 300.0)  # too few known: not judged
    assert ap.reading(1.0, 0, {}) == ap.Reading(1.0, 0, 0.0)
    beats, rates = ap.advance(before, {"b": 500.0, "gone": 9.0}, after)
    assert rates == {"a": 60_000.0, "b": 500.0}  # b's heartbeat did not move: its last rate stands
    assert beats == {"a": (160.0, 2_000), "b": (100.0, 0), "c": (170.0, 50)}


def goodput(curve: Curve, n: int, window: float, gap_s: float) -> float:
    """The job's progress over wall time (per hour) at N when each window waits `gap_s` to start (a child
    workflow and its activity being scheduled), time its heartbeats never show."""
    per_window = curve.aggregate(n) / n
    return n * window / (window / per_window * 3600 + gap_s) * 3600


def simulate_progress(curve: Curve, policy: ap.Policy, ticks: int, window: float, gap_s: float) -> Run:
    """As `simulate`, with the readings carrying the job's done count: it grows at the goodput of the N
    running while the heartbeats' summed rate is the resource's aggregate."""
    state = ap.start(policy, 0.0)
    out = Run([], [], [])
    done = 0.0
    for i in range(1, ticks + 1):
        now = i * policy.interval_s
        running = state.n
        done += goodput(curve, running, window, gap_s) * policy.interval_s / 3600
        state = ap.observe(state, ap.Reading(at=now, running=running, aggregate=curve.aggregate(running), done=done))
        state, change = ap.decide(state, policy, now, 10_000)
        if change is not None:
            out.changes.append(change)
        out.ns.append((now, state.n))
    return out


@settings(max_examples=200, deadline=None)
@given(curves, st.floats(1_000, 1_000_000), st.floats(0, 3_600))
def test_judged_by_progress_it_converges_near_the_best_progress_start_gaps_included(
        curve: Curve, window: float, gap_s: float) -> None:
    run = simulate_progress(curve, POLICY, 2_000, window, gap_s)
    assert not run.changes or run.changes[-1].at < 1_000 * POLICY.interval_s, "still changing N in the second half"
    best = max(goodput(curve, n, window, gap_s) for n in range(POLICY.floor, POLICY.maximum + 1))
    assert goodput(curve, run.ns[-1][1], window, gap_s) >= best / (1 + POLICY.min_gain) ** 2


def test_start_gaps_make_more_windows_pay_and_progress_sees_it_where_rates_do_not() -> None:
    # the resource's knee is 4 (3% less a window past it); a window copies 3,000 in 30 s at the knee, and
    # waits 30 s to start
    curve, window, gap_s = Curve(per_window=360_000, knee=4, decay=0.97), 3_000.0, 30.0
    by_rates = simulate(curve, POLICY, ticks=300)
    by_progress = simulate_progress(curve, POLICY, 300, window, gap_s)
    assert by_rates.ns[-1][1] == 4
    assert by_progress.ns[-1][1] > 4
    assert goodput(curve, by_progress.ns[-1][1], window, gap_s) > 1.15 * goodput(curve, 4, window, gap_s)


def test_the_jobs_done_count_carries_heartbeats_forward_and_its_rate_spans_the_readings() -> None:
    beats = {"a": (100.0, 1_000), "b": (110.0, 500)}
    assert ap.job_done(120.0, 4_000, beats, {"a": 36_000.0}) == 4_000 + 1_000 + 200 + 500  # b: no rate yet
    readings = [ap.Reading(0.0, 4, 1.0, done=0.0), ap.Reading(30.0, 4, 1.0, done=50.0),
                ap.Reading(60.0, 4, 1.0, done=600.0)]
    assert ap.progress_rate(readings) == 36_000.0  # first to last, not a median of steps
    assert ap.progress_rate([*readings, ap.Reading(90.0, 4, 1.0)]) is None  # a reading without the count


def test_judged_by_progress_a_dip_in_progress_alone_is_no_contention_a_collapse_of_the_windows_rates_is() -> None:
    settled = ap.State(n=8, since=0.0, phase=ap.SETTLED, settled_at=8 * 40_000, best_per_window=40_000,
                       measured=((8, 8 * 40_000),))

    def judged(window_rate: float) -> ap.Change | None:
        state = settled
        for t, done in ((200.0, 0.0), (300.0, 2_000.0), (400.0, 4_000.0)):  # 72,000/h: well down
            state = ap.observe(state, ap.Reading(at=t, running=8, aggregate=8 * window_rate, done=done, known=8))
        return ap.decide(state, POLICY, 700.0, pending=20)[1]

    assert judged(38_000) is None  # the windows copy at their best: the job's slower progress is not contention
    cut = judged(12_000)
    assert cut is not None and (cut.from_n, cut.to_n) == (8, 4)
    assert cut.reason.startswith("contention: aggregate 72,000/h at N=8 (9,000/h per window), down from 320,000/h;"
                                 " the per-window rate (12,000/h) fell below 50%")
