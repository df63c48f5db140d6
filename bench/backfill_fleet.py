"""The fleet half of bench/backfill.py: the same backfill job run by 1, 2 and 4 `shepherd worker`
processes, and one worker's peak RSS against the window size.

The embedded ClickHouse is served over ClickHouse's HTTP interface from the bench process (chdb allows
one process a data path), so every worker reaches it with clickhouse-connect, as a fleet reaches a real
cluster. Each worker runs one window at a time (`--max-activities 1`): N workers, N windows at once.
CPU seconds are read per process group (workers, Postgres, the chdb server in the bench process, the
Temporal server) to say where the machine's cores went.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import yaml
from temporalio.client import Client

from bot.adapters.chdb_server import serve
from bot.backfill.service import JobService
from bot.config import parse_config
from bot.jobs.ids import new_job_id
from commands.models import CustomerRef, DateRange, DayVolume
from commands.schedule import plan_backfill

ROOT = Path(__file__).resolve().parent.parent


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def _postgres(pgdata: Path) -> list[psutil.Process]:
    """The stack's postmaster and its live backends (the reaped ones count in its children's times)."""
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    postmaster = psutil.Process(pid)
    return [postmaster, *postmaster.children(recursive=True)]


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Fleet:
    """Worker processes on a fresh control queue, against the stack's Postgres, Temporal and chdb."""

    def __init__(self, stack: Any, spec_raw: dict[str, Any], data_dir: Path) -> None:
        self.stack = stack
        self.server = serve(stack.data_dir / "clickhouse")
        raw = dict(spec_raw)
        raw["clusters"] = [{**c, "regions": [{**r, "engine": "clickhouse", "host": "127.0.0.1",
                                               "port": self.server.port, "tls": False} for r in c["regions"]]}
                           for c in spec_raw["clusters"]]
        self.config_path = data_dir / "bench-fleet.yml"
        self.config_path.write_text(yaml.safe_dump(raw))
        self.config = parse_config(raw)
        self.queue = f"bench-fleet-{uuid.uuid4().hex[:8]}"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")},
                    "SHEPHERD_POSTGRES_DSN": stack.pg_dsn, "SHEPHERD_TEMPORAL_ADDRESS": stack.temporal_address,
                    "SHEPHERD_TEMPORAL_TASK_QUEUE": self.queue, "SHEPHERD_CONFIG_PATH": str(self.config_path),
                    "SHEPHERD_DATA_DIR": str(data_dir / "fleet"), "SHEPHERD_METRICS_PORT": "0",
                    "SHEPHERD_SDK_METRICS_PORT": "0"}
        self.log = data_dir / "bench-fleet-workers.log"

    def start_workers(self, n: int) -> list[subprocess.Popen[bytes]]:
        before = self.log.read_text().count("ready as") if self.log.exists() else 0
        procs = [subprocess.Popen([sys.executable, "-m", "bot.cli.main", "worker", "--max-activities", "1"],
                                  cwd=ROOT, env=self.env, stdout=open(self.log, "ab"),  # noqa: SIM115
                                  stderr=subprocess.STDOUT) for _ in range(n)]
        deadline = time.monotonic() + 120
        while self.log.read_text().count("ready as") < before + n:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("workers did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.1)
        return procs

    @staticmethod
    def stop_workers(procs: list[subprocess.Popen[bytes]]) -> list[int]:
        """Stop them; returns each one's peak RSS in MiB (VmHWM, read before it exits)."""
        peaks = []
        for p in procs:
            status = Path(f"/proc/{p.pid}/status").read_text()
            kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
            peaks.append(round(kb / 1024))
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
        return peaks

    def plan(self, pool: Any, customers: tuple[str, ...], rng: DateRange, window_days: int, parallel: int) -> Any:
        with pool.connection() as conn:
            rows = conn.execute(
                "SELECT customer_id, (created_at AT TIME ZONE 'UTC')::date, count(*) FROM scorecards"
                " WHERE customer_id = ANY(%s) AND NOT (scorecard_type = ANY(%s)) AND created_at >= %s"
                " AND created_at < %s::date + 1 GROUP BY 1, 2",
                (list(customers), list(self.config.appeal_types), rng.start, rng.end)).fetchall()
        refs = [CustomerRef(name=c, cluster=next(x.cluster for x in self.config.customers.explicit if x.name == c))
                for c in customers]
        volumes = [DayVolume(customer=c, day=d, conversations=n) for c, d, n in rows]
        return plan_backfill(volumes, refs, rng, self.config.windows, self.config.throughput, parallel,
                             window_override=window_days)

    async def run_job(self, pool: Any, plan: Any, parallel: int, workers: list[subprocess.Popen[bytes]]
                      ) -> dict[str, float]:
        """Run the plan as one job; wall seconds and CPU seconds per process group while it ran."""
        assert self.stack.temporal_address is not None
        client = await Client.connect(self.stack.temporal_address)
        jobs = JobService(client, pool, self.config, self.queue)
        wprocs = [psutil.Process(p.pid) for p in workers]
        pg = _postgres(self.stack.pgdata)  # read again at the end: backends come and go
        temporal = [psutil.Process(self.stack._temporal.pid)] if self.stack._temporal is not None else []
        cpu0 = (_cpu(wprocs), _cpu(pg), _self_cpu(), _cpu(temporal))
        machine0 = psutil.cpu_times()
        job = new_job_id("backfill")
        began = time.perf_counter()
        await jobs.start_backfill(plan, job, "U_BENCH", parallel=parallel)
        await jobs.result(job)
        wall = time.perf_counter() - began
        cpu1 = (_cpu(wprocs), _cpu(_postgres(self.stack.pgdata)), _self_cpu(), _cpu(temporal))
        machine1 = psutil.cpu_times()
        workers_s, pg_s, chdb_s, temporal_s = (round(b - a, 1) for a, b in zip(cpu0, cpu1, strict=True))
        # every process on the machine (other users' included): what was left for these
        machine_busy = (sum(machine1) - machine1.idle - machine1.iowait) - (sum(machine0) - machine0.idle
                                                                            - machine0.iowait)
        return {"seconds": round(wall, 2), "cpu_workers_s": workers_s, "cpu_postgres_s": pg_s,
                "cpu_chdb_server_s": chdb_s, "cpu_temporal_s": temporal_s,
                "cores_busy": round((workers_s + pg_s + chdb_s + temporal_s) / wall, 2),
                "machine_cores_busy": round(machine_busy / wall, 2)}

    def close(self) -> None:
        self.server.close()


def rows_of(pool: Any, config: Any, customers: tuple[str, ...], rng: DateRange) -> int:
    """Scorecards plus scores a backfill of `customers` over `rng` writes."""
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT count(DISTINCT s.id) + count(x.scorecard_id) FROM scorecards s LEFT JOIN scores x"
            " ON x.scorecard_id = s.id WHERE s.customer_id = ANY(%s) AND NOT (s.scorecard_type = ANY(%s))"
            " AND s.created_at >= %s AND s.created_at < %s::date + 1",
            (list(customers), list(config.appeal_types), rng.start, rng.end)).fetchone()
    return int(row[0])


