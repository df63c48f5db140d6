"""A backfill job's windows and their states in columns: ~20 bytes a window on the wire instead of ~200.

A BackfillJob's input, its continue-as-new input and its `progress_table` query carry these, so a plan
of `limits.max_windows` windows stays well under Temporal's 512 KB payload warning (a list of
WindowSpec dataclasses was 1.75 MB for 10,000 windows). Pure and deterministic: the workflow calls it.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

from bot.temporal.models import StateTable, WindowSpec, WindowState, WindowTable

STATE_LETTERS = {"pending": "p", "running": "r", "done": "d", "failed": "f", "cancelled": "c"}
LETTER_STATES = {v: k for k, v in STATE_LETTERS.items()}


def table_of(specs: list[WindowSpec]) -> WindowTable:
    table = WindowTable()
    if not specs:
        return table
    first = min(date.fromisoformat(s.start) for s in specs)
    table.first_day = first.isoformat()
    customers: dict[str, int] = {}
    clusters: dict[str, int] = {}
    for s in specs:
        start, end = date.fromisoformat(s.start), date.fromisoformat(s.end)
        table.customer.append(customers.setdefault(s.customer, len(customers)))
        table.cluster.append(clusters.setdefault(s.cluster, len(clusters)))
        table.start.append((start - first).days)
        table.days.append((end - start).days + 1)
        table.conversations.append(s.conversations)
        table.est_centihours.append(math.ceil(round(max(s.est_hours_hi, 0.0) * 100, 6)))
    table.customers, table.clusters = list(customers), list(clusters)
    queues = {s.cluster: s.task_queue for s in specs}
    if any(queues.values()):  # only then: a table without queues is the one it always was
        table.queues = [queues[c] for c in table.clusters]
    return table


def specs_of(table: WindowTable) -> list[WindowSpec]:
    if not len(table):
        return []
    first = date.fromisoformat(table.first_day)
    specs = []
    for i in range(len(table)):
        start = first + timedelta(days=table.start[i])
        end = start + timedelta(days=table.days[i] - 1)
        customer = table.customers[table.customer[i]]
        specs.append(WindowSpec(key=f"{customer}:{start}:{end}", customer=customer,
                                cluster=table.clusters[table.cluster[i]], start=start.isoformat(),
                                end=end.isoformat(), conversations=table.conversations[i],
                                est_hours_hi=table.est_centihours[i] / 100,
                                task_queue=table.queues[table.cluster[i]] if table.queues else None))
    return specs


def _seconds(later: datetime, earlier: datetime) -> int:
    return round((later - earlier).total_seconds())


def states_of(specs: list[WindowSpec], windows: list[WindowState], epoch: str) -> StateTable:
    """The states of `windows` (one per spec, in table order); times counted from `epoch`."""
    previous = datetime.fromisoformat(epoch)
    table = StateTable(epoch=epoch, state="".join(STATE_LETTERS.get(w.state, "p") for w in windows))
    regions: dict[str, int] = {}
    workers: dict[str, int] = {}
    for i, (s, w) in enumerate(zip(specs, windows, strict=True)):
        table.attempt.append(w.attempt)
        table.total_change.append(w.total - s.conversations)
        started = datetime.fromisoformat(w.started) if w.started else None
        table.started.append(None if started is None else _seconds(started, previous))
        table.took.append(None if started is None or not w.finished else
                          _seconds(datetime.fromisoformat(w.finished), started))
        previous = started or previous
        table.region.append(-1 if w.region is None else regions.setdefault(w.region, len(regions)))
        table.worker.append(-1 if not w.worker else workers.setdefault(w.worker, len(workers)))
        if w.last_failure or w.resumed_from:
            table.notes.append([i, w.last_failure, w.resumed_from])
    table.regions, table.workers = list(regions), list(workers)
    if not workers:
        table.worker = []
    return table


def window_states(specs: list[WindowSpec], states: StateTable | None, workflow_id: Any) -> list[WindowState]:
    """One WindowState per spec, from `states` where given (pending otherwise); `workflow_id(spec)` names
    the child workflow of a window that has started."""
    windows = [WindowState(key=s.key, customer=s.customer, cluster=s.cluster, start=s.start, end=s.end,
                           total=s.conversations) for s in specs]
    if states is None or not states.state:
        return windows
    at = datetime.fromisoformat(states.epoch)
    for i, (s, w) in enumerate(zip(specs, windows, strict=True)):
        w.state = LETTER_STATES.get(states.state[i], "pending")
        w.attempt, w.total = states.attempt[i], s.conversations + states.total_change[i]
        w.done = w.total if w.state == "done" else 0
        started, took = states.started[i], states.took[i]
        if started is not None:
            at += timedelta(seconds=started)
            w.started, w.workflow_id = at.isoformat(), workflow_id(s)
            w.finished = None if took is None else (at + timedelta(seconds=took)).isoformat()
        w.region = states.regions[states.region[i]] if states.region[i] >= 0 else None
        if states.worker and states.worker[i] >= 0:
            w.worker = states.workers[states.worker[i]]
    for i, failure, resumed_from in states.notes:
        windows[i].last_failure, windows[i].resumed_from = failure, resumed_from
    return windows
