"""Embedded ClickHouse (chdb) behind ClickHouse's HTTP interface, for clickhouse-connect.

chdb allows one data path per process; this server owns the path and speaks the part of the HTTP
protocol clickhouse-connect uses, so every process talks to embedded ClickHouse with the production
client: `python -m bot.adapters.chdb_server --path DIR --port 0 --port-file FILE`.

Each request runs on a chdb connection to the one engine: a pooled one, or the one pinned to its
`session_id` (SET and temporary tables live as long as the session). `database=` becomes USE, other
URL settings SET, `param_<name>` chdb's `params=`; INSERT ... FORMAT <fmt> streams the body into
chdb's inserter. Request bodies may be compressed (lz4/zstd/gzip/deflate); responses never are.
Not supported: external data, `decompress=1`, query cancellation; any user and password pass.
"""
from __future__ import annotations

import argparse
import email.policy
import json
import os
import signal
import socket
import sys
import threading
import uuid
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.adapters.chdb_engine import _CONTENT_TYPES, _TRANSPORT, Engine, EngineError, Result, _decompress

__all__ = ["ChdbHTTPServer", "Engine", "EngineError", "serve"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ChdbHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would swamp the dev logs."""

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass  # trailers
            data = b"".join(parts)
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return _decompress(data, self.headers.get("Content-Encoding", ""))

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # http.server's naming; GET is handled the same way
        base = {"X-ClickHouse-Server-Display-Name": socket.gethostname(), "X-ClickHouse-Query-Id": str(uuid.uuid4()),
                "X-ClickHouse-Timezone": self.server.engine.timezone}
        try:
            url = urlsplit(self.path)
            args = dict(parse_qsl(url.query, keep_blank_values=True))
            base["X-ClickHouse-Query-Id"] = args.get("query_id") or base["X-ClickHouse-Query-Id"]
            body = self._body() if self.command == "POST" else b""
            if url.path.rstrip("/") == "/ping" or (url.path in ("", "/") and not body and "query" not in args):
                self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                return
            if url.path not in ("", "/"):
                raise EngineError(f"There is no handle {url.path}", code=0, status=404)
            result = self._run(args, body)
            headers = {**base, "X-ClickHouse-Summary": json.dumps(result.summary, separators=(",", ":"))}
            if result.fmt:
                headers["X-ClickHouse-Format"] = result.fmt
            headers["Content-Type"] = _CONTENT_TYPES.get(result.fmt or "", "text/plain; charset=UTF-8")
            self._send(200, result.body, headers)
        except Exception as err:  # reported to the client the way ClickHouse reports errors
            fail = err if isinstance(err, EngineError) else EngineError(f"{type(err).__name__}: {err}")
            self.close_connection = not isinstance(err, EngineError)  # the request may not have been read whole
            text = f"{fail.text} (version {self.server.engine.version})\n".encode()
            self._send(fail.status, text, {**base, "X-ClickHouse-Exception-Code": str(fail.code),
                                           "Content-Type": "text/plain; charset=UTF-8"})

    do_GET = do_POST

    def _run(self, args: dict[str, str], body: bytes) -> Result:
        if args.get("decompress") in ("1", "true"):
            raise EngineError("decompress=1 (ClickHouse-native compressed bodies) is not supported", code=48)
        if self.headers.get_content_type() == "multipart/form-data":  # long bound parameters come as a form
            head = f"Content-Type: {self.headers.get('Content-Type', '')}\r\n\r\n".encode()
            form, body = message_from_bytes(head + body, policy=email.policy.HTTP), b""
            for part in form.iter_parts():  # type: ignore[attr-defined]
                if part.get_filename():
                    raise EngineError("external data (multipart files) is not supported", code=48)
                payload = part.get_payload(decode=True)
                args[str(part.get_param("name", header="content-disposition"))] = bytes(payload).decode()
        query = args.get("query", "").encode()
        text = query + b"\n" + body if query and body else query or body
        if not text.strip():
            raise EngineError("Empty query", code=62, status=400)
        params = {k[6:]: v for k, v in args.items() if k.startswith("param_")}
        settings = {k: v for k, v in args.items() if k not in _TRANSPORT and not k.startswith(("param_", "http_"))}
        engine, session_id = self.server.engine, args.get("session_id") or None
        with engine.connection(session_id, float(args.get("session_timeout") or 60)) as conn:
            engine.prepare(conn, args.get("database") or "default", settings)
            return engine.execute(conn, text, args.get("default_format") or "TabSeparated", params)


class ChdbHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server answering ClickHouse HTTP requests from one embedded engine."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, path: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.engine = Engine(Path(path))
        super().__init__((host, port), _Handler)
        self.port: int = self.server_address[1]
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that went away is no news
            super().handle_error(request, client_address)

    def start(self) -> ChdbHTTPServer:
        self._thread = threading.Thread(target=self.serve_forever, name="chdb-http", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, close the listening socket and the engine's connections."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        self.server_close()
        self.engine.close()


def serve(path: Path, host: str = "127.0.0.1", port: int = 0) -> ChdbHTTPServer:
    """Open the engine at `path` and serve it on a background thread; `.port` is the bound port.

    In-process use shares the process's chdb: a session at another path in it fails (one per process).
    """
    return ChdbHTTPServer(path, host, port).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve embedded ClickHouse (chdb) over ClickHouse's HTTP protocol")
    parser.add_argument("--path", type=Path, required=True, help="chdb data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here (atomically) once listening")
    opts = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = serve(opts.path, opts.host, opts.port)
    if opts.port_file:
        tmp = opts.port_file.with_name(opts.port_file.name + ".tmp")
        tmp.write_text(f"{server.port}\n")
        os.replace(tmp, opts.port_file)
    print(f"chdb HTTP server on {opts.host}:{server.port} (data {opts.path})", flush=True)
    while not stop.wait(1.0):
        pass
    server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
