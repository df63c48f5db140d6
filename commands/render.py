"""Plans as JSON documents and as plain-text tables (CLI output; Slack reuses the tables)."""

from __future__ import annotations

from typing import Any

from commands.models import BackfillPlan, PurgePlan


def hours(pair: tuple[float, float]) -> str:
    lo, hi = pair
    return f"{lo:.1f}-{hi:.1f} h"


def backfill_plan_json(plan: BackfillPlan) -> dict[str, Any]:
    return {
        "from": plan.range.start.isoformat(),
        "to": plan.range.end.isoformat(),
        "customers": [
            {
                "customer": c.customer,
                "cluster": c.cluster,
                "daily_avg": round(c.daily_avg, 1),
                "window_days": c.window_days,
                "rule": c.rule,
                "rates": c.rates,
                "warnings": list(c.warnings),
                "windows": [
                    {
                        "start": w.start.isoformat(),
                        "end": w.end.isoformat(),
                        "conversations": w.conversations,
                        "est_hours": list(w.est_hours),
                    }
                    for w in c.windows
                ],
            }
            for c in plan.customers
        ],
        "parallel": plan.parallel,
        "sequential_hours": list(plan.sequential_hours),
        "makespan_hours": list(plan.makespan_hours),
        "lower_bound_hours": list(plan.lower_bound_hours),
        "plan_hash": plan.plan_hash,
    }


def purge_plan_json(plan: PurgePlan) -> dict[str, Any]:
    return {
        "from": plan.range.start.isoformat(),
        "to": plan.range.end.isoformat(),
        "types": list(plan.types),
        "max_rows_per_mutation": plan.max_rows_per_mutation,
        "clusters": [
            {
                "cluster": cp.cluster,
                "chunks": [
                    {
                        "customer": ch.customer,
                        "table": ch.table,
                        "start": ch.start.isoformat(),
                        "end": ch.end.isoformat(),
                        "rows": ch.rows,
                        "over_cap": ch.over_cap,
                        "partition": ch.partition,
                        "from_key": list(ch.lo) if ch.lo else None,
                        "to_key": list(ch.hi) if ch.hi else None,
                    }
                    for ch in cp.chunks
                ],
            }
            for cp in plan.clusters
        ],
        "total_rows": {"scorecards": plan.total_scorecards, "scores": plan.total_scores},
        "mutations": sum(len(cp.chunks) for cp in plan.clusters),
        "mutations_lower_bound": plan.mutations_lower_bound,
        "plan_hash": plan.plan_hash,
    }


def mutations_line(plan: PurgePlan) -> str:
    n = sum(len(cp.chunks) for cp in plan.clusters)
    bound = "" if plan.mutations_lower_bound is None else f" (lower bound {plan.mutations_lower_bound})"
    return f"{n} mutation(s){bound}"


def chunk_table(plan: PurgePlan, limit: int = 60) -> str:
    """Each chunk in execution order: its table, partition, day span, rows and where a key range cuts a day."""
    rows = [
        [cp.cluster, ch.customer, ch.table, ch.partition or "", f"{ch.start}..{ch.end}", f"{ch.rows:,}",
         "/".join(ch.lo[1:]) if ch.lo else "", "/".join(ch.hi[1:]) if ch.hi else ""]
        for cp in plan.clusters for ch in cp.chunks
    ]
    shown = rows[:limit] + ([[f"+{len(rows) - limit} more", "", "", "", "", "", "", ""]] if len(rows) > limit else [])
    return table(["cluster", "customer", "table", "partition", "days", "rows", "from key", "before key"], shown,
                 right={5})


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """A monospaced table; columns in `right` are right-aligned (numbers)."""
    right = right or set()
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def backfill_plan_text(plan: BackfillPlan) -> str:
    rows = [
        [
            c.customer,
            c.cluster,
            f"{c.daily_avg:,.0f}",
            f"{c.window_days}d",
            c.rule,
            str(len(c.windows)),
            f"{sum(w.conversations for w in c.windows):,}",
            hours((sum(w.est_hours[0] for w in c.windows), sum(w.est_hours[1] for w in c.windows))),
        ]
        for c in plan.customers
    ]
    head = ["customer", "cluster", "daily avg", "window", "rule", "windows", "conversations", "est. hours"]
    lines = [
        f"Backfill plan {plan.plan_hash}: {plan.range.start} to {plan.range.end} "
        f"({plan.range.days} days), {len(plan.windows)} windows, parallel {plan.parallel}",
        "",
        table(head, rows, right={2, 5, 6}),
        "",
        f"sequential:  {hours(plan.sequential_hours)}",
        f"parallel {plan.parallel}:  {hours(plan.makespan_hours)} (LPT makespan)",
        f"lower bound: {hours(plan.lower_bound_hours)}",
    ]
    if said := rates_summary(plan):
        lines.append(said)
    for c in plan.customers:
        lines += [f"warning: {c.customer}: {w}" for w in c.warnings]
    return "\n".join(lines)


def rates_summary(plan: BackfillPlan) -> str:
    """Which rates the estimates used: each customer's learned range, then the configured one for the rest."""
    learned = [f"{c.customer} {c.rates}" for c in plan.customers if c.rates.startswith("learned")]
    rest = sorted({c.rates for c in plan.customers if c.rates and not c.rates.startswith("learned")})
    if not learned and not rest:
        return ""
    others = ("the others " if learned else "") + ", ".join(rest)
    return "rates: " + "; ".join([*learned[:10], *([f"+{len(learned) - 10} more learned"] if len(learned) > 10
                                                   else []), *([others] if rest else [])])


def purge_plan_text(plan: PurgePlan) -> str:
    rows = []
    for cp in plan.clusters:
        per_customer: dict[str, dict[str, Any]] = {}
        for ch in cp.chunks:
            entry = per_customer.setdefault(ch.customer, {"scorecards": 0, "scores": 0, "chunks": 0, "over": 0})
            entry[ch.table] += ch.rows
            entry["chunks"] += 1
            entry["over"] += int(ch.over_cap)
        for customer, e in per_customer.items():
            flag = f"{e['over']} over cap" if e["over"] else ""
            rows.append(
                [cp.cluster, customer, f"{e['scorecards']:,}", f"{e['scores']:,}", str(e["chunks"]), flag]
            )
    head = ["cluster", "customer", "scorecards", "scores", "chunks", ""]
    n_chunks = sum(len(cp.chunks) for cp in plan.clusters)
    return "\n".join(
        [
            f"Purge plan {plan.plan_hash}: types {','.join(map(str, plan.types))}, "
            f"{plan.range.start} to {plan.range.end}, cap {plan.max_rows_per_mutation:,} rows per mutation",
            "",
            table(head, rows, right={2, 3, 4}),
            "",
            f"total: {plan.total_scorecards:,} scorecards + {plan.total_scores:,} scores "
            f"in {n_chunks} chunks (scores before scorecards) on {len(plan.clusters)} cluster(s): "
            + mutations_line(plan),
            "",
            chunk_table(plan),
        ]
    )
