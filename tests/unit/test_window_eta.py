"""A running window's ETA range: from its own recent rate and its customer's history, never negative,
never past its end, wider when its rate is noisy, and holding the real time left on a steady rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from commands.progress import window_eta, window_rate

rates = st.lists(st.floats(min_value=0, max_value=1e5, allow_nan=False), max_size=8)
history = st.none() | st.tuples(st.floats(min_value=1, max_value=1e4), st.floats(min_value=0, max_value=1e4)).map(
    lambda t: (t[0], t[0] + t[1]))


@given(st.integers(min_value=-10**6, max_value=10**7), rates, history)
def test_never_negative_and_the_soonest_first(remaining: int, own: list[float], past: tuple[float, float] | None
                                              ) -> None:
    eta = window_eta(remaining, own, past)
    if eta is not None:
        assert 0 <= eta[0] <= eta[1]
    if remaining <= 0:  # done (or past its planned count): nothing left, whatever the rates say
        assert eta == (0.0, 0.0)


@given(st.floats(min_value=1, max_value=1e4), st.floats(min_value=0.05, max_value=0.9))
def test_a_noisy_rate_gives_a_wider_range_than_a_steady_one_of_the_same_mean(mean: float, wobble: float) -> None:
    steady = window_eta(100_000, [mean] * 6, None)
    noisy = window_eta(100_000, [mean * (1 + wobble), mean * (1 - wobble)] * 3, None)
    assert steady is not None and noisy is not None
    assert noisy[0] <= steady[0] * (1 + 1e-9) and noisy[1] >= steady[1] * (1 - 1e-9)  # float rounding
    if wobble > 0.2:
        assert noisy[1] - noisy[0] > steady[1] - steady[0]


def test_the_history_alone_before_a_first_rate_then_less_as_the_window_shows_its_own() -> None:
    assert window_eta(3600, [], None) is None
    assert window_eta(3600, [], (1.0, 2.0)) == (1800.0, 3600.0)  # 1-2/s for 3,600 left: 30 to 60 minutes
    early = window_eta(3600, [4.0], (1.0, 2.0))
    late = window_eta(3600, [4.0] * 7, (1.0, 2.0))
    own = window_eta(3600, [4.0] * 7, None)
    assert early is not None and late is not None and own is not None
    assert early[1] > late[1] > own[1]  # the slower past widens the range, less and less
    assert late[0] == own[0]  # the history only ever widens: it never promises faster than the window shows


def test_the_range_holds_the_time_really_left_on_a_steady_rate() -> None:
    t0 = datetime(2026, 2, 21, tzinfo=UTC)
    samples = [(t0 + timedelta(seconds=10 * i), 500 * i) for i in range(6)]  # 50/s, 2,500 done of 10,000
    got = window_rate(samples, 10_000, history=(40.0, 60.0))
    assert got.rate == 50.0 and got.eta_s is not None
    assert got.eta_s[0] <= 150 <= got.eta_s[1]
    assert window_rate([], 10_000, history=(40.0, 60.0), done=2_500).eta_s == (125.0, 187.5)
