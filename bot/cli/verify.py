"""`shepherd verify <customers|all|sample:N> [--types 1-3] [--from D] [--to D] [--seed N] [--deep] [--repair-plan]
[--json]`.

Checks every value before anything starts, compares Postgres with ClickHouse, prints the report
(or JSON) and exits 0 when everything matches, 1 when something differs. `--deep` also compares every
row's content (checksums, bisection) and names each differing row; its JSON lists every one.
`--repair-plan` (implies `--deep`) also prints the repair of what it found (`commands.repair`): nothing runs.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

from bot.app import demo_spec_for, embedded_config, embedded_registry, is_embedded, open_runtime
from bot.errors import UserInputError
from bot.settings import Settings
from bot.verify.deep import DeepVerifier
from bot.verify.service import VerifyService
from commands.deep_report import deep_json, deep_text
from commands.repair import plan_json, plan_repair, plan_text
from commands.values import parse_count, parse_date, parse_names, parse_types
from commands.verify_report import DEFAULT_CAP, report_json, report_text


def add_verify_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify", help="compare Postgres with ClickHouse per customer and day; prove the appeal rows are gone")
    p.add_argument("customers", help="a name, a comma list, all, or sample:N")
    p.add_argument("--types", metavar="1-3", help="appeal types that must be gone (default: the configured ones)")
    p.add_argument("--from", dest="start", metavar="D")
    p.add_argument("--to", dest="end", metavar="D")
    p.add_argument("--seed", metavar="N", help="seed of a sample:N draw (default: a random one, printed)")
    p.add_argument("--rows", metavar="N", default=str(DEFAULT_CAP), help="mismatch rows to list (default 20)")
    p.add_argument("--deep", action="store_true",
                   help="also compare every column of every row (checksums) and name each differing row")
    p.add_argument("--repair-plan", action="store_true",
                   help="with --deep: print the least work that repairs what differs (nothing runs)")
    p.add_argument("--json", action="store_true", help="print one JSON document with every mismatch")
    p.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def _checked(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ValueError as err:
        raise UserInputError(str(err)) from None


def run_verify(settings: Settings, args: argparse.Namespace, today: date) -> int:
    target = str(args.customers)
    sample: int | None = None
    customers: tuple[str, ...] | None = None
    if target.lower().startswith("sample:"):
        sample = _checked(parse_count, target[7:], "sample:N", minimum=1, maximum=1000)
    else:
        customers = _checked(parse_names, target, "customer")
    types = _checked(parse_types, args.types) if args.types else None
    start = _checked(parse_date, args.start, "--from") if args.start else None
    end = _checked(parse_date, args.end, "--to") if args.end else None
    seed = _checked(parse_count, args.seed, "--seed", minimum=0) if args.seed is not None else None
    if seed is not None and sample is None:
        raise UserInputError("--seed only applies to sample:N")
    rows = _checked(parse_count, args.rows, "--rows", minimum=0)
    if start and end and start > end:
        raise UserInputError(f"--from {start} is after --to {end}")

    if is_embedded(settings):  # check the names before any server starts
        embedded_registry(embedded_config(settings, demo_spec_for(settings))).resolve(customers)

    with open_runtime(settings, temporal=False) as rt:
        service = VerifyService(rt.config, rt.registry, rt.source, rt.lookup)
        repair = getattr(args, "repair_plan", False)
        if getattr(args, "deep", False) or repair:
            deep = DeepVerifier(service).verify(customers, sample, start, end, types, seed, today=today)
            doc, text = deep_json(deep), deep_text(deep, cap=rows)
            if repair:
                clusters = {r.name: r.cluster for r in rt.registry.resolve(deep.counts.customers)}
                plan = plan_repair(deep, clusters, rt.config.windows, rt.config.throughput)
                doc["repair"], text = plan_json(plan), f"{text}\n\n{plan_text(plan)}"
            print(json.dumps(doc, indent=2) if args.json else text)
            return 0 if deep.ok else 1
        report = service.verify(customers, sample, start, end, types, seed, today=today)
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(report_text(report, cap=rows))
    return 0 if report.ok else 1
