"""Bench: inserts and a grouped count through the chdb HTTP server with clickhouse-connect.

    .venv/bin/python bench/chdb_http.py [--rows 1000000] [--data-dir DIR]

Starts `python -m bot.adapters.chdb_server` in a subprocess on a fresh data directory, then times
1) `raw_insert` of CSV bytes, 2) `client.insert` (Native, column-oriented Python lists: includes the
client's serialization), 3) `raw_insert` of ready Native bytes (the server's share of 2), 4) a
per-customer, per-day count over the table. Prints rows/s; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["customer_id", "day", "scorecard_id", "score"]
DDL = ("CREATE TABLE bench.scores (customer_id String, day Date, scorecard_id UInt64, score Float64)"
       " ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY (customer_id, day, scorecard_id)")


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], int]:
    port_file = data / "port"
    proc = subprocess.Popen([sys.executable, "-m", "bot.adapters.chdb_server", "--path", str(data / "ch"),
                             "--port", "0", "--port-file", str(port_file)], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("chdb server did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path)
    opts = parser.parse_args()
    n = opts.rows
    data = opts.data_dir or Path(tempfile.mkdtemp(prefix="chdb-http-bench-"))
    data.mkdir(parents=True, exist_ok=True)
    proc, port = start_server(data)
    try:
        import clickhouse_connect

        client = clickhouse_connect.get_client(host="127.0.0.1", port=port, username="default", password="",
                                               compress=False)
        client.command("CREATE DATABASE IF NOT EXISTS bench")
        client.command("DROP TABLE IF EXISTS bench.scores")
        client.command(DDL)
        base = dt.date(2024, 1, 1)
        days = [base + dt.timedelta(days=d) for d in range(90)]
        csv = "".join(f"cust{i % 50},{days[i % 90]},{i},{i % 100 / 10}\n" for i in range(n)).encode()
        t_csv = timed(lambda: client.raw_insert("bench.scores", COLUMNS, insert_block=csv, fmt="CSV"))
        cols: list[list[Any]] = [[f"cust{i % 50}" for i in range(n)], [days[i % 90] for i in range(n)],
                                 list(range(n, 2 * n)), [i % 100 / 10 for i in range(n)]]
        t_native = timed(lambda: client.insert("bench.scores", cols, column_names=COLUMNS, column_oriented=True))
        native = client.raw_query(f"SELECT * FROM bench.scores ORDER BY scorecard_id LIMIT {n}", fmt="Native")
        t_raw_native = timed(lambda: client.raw_insert("bench.scores", COLUMNS, insert_block=native, fmt="Native"))
        result: list[Any] = []
        t_query = timed(lambda: result.extend(client.query(
            "SELECT customer_id, day, count() FROM bench.scores WHERE day BETWEEN {lo:Date} AND {hi:Date}"
            " GROUP BY customer_id, day", parameters={"lo": days[0], "hi": days[-1]}).result_rows))
        total = client.command("SELECT count() FROM bench.scores")
        assert total == 3 * n, total
        assert sum(r[2] for r in result) == 3 * n
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    report = {"rows": n, "csv_raw_insert_s": round(t_csv, 3), "csv_rows_per_s": int(n / t_csv),
              "native_insert_s": round(t_native, 3), "native_rows_per_s": int(n / t_native),
              "raw_native_insert_s": round(t_raw_native, 3), "raw_native_rows_per_s": int(n / t_raw_native),
              "group_count_s": round(t_query, 3), "group_count_rows_scanned_per_s": int(3 * n / t_query),
              "groups": len(result), "cpus": os.cpu_count()}
    print(f"raw_insert CSV     {n:>9} rows  {t_csv:6.2f} s  {n / t_csv:>10,.0f} rows/s")
    print(f"insert Native      {n:>9} rows  {t_native:6.2f} s  {n / t_native:>10,.0f} rows/s")
    print(f"raw_insert Native  {n:>9} rows  {t_raw_native:6.2f} s  {n / t_raw_native:>10,.0f} rows/s")
    print(f"grouped count      {3 * n:>9} rows  {t_query:6.2f} s  {len(result)} groups")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
