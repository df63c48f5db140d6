"""The write-up's sections and number formats: deletions per cluster, backfilled customers, what went
wrong and what resolved it, verifications. Pure, like `commands.writeup`, which assembles them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from commands.verify_report import types_text

if TYPE_CHECKING:
    from commands.writeup import CustomerBackfill, PurgeInfo, Records, VerificationInfo, WindowRun

TOP_CUSTOMERS = 15  # customers listed one by one in the backfill table; the rest share one row
ACTION_WORDS = ("retry", "throttle", "cancel", "pause", "resume", "release")  # acts that answer a problem
# Monitor events worth a line, by a word in their key (events_posted.event_key; other keys are routine)
EVENT_WORDS = (("stall", "Stall"), ("contention", "Contention"), ("fallback", "Cluster lookup fallback"),
               ("lookup", "Cluster lookup fallback"), ("fail", "Failure"))


# ---- numbers ----------------------------------------------------------------------------------


def approx(n: int) -> str:
    """70_512_345 -> "~70.5M"."""
    for size, unit in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if n >= size:
            return f"~{n / size:.1f}{unit}"
    return str(n)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes = round(seconds / 60)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def stamp(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else "-"


def span(a: date, b: date) -> str:
    """Feb 21–23, 2026 (the seed's title style)."""
    if a.year == b.year and a.month == b.month:
        return f"{a:%b} {a.day}" + (f"–{b.day}" if b != a else "") + f", {a.year}"
    if a.year == b.year:
        return f"{a:%b} {a.day} – {b:%b} {b.day}, {a.year}"
    return f"{a:%b} {a.day}, {a.year} – {b:%b} {b.day}, {b.year}"


def md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    cells = lambda r: "| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |"  # noqa: E731
    return [cells(head), "|" + "|".join("---" for _ in head) + "|", *(cells(r) for r in rows)]


# ---- what went wrong, and what resolved it ----------------------------------------------------


def incidents(r: Records) -> list[tuple[str, str]]:
    """(label, text) of failures, retries, fallbacks, stops, alerts and the acts that answered them,
    each with its resolution where there is one."""
    out: list[tuple[str, str]] = []
    for c in r.backfills:
        for w in c.windows:
            where = f"**{c.customer}** {w.start}..{w.end} ({c.job_id})"
            if w.attempts > 1 and w.state == "done":
                how = f"resumed from {w.resumed_from}" if w.resumed_from else "ran again"
                why = f" ({w.last_failure})" if w.last_failure else ""
                out.append(("Retried window", f"{where}: failed {w.attempts - 1}x{why}; resolved: attempt "
                                              f"{w.attempts} {how} and finished."))
            elif w.state in ("failed", "cancelled"):
                why = f": {w.last_failure}" if w.last_failure else ""
                out.append(("Failed window", f"{where}: {w.state} after {w.attempts} attempt(s){why}; unresolved: "
                                             f"`/backfill retry {c.job_id} --failed-only`."))
            first = r.first_regions.get(c.cluster)
            if w.region and first and w.region != first:
                out.append(("Cluster lookup fallback", f"{where}: cluster {c.cluster} answered from region "
                                                       f"{w.region} (fallback from {first})."))
    for p in r.purges:
        out += [("Purge chunk failed", f"purge {p.job_id}: chunk {f}") for f in p.failed_chunks]
        if p.stop_reason:
            out.append(("Purge stopped", f"purge {p.job_id} stopped: {p.stop_reason}"))
    for j in r.jobs:
        if j.error and j.kind != "verify":
            out.append((f"{j.kind.capitalize()} {j.state}", f"{j.kind} {j.id} ended {j.state}: {j.error}"))
    for e in r.events:
        label = next((label for word, label in EVENT_WORDS if word in e.key), None)
        if label:
            out.append((label, f"{e.job_id}: {e.key.replace('_', ' ').replace(':', ' ')} ({stamp(e.at)} UTC)"))
    for a in r.actions:
        if any(word in a.action for word in ACTION_WORDS):
            what = a.action.replace("click job.", "clicked ").strip()
            on = f" on {a.job_id}" if a.job_id and a.job_id not in what else ""
            out.append(("Action taken", f"{a.actor}: `{what}`{on} ({stamp(a.at)} UTC)"))
    return out


# ---- the write-up for a ticket ----------------------------------------------------------------


def deletions(purges: Sequence[PurgeInfo]) -> list[str]:
    if not purges:
        return []
    per: dict[str, list[int]] = {}
    exact = all(c.exact for p in purges for c in p.clusters)
    for p in purges:
        for c in p.clusters:
            e = per.setdefault(c.cluster, [0, 0, 0, 0])
            e[0] += c.scorecards
            e[1] += c.scores
            e[2] += c.chunks_done
            e[3] += c.chunks
    rows = [[k, f"{v[0]:,}", f"{v[1]:,}", f"{v[2]}/{v[3]}"] for k, v in sorted(per.items())]
    cards, scores = sum(v[0] for v in per.values()), sum(v[1] for v in per.values())
    done, total = sum(v[2] for v in per.values()), sum(v[3] for v in per.values())
    rows.append(["**total**", f"**{cards:,}**", f"**{scores:,}**", f"{done}/{total}"])
    p0 = purges[0]
    lines = ["### Deleted from ClickHouse", "",
             f"Appeal types {types_text(p0.types)}, {p0.start} to {p0.end}, at most {p0.max_rows:,} rows per "
             f"mutation ({', '.join(p.job_id for p in purges)})" + ("." if exact else "; planned counts: the job's "
                                                                     "own counts were not available."),
             "", *md_table(["cluster", "scorecards", "scores", "chunks done"], rows)]
    lines.append("")
    for p in purges:
        for c in p.clusters:
            for name, n in c.one_day:
                lines.append(f"- {name} ({c.cluster}) needed {n} one-day chunks: a larger mutation would pass the "
                             "row cap.")
    return [*lines, ""]


def backfills_section(backfills: Sequence[CustomerBackfill]) -> list[str]:
    if not backfills:
        return []
    ordered = sorted(backfills, key=lambda c: (-c.conversations, c.customer))
    windows = [w for c in ordered for w in c.windows]
    states: dict[str, int] = {}
    for w in windows:
        states[w.state] = states.get(w.state, 0) + 1
    done = sum(1 for c in ordered if all(w.state == "done" for w in c.windows))

    def row(name: str, cluster: str, size: str, group: Sequence[WindowRun]) -> list[str]:
        secs = [w.seconds for w in group if w.seconds is not None]
        span = "?" if not secs else duration(secs[0]) if min(secs) == max(secs) else (
            f"{duration(min(secs))}–{duration(max(secs))}")
        return [name, cluster, size, str(len(group)), f"{sum(w.conversations for w in group):,}", span,
                str(sum(w.attempts - 1 for w in group))]

    rows = [row(c.customer, c.cluster, f"{c.window_days}d ({c.rule})", c.windows) for c in ordered[:TOP_CUSTOMERS]]
    rest = ordered[TOP_CUSTOMERS:]
    if rest:
        sizes = sorted({c.window_days for c in rest})
        rows.append(row(f"+{len(rest)} more customers", "", "/".join(f"{d}d" for d in sizes),
                        [w for c in rest for w in c.windows]))
    jobs = sorted({c.job_id for c in backfills})
    return ["### Backfilled", "",
            f"{done}/{len(ordered)} customers complete, {len(windows)} windows "
            f"({', '.join(f'{n} {s}' for s, n in sorted(states.items()))}); jobs {', '.join(jobs)}.", "",
            *md_table(["customer", "cluster", "window", "windows", "conversations", "duration per window",
                        "retries"], rows), ""]


def verifications_section(vs: Sequence[VerificationInfo]) -> list[str]:
    if not vs:
        return ["### Verification", "", "Not verified yet: run `/verify <customers|all|sample:N>` and draft again.",
                ""]
    lines = ["### Verification", ""]
    for v in vs:
        sample = f" (random sample, seed {v.seed})" if v.sample is not None else ""
        lines.append(f"- {v.job_id} ({stamp(v.at)} UTC){sample}: {v.verdict}")
    return [*lines, ""]
