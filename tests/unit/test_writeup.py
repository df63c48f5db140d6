"""The Linear write-up and the weekly summary, rendered from seed-week-like records."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from commands import weekly as wk
from commands import writeup as w

START = date(2026, 1, 3)
T0 = datetime(2026, 2, 21, 9, 0, tzinfo=UTC)
# 8 clusters whose deletions add up to the seed's ~70.5M scorecards and ~650.5M scores
CLUSTERS = {"voice-prod": (12_000_000, 110_000_000), "chat-prod": (20_000_000, 185_000_000),
            "us-east-2": (15_512_345, 143_498_765), "us-west-2": (6_000_000, 55_000_000),
            "eu-west-1": (5_000_000, 46_000_000), "ca-central-1": (4_000_000, 37_000_000),
            "ap-southeast-2": (3_000_000, 28_000_000), "email-prod": (5_000_000, 46_000_000)}


def windows(days: int, size: int, per_day: int, hours: float) -> tuple[w.WindowRun, ...]:
    out = []
    for i in range(0, days, size):
        end = min(i + size, days) - 1
        out.append(w.WindowRun(START + timedelta(days=i), START + timedelta(days=end), "done",
                               per_day * (end - i + 1), hours * 3600))
    return tuple(out)


def seed_week() -> w.Records:
    purge = w.PurgeInfo("p-1a2b3c", START, START + timedelta(days=50), (1, 2, 3), 800_000, tuple(
        w.ClusterDeletion(name, cards, scores, 40, 40, True, (("oportun", 51),) if name == "us-east-2" else ())
        for name, (cards, scores) in CLUSTERS.items()))
    hilton = list(windows(51, 5, 90_000, 4.0))
    hilton[0] = w.WindowRun(hilton[0].start, hilton[0].end, "done", hilton[0].conversations, 6.2 * 3600, attempts=2,
                            last_failure="activity Heartbeat timeout", resumed_from="2026-01-05")
    spirit = list(windows(51, 5, 83_000, 3.9))
    spirit[1] = w.WindowRun(spirit[1].start, spirit[1].end, "done", spirit[1].conversations, 3.8 * 3600,
                            region="us-west-2")
    backfills = [
        w.CustomerBackfill("b-4d5e6f", "hilton", "chat-prod", 5, ">= 80,000/day -> 5d", tuple(hilton)),
        w.CustomerBackfill("b-4d5e6f", "marriott", "chat-prod", 5, ">= 80,000/day -> 5d", windows(51, 5, 86_000, 4)),
        w.CustomerBackfill("b-4d5e6f", "spirit", "voice-prod", 5, ">= 80,000/day -> 5d", tuple(spirit)),
        w.CustomerBackfill("b-4d5e6f", "united-east", "voice-prod", 7, ">= 30,000/day -> 7d",
                           windows(51, 7, 45_000, 7.0)),
        *(w.CustomerBackfill("b-7a8b9c", f"tail-{i:02d}", "email-prod", 10, ">= 0/day -> 10d",
                             windows(51, 10, 3_000, 0.5)) for i in range(91)),
    ]
    jobs = (
        w.JobInfo("p-1a2b3c", "purge", "U_ALICE", "done", T0, T0, T0 + timedelta(hours=6, minutes=38), "types 1-3"),
        w.JobInfo("b-4d5e6f", "backfill", "U_ALICE", "done", T0, T0 + timedelta(hours=7),
                  T0 + timedelta(days=2, hours=3), "4 customers"),
        w.JobInfo("b-7a8b9c", "backfill", "U_CAROL", "done", T0, T0 + timedelta(hours=7),
                  T0 + timedelta(days=1), "91 customers"),
        w.JobInfo("v-0f0f0f", "verify", "U_ALICE", "done", T0, T0 + timedelta(days=2, hours=4),
                  T0 + timedelta(days=2, hours=4), "MATCH"),
    )
    verification = w.VerificationInfo("v-0f0f0f", T0 + timedelta(days=2, hours=4), 95, 95, 0, True,
                                      "MATCH: 95 of 95 customers match Postgres day by day (2026-01-03 to 2026-02-22);"
                                      " no appeal rows (types 1-3) in ClickHouse.")
    actions = (w.ActionInfo(T0 + timedelta(hours=2), "U_ALICE", "/backfill throttle b-4d5e6f 8", "b-4d5e6f", "ok"),
               w.ActionInfo(T0 + timedelta(hours=1), "U_BOB", "click purge.approve", "p-1a2b3c", "ok"))
    return w.Records(jobs, (purge,), tuple(backfills), (verification,), actions,
                     first_regions={"voice-prod": "us-east-1", "chat-prod": "local", "email-prod": "local"})


def test_the_writeup_carries_the_seed_weeks_numbers() -> None:
    md = w.render_writeup("CONVI-6259", seed_week())
    assert md.startswith("## Shepherd write-up for CONVI-6259")
    assert "70,512,345 appeal scorecards (~70.5M)" in md and "650,498,765 scores (~650.5M)" in md
    assert "| **total** | **70,512,345** | **650,498,765** | 320/320 |" in md
    assert "from 8 ClickHouse cluster(s)" in md
    assert "oportun (us-east-2) needed 51 one-day chunks" in md
    assert "backfilled 95/95 customers in" in md
    assert "| hilton | chat-prod | 5d (>= 80,000/day -> 5d) | 11 | 4,590,000 | 4h 00m–6h 12m | 1 |" in md
    assert "| +80 more customers |  | 10d | 480 | 12,240,000 | 30m | 0 |" in md
    assert ("**hilton** 2026-01-03..2026-01-07 (b-4d5e6f): failed 1x (activity Heartbeat timeout); resolved: "
            "attempt 2 resumed from 2026-01-05 and finished.") in md
    assert "cluster voice-prod answered from region us-west-2 (fallback from us-east-1)" in md
    assert "U_ALICE: `/backfill throttle b-4d5e6f 8` (2026-02-21 11:00 UTC)" in md
    assert "purge.approve" not in md  # an approval is not a problem
    assert "v-0f0f0f (2026-02-23 13:00 UTC): MATCH: 95 of 95 customers match" in md
    assert "| p-1a2b3c | purge | U_ALICE | done | 2026-02-21 09:00 | 2026-02-21 15:38 | 6h 38m |" in md


def test_the_weekly_summary_keeps_the_seeds_shape() -> None:
    weekly = wk.render_weekly(wk.WeeklyInput(date(2026, 2, 17), date(2026, 2, 24), seed_week(),
                                           unposted=(("12", "CONVI-6259"),)))
    lines = weekly.splitlines()
    assert lines[0] == "Weekly Summary: Feb 21–23, 2026"
    heads = [i for i, line in enumerate(lines) if line in ("Progress", "Problems", "Plan")]
    assert [lines[i] for i in heads] == ["Progress", "Problems", "Plan"]
    progress = "\n".join(lines[heads[0]:heads[1]])
    assert "- **Appeal cleanup (purge):** Deleted ~70.5M scorecards + ~650.5M scores (types 1-3)" in progress
    assert "across 8 clusters" in progress and "oportun (51 one-day chunks)" in progress
    assert "Backfilled 95/95 customers in" in progress and "All completed by Feb 23 with zero failures." in progress
    assert "- **Verification (v-0f0f0f):** MATCH: 95 of 95" in progress
    problems = "\n".join(lines[heads[1]:heads[2]])
    assert "- **Retried window:** **hilton**" in problems
    assert "- **Cluster lookup fallback:**" in problems and "- **Action taken:** U_ALICE" in problems
    plan = "\n".join(lines[heads[2]:])
    assert "- **Linear:** Post the write-up for CONVI-6259 (draft 12 is not posted yet)." in plan


def test_an_empty_week_and_numbers() -> None:
    weekly = wk.render_weekly(wk.WeeklyInput(date(2026, 2, 27), date(2026, 3, 2), w.Records(())))
    assert weekly.splitlines()[0] == "Weekly Summary: Feb 27 – Mar 2, 2026"
    assert "none finished this week" in weekly and "- **None recorded:**" in weekly
    assert w.approx(650_498_765) == "~650.5M" and w.approx(999) == "999" and w.approx(12_345) == "~12.3K"
    assert w.duration(59) == "59s" and w.duration(42 * 60) == "42m" and w.duration(7 * 3600 + 5 * 60) == "7h 05m"
    md = w.render_writeup("X-1", w.Records(()))
    assert "Not verified yet" in md and "None: every window and chunk finished on its first attempt." in md
