"""`shepherd plan backfill|purge`: check the input, open the runtime, plan, print."""

from __future__ import annotations

import argparse
import json
from datetime import date

from bot.app import demo_spec_for, embedded_config, embedded_registry, is_embedded, open_runtime
from bot.errors import UserInputError
from bot.planning import BackfillRequest, PlanningService, PurgeRequest
from bot.settings import Settings
from commands import render
from commands.models import DateRange
from commands.values import parse_count, parse_date, parse_names, parse_types, parse_window


def _checked(fn, *a, **kw):  # type: ignore[no-untyped-def]
    try:
        return fn(*a, **kw)
    except ValueError as err:
        raise UserInputError(str(err)) from None


Bounds = tuple[date | None, date | None]  # --from and --to as typed; a missing end is the default's


def _bounds(args: argparse.Namespace) -> Bounds:
    start = _checked(parse_date, args.start, "--from") if args.start else None
    end = _checked(parse_date, args.end, "--to") if args.end else None
    return start, end


def _complete(bounds: Bounds, default: DateRange) -> DateRange | None:
    start, end = bounds
    if start is None and end is None:
        return None
    lo, hi = start or default.start, end or default.end
    if lo > hi:
        raise UserInputError(f"--from {lo} is after --to {hi}")
    return DateRange(start=lo, end=hi)


def run_plan(settings: Settings, args: argparse.Namespace, today: date) -> int:
    customers = _checked(parse_names, args.customers, "customer")
    if args.kind == "backfill":
        window = _checked(parse_window, args.window)
        parallel = _checked(parse_count, args.parallel, "--parallel", minimum=1) if args.parallel else None
        request: BackfillRequest | PurgeRequest = BackfillRequest(customers, None, window, parallel)
    else:
        types = _checked(parse_types, args.types) if args.types else None
        clusters = _checked(parse_names, args.clusters, "cluster")
        max_rows = _checked(parse_count, args.max_rows, "--max-rows", minimum=1) if args.max_rows else None
        request = PurgeRequest(customers, None, types, clusters, max_rows)
    bounds = _bounds(args)

    if is_embedded(settings):
        # Check everything a person typed before any server starts.
        config = embedded_config(settings, demo_spec_for(settings))
        registry = embedded_registry(config)
        registry.resolve(customers)
        if isinstance(request, PurgeRequest):
            registry.check_clusters(request.clusters)
        elif request.parallel and request.parallel > config.backfill.max_parallel:
            raise UserInputError(f"--parallel {request.parallel} must be at most {config.backfill.max_parallel}")
        _complete(bounds, config.default_range.resolve(today))

    with open_runtime(settings, temporal=False) as rt:
        rng = _complete(bounds, rt.planning.default_range(today))
        if isinstance(request, BackfillRequest):
            return _backfill(rt.planning, BackfillRequest(request.customers, rng, request.window_days,
                                                          request.parallel), args, today)
        return _purge(rt.planning, PurgeRequest(request.customers, rng, request.types, request.clusters,
                                                request.max_rows), args, today)


def _backfill(planning: PlanningService, req: BackfillRequest, args: argparse.Namespace, today: date) -> int:
    plan = planning.plan_backfill(req, today)
    if args.chart:
        from bot.backfill.chart import backfill_chart

        volumes = planning.backfill_volumes(planning.registry.resolve(req.customers), plan.range)
        backfill_chart(plan, volumes, args.chart)
    if args.json:
        print(json.dumps(render.backfill_plan_json(plan), indent=2))
    else:
        print(render.backfill_plan_text(plan))
        for n in plan.notes:
            print(f"note: {n}")
        if args.chart:
            print(f"chart: {args.chart}")
    return 0


def _purge(planning: PlanningService, req: PurgeRequest, args: argparse.Namespace, today: date) -> int:
    result = planning.plan_purge(req, today)
    if args.json:
        doc = render.purge_plan_json(result.plan)
        doc["lookups"] = {
            name: {"region": found.region, "attempts": found.attempts, "fell_back": found.fell_back}
            for name, found in result.lookups.items()
        }
        print(json.dumps(doc, indent=2))
    else:
        print(render.purge_plan_text(result.plan))
        for n in result.plan.notes:
            print(f"note: {n}")
        for name, found in result.lookups.items():
            if found.region == "shards":  # every shard answered; one that needed retries is named
                if note := found.note():
                    print(f"note: {note}")
            elif found.fell_back or found.attempts > 1:
                print(f"note: cluster {name} answered from region {found.region} after {found.attempts} attempts")
    return 0
