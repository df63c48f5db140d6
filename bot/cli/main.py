"""The `shepherd` command: `dev`, `serve`, `worker`, `doctor`, and `plan backfill|purge` for scripts and benchmarks.

Every value is checked before anything starts; bad input prints one line (and the usage) and
exits 2. Errors Shepherd raises on purpose are printed as their reply, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import NoReturn

from bot.errors import ShepherdError, UserInputError
from bot.ops.logs import configure_logging
from bot.settings import Settings


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserInputError(message, usage=self.format_usage().removeprefix("usage: ").strip())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="shepherd", description="Plan, approve, run and watch data-maintenance jobs.")
    parser.add_argument("--data-dir", type=Path, help="embedded stack data (default .shepherd)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    dev = sub.add_parser("dev", help="run Shepherd on the embedded stack with the demo dataset")
    dev.add_argument("--scale", type=float, help="demo data scale (1.0 = production volumes; default 0.005)")
    dev.add_argument("--seed", type=int, help="demo data seed (default 7)")
    dev.add_argument("--reset", action="store_true",
                     help="delete this data directory's data (demo, jobs, Temporal history) and load the demo afresh")
    dev.add_argument("--ready-exit", action="store_true", help="start, report readiness, then stop")
    dev.add_argument("--script", type=Path, metavar="FILE",
                     help="run console lines from FILE, then stop (exit 1 at the first line that fails)")
    dev.add_argument("--socket-mode", action="store_true",
                     help="connect the app to the Slack stand-in in Socket Mode instead of over HTTP")
    from bot.cli.worker import add_worker_parser

    worker = add_worker_parser(sub)
    for command in (dev, worker):  # --data-dir is accepted before or after the subcommand
        command.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    from bot.cli.serve import add_serve_parser

    serve = add_serve_parser(sub)
    serve.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    from bot.cli.verify import add_verify_parser

    add_verify_parser(sub)
    doctor = sub.add_parser("doctor", help="check every configured connection; exit 1 if a required one is down")
    doctor.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    plan = sub.add_parser("plan", help="plan a backfill or a purge (reads volumes, changes nothing)")
    kinds = plan.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    bf = kinds.add_parser("backfill", help="windows, estimates and schedule for a backfill")
    bf.add_argument("customers", help="a name, a comma list, or all")
    bf.add_argument("--from", dest="start", metavar="D")
    bf.add_argument("--to", dest="end", metavar="D")
    bf.add_argument("--window", default="auto", metavar="auto|Nd")
    bf.add_argument("--parallel", metavar="N")
    bf.add_argument("--json", action="store_true")
    bf.add_argument("--chart", type=Path, metavar="PATH", help="write a PNG of volumes and windows")
    pg = kinds.add_parser("purge", help="rows per cluster and the chunk plan for a purge")
    pg.add_argument("customers", help="a name, a comma list, or all")
    pg.add_argument("--types", metavar="1-3")
    pg.add_argument("--from", dest="start", metavar="D")
    pg.add_argument("--to", dest="end", metavar="D")
    pg.add_argument("--clusters", default="all", metavar="all|a,b")
    pg.add_argument("--max-rows", metavar="N")
    pg.add_argument("--json", action="store_true")
    for command in (bf, pg):  # --data-dir is accepted before or after the subcommand
        command.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        settings = Settings()
        configure_logging(settings.log_format)
        if args.data_dir is not None:
            settings = settings.model_copy(update={"data_dir": args.data_dir})
        if args.command == "dev":
            from bot.standins.dev import run_dev

            if args.script is not None and not args.script.is_file():
                raise UserInputError(f"--script {args.script}: no such file")
            return run_dev(settings, scale=args.scale, seed=args.seed, ready_exit=args.ready_exit,
                           script=args.script, socket_mode=args.socket_mode, reset=args.reset)
        if args.command == "worker":
            from bot.cli.worker import run_worker

            return run_worker(settings, args)
        if args.command == "serve":
            from bot.cli.serve import run_serve

            return run_serve(settings, args)
        if args.command == "verify":
            from bot.cli.verify import run_verify

            return run_verify(settings, args, today=date.today())
        if args.command == "doctor":
            from bot.cli.doctor import run_doctor

            return run_doctor(settings)
        if args.command == "plan":
            from bot.cli.plan import run_plan

            return run_plan(settings, args, today=date.today())
    except ShepherdError as err:
        print(f"shepherd: {err.reply()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
