"""A job's rows (shepherd.jobs, job_results, audit_log, events_posted) as the plain records that
`commands.writeup` renders: what a purge deleted per cluster, each backfilled customer's windows,
verifications linked to the jobs, people's acts and the monitor's events."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

from bot.config import ShepherdConfig
from bot.jobs.records import JobRow
from commands import writeup as w
from commands.verify_report import types_text


def _utc(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC) if at is not None else None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def gather(pool: Any, config: ShepherdConfig, rows: list[JobRow]) -> w.Records:
    ids = [r.id for r in rows]
    with pool.connection() as conn:
        results = {str(k): _json(v) for k, v in conn.execute(
            "SELECT job_id, progress FROM shepherd.job_results WHERE job_id = ANY(%s)", (ids,)).fetchall()}
        audit = conn.execute(
            "SELECT at, actor, action, target, outcome, details->>'text' FROM shepherd.audit_log"
            " WHERE (target = ANY(%s) OR details->>'text' ~ %s) AND outcome = 'ok' ORDER BY at",
            (ids, "|".join(re.escape(i) for i in ids) or "^$")).fetchall()
        events = conn.execute("SELECT posted_at, job_id, event_key FROM shepherd.events_posted"
                              " WHERE job_id = ANY(%s) ORDER BY posted_at", (ids,)).fetchall()
    jobs, purges, backfills, verifications = [], [], [], []
    for row in rows:
        jobs.append(w.JobInfo(row.id, row.kind, row.requester, row.state, _utc(row.created_at) or row.created_at,
                              _utc(row.started_at), _utc(row.finished_at), summary(row), row.error))
        result = results.get(row.id)
        if row.kind == "purge" and row.plan:
            purges.append(_purge(row, result))
        elif row.kind == "backfill" and row.plan:
            backfills += _backfill(row, result)
        elif row.kind == "verify" and row.plan:
            verifications.append(_verification(row))
    actions = []
    for at, actor, action, target, outcome, text in audit:
        job = target if target in ids else next((i for i in ids if text and i in text), None)
        actions.append(w.ActionInfo(_utc(at) or at, actor, text or action, job, outcome or ""))
    first = {c.name: c.regions[0].name for c in config.clusters if c.regions}
    return w.Records(tuple(jobs), tuple(purges), tuple(backfills), tuple(verifications), tuple(actions),
                     tuple(w.EventInfo(_utc(at) or at, j, k) for at, j, k in events), first)


def summary(row: JobRow) -> str:
    p = row.plan or {}
    if row.kind == "purge":
        chunks = sum(len(c.get("chunks", ())) for c in p.get("clusters", ()))
        return (f"types {types_text(p.get('types', ()))}, {len(p.get('clusters', ()))} clusters, "
                f"{p.get('total_scorecards', 0):,} scorecards + {p.get('total_scores', 0):,} scores in {chunks} chunks")
    if row.kind == "backfill":
        windows = sum(len(c.get("windows", ())) for c in p.get("customers", ()))
        return f"{len(p.get('customers', ()))} customers, {windows} windows, parallel {p.get('parallel', '?')}"
    return str(p.get("verdict", ""))


def _day(text: str) -> date:
    return date.fromisoformat(str(text)[:10])


def _purge(row: JobRow, result: dict[str, Any] | None) -> w.PurgeInfo:
    p = row.plan or {}
    states = (result or {}).get("clusters", {})
    clusters = []
    for cp in p.get("clusters", ()):
        chunks, done = cp.get("chunks", []), states.get(cp["cluster"])
        spans: dict[tuple[str, str], list[bool]] = {}
        for ch in chunks:
            spans.setdefault((ch["customer"], ch["table"]), []).append(ch["start"] == ch["end"])
        one_day: dict[str, int] = {}
        for (customer, _), days in spans.items():
            if len(days) > 1 and all(days):
                one_day[customer] = max(one_day.get(customer, 0), len(days))
        counted = {t: sum(c["rows_deleted"] for c in (done or []) if c["table"] == t) for t in ("scorecards", "scores")}
        planned = {t: sum(c["rows"] for c in chunks if c["table"] == t) for t in ("scorecards", "scores")}
        rows = counted if done else planned
        n_done = sum(1 for c in done if c["state"] == "done") if done else (len(chunks) if row.state == "done" else 0)
        clusters.append(w.ClusterDeletion(cp["cluster"], rows["scorecards"], rows["scores"], len(chunks), n_done,
                                          bool(done), tuple(sorted(one_day.items()))))
    failed = tuple(f"{k} {c['customer']} {c['table']} {c['start']}..{c['end']}: {c.get('last_failure') or c['state']}"
                   for k, cs in sorted(states.items()) for c in cs if c["state"] in ("failed", "cancelled"))
    rng = p.get("range", {})
    return w.PurgeInfo(row.id, _day(rng["start"]), _day(rng["end"]), tuple(p.get("types", ())),
                       int(p.get("max_rows_per_mutation", 0)), tuple(clusters), (result or {}).get("stop_reason"),
                       failed)


def _backfill(row: JobRow, result: dict[str, Any] | None) -> list[w.CustomerBackfill]:
    states = {s["key"]: s for s in (result or {}).get("windows", ())}
    later_run = int((result or {}).get("run", 1)) > 1
    out = []
    for c in (row.plan or {}).get("customers", ()):
        runs = []
        for win in c.get("windows", ()):
            s = states.get(f"{c['customer']}:{win['start']}:{win['end']}")
            if s is None:  # no progress kept, or done in an earlier run than the one kept
                state = "done" if row.state == "done" or later_run else row.state
                runs.append(w.WindowRun(_day(win["start"]), _day(win["end"]), state, int(win["conversations"])))
                continue
            secs = None
            if s.get("started") and s.get("finished"):
                secs = (datetime.fromisoformat(s["finished"]) - datetime.fromisoformat(s["started"])).total_seconds()
            runs.append(w.WindowRun(_day(win["start"]), _day(win["end"]), s["state"],
                                    int(s.get("total") or win["conversations"]), secs,
                                    max(1, int(s.get("attempt") or 1)), s.get("last_failure"), s.get("region"),
                                    s.get("resumed_from")))
        out.append(w.CustomerBackfill(row.id, c["customer"], c["cluster"], int(c["window_days"]), str(c["rule"]),
                                      tuple(runs)))
    return out


def _verification(row: JobRow) -> w.VerificationInfo:
    p = row.plan or {}
    at = _utc(row.finished_at or row.created_at) or row.created_at
    return w.VerificationInfo(row.id, at, int(p.get("checked", 0)), int(p.get("matching", 0)),
                              int(p.get("mismatching", 0)), bool(p.get("ok")), str(p.get("verdict", "")),
                              p.get("sample"), p.get("seed"))