async def scaling(fleet: Fleet, pool: Any, customers: tuple[str, ...], rng: DateRange, window_days: int,
                  counts: tuple[int, ...]) -> list[dict[str, Any]]:
    """rows/s of the same job with each number of worker processes (N windows at once)."""
    plan = fleet.plan(pool, customers, rng, window_days, max(counts))
    rows = rows_of(pool, fleet.config, customers, rng)
    out = []
    for n in counts:
        procs = fleet.start_workers(n)
        try:
            figures = await fleet.run_job(pool, plan, max(counts), procs)
        finally:
            peaks = fleet.stop_workers(procs)
        out.append({"workers": n, "windows": len(plan.windows), "rows": rows,
                    "rows_per_s": round(rows / figures["seconds"]), **figures, "peak_rss_mib": peaks})
        print(f"fleet: {n} worker(s): {rows:,} rows in {figures['seconds']:.1f} s = {rows / figures['seconds']:,.0f}"
              f" rows/s; cores busy {figures['cores_busy']} (machine {figures['machine_cores_busy']});"
              f" peak RSS {peaks} MiB", flush=True)
    return out


async def memory(fleet: Fleet, pool: Any, customer: str, rng: DateRange, sizes: tuple[int, ...]
                 ) -> list[dict[str, Any]]:
    """One worker's peak RSS reindexing `customer` over `rng` in windows of each size (days)."""
    out = []
    for days in sizes:
        plan = fleet.plan(pool, (customer,), rng, days, 1)
        procs = fleet.start_workers(1)
        try:
            await fleet.run_job(pool, plan, 1, procs)
        finally:
            (peak,) = fleet.stop_workers(procs)
        largest = max(w.conversations for w in plan.windows)
        out.append({"window_days": days, "largest_window_conversations": largest, "peak_rss_mib": peak})
        print(f"memory: {days}-day windows (largest {largest:,} conversations): peak RSS {peak} MiB", flush=True)
    return out


def run(stack: Any, spec_raw: dict[str, Any], data_dir: Path, pool: Any, customers: tuple[str, ...],
        rng: DateRange, window_days: int, counts: tuple[int, ...], sizes: tuple[int, ...]) -> dict[str, Any]:
    fleet = Fleet(stack, spec_raw, data_dir)
    try:
        scaled = asyncio.run(scaling(fleet, pool, customers, rng, window_days, counts))
        mem = asyncio.run(memory(fleet, pool, customers[0], rng, sizes))
    finally:
        fleet.close()
    return {"workers_scaling": scaled, "memory": mem}
