"""The chdb HTTP server (bot.adapters.chdb_server) with the real clickhouse-connect client.

The server runs in a subprocess: chdb allows one data path per process, and this pytest process
may hold its own chdb session at another path.
"""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["customer_id", "day", "scorecard_id", "score"]


class Server:
    def __init__(self, data: Path) -> None:
        self.data = data
        port_file = data / "port"
        port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.adapters.chdb_server", "--path", str(data / "ch"), "--port", "0",
             "--port-file", str(port_file)], cwd=ROOT, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert self.proc.poll() is None, "chdb server exited at start"
            assert time.monotonic() < deadline, "chdb server did not write its port file"
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def client(self, **kwargs: Any) -> Any:
        import clickhouse_connect

        options: dict[str, Any] = {"username": "default", "password": "", "compress": False, **kwargs}
        return clickhouse_connect.get_client(host="127.0.0.1", port=self.port, **options)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def data_root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shepherd-chdb-http-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(data_root: Path) -> Iterator[Server]:
    (data_root / "shared").mkdir()
    srv = Server(data_root / "shared")
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


@pytest.fixture()
def db(server: Server) -> Iterator[tuple[Any, str]]:
    """A client and a fresh database holding a `scores` table partitioned by month."""
    client = server.client()
    name = "t_" + uuid.uuid4().hex[:10]
    client.command(f"CREATE DATABASE {name}")
    client.command(f"CREATE TABLE {name}.scores (customer_id String, day Date, scorecard_id UInt64, score Float64)"
                   " ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY (customer_id, day, scorecard_id)")
    yield client, name
    client.close()


def rows(n: int, start: int = 0) -> list[list[Any]]:
    base = dt.date(2024, 1, 1)
    return [[f"cust{i % 5}", base + dt.timedelta(days=i % 60), i, i % 10 / 2] for i in range(start, start + n)]


def test_insert_native_and_csv_then_typed_query_with_bound_parameters(db: tuple[Any, str]) -> None:
    client, name = db
    assert client.insert(f"{name}.scores", rows(3000), column_names=COLUMNS).written_rows == 3000
    csv = "".join(f"o'brien,2024-02-{d:02d},{9000 + d},1.5\n" for d in range(1, 11)).encode()
    assert client.raw_insert(f"{name}.scores", COLUMNS, insert_block=csv, fmt="CSV").written_rows == 10
    assert client.command(f"SELECT count() FROM {name}.scores") == 3010

    result = client.query(
        f"SELECT customer_id, day, scorecard_id, score FROM {name}.scores"
        " WHERE customer_id = {c:String} AND day BETWEEN {lo:Date} AND {hi:Date} ORDER BY scorecard_id",
        parameters={"c": "cust1", "lo": dt.date(2024, 1, 1), "hi": dt.date(2024, 1, 31)})
    got = result.result_rows
    assert got[0] == ("cust1", dt.date(2024, 1, 2), 1, 0.5)
    assert all(isinstance(r[1], dt.date) and isinstance(r[2], int) for r in got)
    assert len(got) == sum(1 for r in rows(3000) if r[0] == "cust1" and r[1].month == 1)

    quoted = f"SELECT count() FROM {name}.scores WHERE customer_id = {{c:String}}"
    assert client.query(quoted, parameters={"c": "o'brien"}).result_rows == [(10,)]
    assert client.query(quoted, parameters={"c": "x' OR '1'='1"}).result_rows == [(0,)]
    odd = "tab\there, back\\slash, quote' and \"double\", newline\n"
    assert client.query("SELECT {s:String}", parameters={"s": odd}).result_rows == [(odd,)]
    parts = client.query("SELECT DISTINCT partition FROM system.parts WHERE database = {d:String} AND active"
                         " ORDER BY 1", parameters={"d": name}).result_rows
    assert parts == [("202401",), ("202402",)]
    # A LIMIT 0 probe is answered as FORMAT JSON metadata; a long parameter goes as a multipart form.
    assert client.query(f"SELECT * FROM {name}.scores LIMIT 0").column_names == tuple(COLUMNS)
    assert client.query("SELECT length({s:String})", parameters={"s": "x" * 6000}).result_rows == [(6000,)]
    assert client.command("SELECT 1, 'a'") == ["1", "a"]


def test_compressed_client_and_compressed_bodies(server: Server, db: tuple[Any, str]) -> None:
    import lz4.frame

    _, name = db
    client = server.client(compress=True, database=name)
    try:
        assert client.insert("scores", rows(500), column_names=COLUMNS).written_rows == 500
        assert client.query("SELECT count() FROM scores").result_rows == [(500,)]
        csv = b"gz,2024-05-01,1,1\n"
        for encoding, body in [("gzip", gzip.compress(csv)), ("lz4", lz4.frame.compress(csv))]:
            summary = client.raw_insert("scores", COLUMNS, insert_block=body, fmt="CSV", compression=encoding)
            assert summary.written_rows == 1
        assert client.command("SELECT count() FROM scores WHERE customer_id = 'gz'") == 2
    finally:
        client.close()


