"""A test cluster of shards: one chdb HTTP server process per shard (chdb allows one data path per
process), each answering the real clickhouse-connect client, and a small dataset spread over them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bot.adapters.clickhouse import ConnectClickHouse
from bot.embedded.schema import create_target_tables

ROOT = Path(__file__).resolve().parents[2]


class ShardServer:
    """`python -m bot.adapters.chdb_server` on its own data path; stop() kills it, start() brings it back
    on the same port with the same data."""

    def __init__(self, name: str, data: Path) -> None:
        self.name, self.data = name, data
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        data.mkdir(parents=True, exist_ok=True)
        self.start()

    def start(self) -> None:
        port_file = self.data / "port"
        port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.adapters.chdb_server", "--path", str(self.data / "ch"),
             "--port", str(self.port), "--port-file", str(port_file)], cwd=ROOT, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert self.proc.poll() is None, f"shard {self.name}: chdb server exited at start"
            assert time.monotonic() < deadline, f"shard {self.name}: chdb server did not start"
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Gone at once, as a crashed server is (SIGKILL: no goodbye to open connections)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def client(self, database: str) -> ConnectClickHouse:
        import clickhouse_connect

        raw = clickhouse_connect.get_client(host="127.0.0.1", port=self.port, username="default", password="",
                                            compress=False)
        return ConnectClickHouse(raw, database)

    def endpoint(self, database: str) -> dict[str, Any]:
        """This shard in a cluster's `shards:` configuration."""
        return {"name": self.name, "host": "127.0.0.1", "port": self.port, "tls": False, "database": database}


CUSTOMERS = ("acme", "other")
FIRST_DAY, DAYS, PER_DAY = "2026-01-25", 20, 60  # Jan 25 .. Feb 13: two month partitions


def load_shards(shards: list[ShardServer], database: str) -> None:
    """Scorecards of two customers, 60 a day over 20 days, types 1-6 in turn (1-3 are appeals), four scores
    each; a scorecard and its scores live on shard `scorecard_id % len(shards)`."""
    for i, shard in enumerate(shards):
        ch = shard.client(database)
        create_target_tables(ch)
        for c, customer in enumerate(CUSTOMERS):
            ch.command(
                f"INSERT INTO `{database}`.scorecards SELECT {{c:String}},"
                f" toDate({{d:String}}) + intDiv(number, {PER_DAY}),"
                f" number + {{base:UInt64}}, number, (number % 6) + 1, toDateTime({{d:String}}, 'UTC')"
                f" FROM numbers({DAYS * PER_DAY}) WHERE (number + {{base:UInt64}}) % {len(shards)} = {i}",
                {"c": customer, "d": FIRST_DAY, "base": 1_000_000 * (c + 1)})
        ch.command(f"INSERT INTO `{database}`.scores SELECT customer_id, day, scorecard_id, c, 1.0"
                   f" FROM `{database}`.scorecards ARRAY JOIN [1, 2, 3, 4] AS c")
        ch.close()


def shard_counts(shard: ShardServer, database: str, customer: str) -> dict[str, int]:
    """The customer's rows on one shard: appeal scorecards and their scores, and the others."""
    ch = shard.client(database)
    cards = f"`{database}`.scorecards"
    row = ch.query(
        f"SELECT countIf(scorecard_type <= 3), countIf(scorecard_type > 3),"
        f" (SELECT count() FROM `{database}`.scores WHERE customer_id = {{c:String}} AND scorecard_id IN"
        f"  (SELECT scorecard_id FROM {cards} WHERE customer_id = {{c:String}} AND scorecard_type > 3)),"
        f" (SELECT count() FROM `{database}`.scores WHERE customer_id = {{c:String}})"
        f" FROM {cards} WHERE customer_id = {{c:String}}", {"c": customer})[0]
    ch.close()
    return {"appeal_cards": int(row[0]), "kept_cards": int(row[1]), "kept_scores": int(row[2]),
            "scores": int(row[3])}


def tagged_mutations(shard: ShardServer, database: str) -> list[str]:
    ch = shard.client(database)
    rows = ch.query("SELECT command FROM system.mutations WHERE database = {d:String} AND position(command,"
                    " 'shepherd:') > 0", {"d": database})
    ch.close()
    return [str(r[0]) for r in rows]