def test_mutation_lightweight_delete_and_kill(db: tuple[Any, str]) -> None:
    client, name = db
    client.insert(f"{name}.scores", rows(2000), column_names=COLUMNS)
    client.command(f"ALTER TABLE {name}.scores DELETE WHERE customer_id = 'cust0' AND day < '2024-01-15'")
    deadline = time.monotonic() + 20
    while True:
        done = client.query("SELECT is_done, latest_fail_reason FROM system.mutations WHERE database = {d:String}",
                            parameters={"d": name}).result_rows
        if done and all(r[0] == 1 for r in done) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert done == [(1, "")]
    client.command(f"DELETE FROM {name}.scores WHERE customer_id = 'cust1'")
    client.command(f"KILL MUTATION WHERE database = '{name}' AND table = 'scores' AND is_done = 0")
    left = dict(client.query(f"SELECT customer_id, count() FROM {name}.scores GROUP BY 1").result_rows)
    expected: dict[str, int] = {}
    for r in rows(2000):
        if r[0] != "cust1" and not (r[0] == "cust0" and r[1] < dt.date(2024, 1, 15)):
            expected[r[0]] = expected.get(r[0], 0) + 1
    assert left == expected


def test_engine_errors_raise_database_error(db: tuple[Any, str]) -> None:
    from clickhouse_connect.driver.exceptions import DatabaseError

    client, name = db
    with pytest.raises(DatabaseError) as err:
        client.query(f"SELECT * FROM {name}.no_such_table")
    assert "UNKNOWN_TABLE" in str(err.value) and "no_such_table" in str(err.value)
    assert err.value.code == 60
    with pytest.raises(DatabaseError, match="Syntax error"):
        client.command("SELEC 1")
    with pytest.raises(DatabaseError, match="UNKNOWN_SETTING"):
        client.query("SELECT 1", settings={"no_such_setting_xyz": 1})
    with pytest.raises(DatabaseError):
        client.raw_insert(f"{name}.scores", COLUMNS, insert_block=b"not,a,valid,row\n", fmt="CSV")
    assert client.command("SELECT 42") == 42  # the failures left nothing behind


def test_settings_sessions_and_two_clients_in_threads(server: Server, db: tuple[Any, str]) -> None:
    _, name = db
    a, b = server.client(database=name), server.client(database=name)
    try:
        a.command("SET max_threads = 1")  # lives in a's session only
        assert a.command("SELECT getSetting('max_threads')") == 1
        assert b.command("SELECT getSetting('max_threads')") != 1
        assert b.command("SELECT getSetting('max_threads')", settings={"max_threads": 3}) == 3
        assert b.command("SELECT getSetting('max_threads')") != 3  # per-request settings do not stick
        assert a.command("SELECT currentDatabase()") == name

        errors: list[BaseException] = []

        def work(client: Any, offset: int) -> None:
            try:
                for k in range(5):
                    batch = rows(200, offset + k * 200)
                    assert client.insert("scores", batch, column_names=COLUMNS).written_rows == 200
                    got = client.query("SELECT count() FROM scores WHERE scorecard_id BETWEEN {lo:UInt64} AND"
                                       " {hi:UInt64}", parameters={"lo": batch[0][2], "hi": batch[-1][2]})
                    assert got.result_rows == [(200,)]
            except BaseException as exc:  # reported to the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c, off)) for c, off in ((a, 0), (b, 100_000))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert a.command("SELECT count() FROM scores") == 2000
    finally:
        a.close()
        b.close()


def test_data_survives_restart_and_sigterm_stops_cleanly(data_root: Path) -> None:
    data = data_root / "restart"
    data.mkdir()
    first = Server(data)
    client = first.client()
    client.command("CREATE DATABASE keep")
    client.command("CREATE TABLE keep.t (day Date, n UInt64) ENGINE = MergeTree PARTITION BY toYYYYMM(day)"
                   " ORDER BY day")
    client.insert("keep.t", [[dt.date(2024, 3, 1), 7]], column_names=["day", "n"])
    assert client.ping()
    client.close()
    started = time.monotonic()
    assert first.stop() == 0
    assert time.monotonic() - started < 10

    second = Server(data)
    try:
        client = second.client()
        assert client.query("SELECT day, n FROM keep.t").result_rows == [(dt.date(2024, 3, 1), 7)]
        client.close()
    finally:
        assert second.stop() == 0
