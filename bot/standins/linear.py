"""A local stand-in for Linear's GraphQL API, for the tests and `shepherd dev`.

It validates every document and its variables against Linear's published schema with graphql-core
(the full one where this machine has it: `$SHEPHERD_LINEAR_SCHEMA`, or `shared/contracts/linear/`
beside the repository; else the project's fixture of the types and fields Shepherd sends), records
each request in `documents` and each problem in `violations`, and executes what validates against
issues and comments kept in memory: `issue(id:)` (a UUID or an identifier like CONVI-6259),
`comment(id:)` and `commentCreate`. Failures can be injected: `fail(503, times=2, retry_after=0)`,
and `down = True` drops every connection without an answer. It serves HTTP on 127.0.0.1 on an
ephemeral port, in its own thread.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from graphql import GraphQLError, GraphQLSchema, OperationDefinitionNode, build_schema, execute_sync, parse, validate
from graphql.execution.values import get_variable_values

from bot.standins.contracts import LINEAR_FIXTURE, full_linear_schema


def schema_path() -> Path:
    """Linear's full published schema where this machine has it, else the project's own fixture."""
    return full_linear_schema() or LINEAR_FIXTURE


def load_schema(path: Path | None = None) -> GraphQLSchema:
    return _build(path or schema_path())


@lru_cache(maxsize=4)
def _build(path: Path) -> GraphQLSchema:  # once per file and process (the full schema takes about a second)
    return build_schema(path.read_text())


def check_document(schema: GraphQLSchema, query: str, variables: dict[str, Any] | None,
                   operation: str | None = None) -> list[str]:
    """Every reason the request would not validate against the schema (empty: it validates)."""
    try:
        document = parse(query)
    except GraphQLError as err:
        return [f"parse: {err.message}"]
    problems = [f"validate: {e.message}" for e in validate(schema, document)]
    if problems:
        return problems
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in ops if operation is None or (o.name and o.name.value == operation)]
    if len(chosen) != 1:
        return [f"operation {operation!r} not found, or not exactly one operation in the document"]
    coerced = get_variable_values(schema, chosen[0].variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return [f"variables: {e.message}" for e in coerced]
    return []


@dataclass
class Failure:
    status: int
    retry_after: str | None = None


@dataclass
class StandInState:
    api_key: str
    workspace: str = "shepherd-test"
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)  # by identifier
    comments: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id
    documents: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    down: bool = False


class LinearStandIn:
    def __init__(self, api_key: str = "lin_api_standin", *, schema: Path | None = None) -> None:
        self.schema = load_schema(schema)
        self.state = StandInState(api_key=api_key)
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> LinearStandIn:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="linear-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LinearStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/graphql"

    # ---- what tests set and read ---------------------------------------------------------

    @property
    def documents(self) -> list[dict[str, Any]]:
        return self.state.documents

    @property
    def violations(self) -> list[str]:
        return self.state.violations

    @property
    def comments(self) -> list[dict[str, Any]]:
        return list(self.state.comments.values())

    @property
    def down(self) -> bool:
        return self.state.down

    @down.setter
    def down(self, value: bool) -> None:
        self.state.down = value

    def add_issue(self, identifier: str, title: str = "") -> dict[str, Any]:
        issue = {"id": str(uuid.uuid4()), "identifier": identifier, "title": title or identifier,
                 "url": f"https://linear.app/{self.state.workspace}/issue/{identifier}"}
        with self.lock:
            self.state.issues[identifier] = issue
        return issue

    def fail(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next `times` requests with `status` (and a Retry-After header when given)."""
        with self.lock:
            self.state.failures += [Failure(status, retry_after) for _ in range(times)]

    def check(self, query: str, variables: dict[str, Any] | None = None, operation: str | None = None) -> list[str]:
        return check_document(self.schema, query, variables, operation)

    # ---- serving -------------------------------------------------------------------------

    def answer(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self.lock:
            if self.state.failures:
                failure = self.state.failures.pop(0)
                extra = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
                return failure.status, extra, {"errors": [{"message": f"injected HTTP {failure.status}"}]}
        key = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if key != self.state.api_key:
            return 400, {}, _errors("Authentication required, not authenticated", "AUTHENTICATION_ERROR")
        try:
            body = json.loads(raw)
            query, variables = body["query"], body.get("variables") or {}
            operation = body.get("operationName")
            assert isinstance(query, str) and isinstance(variables, dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            self._record({"raw": raw[:500].decode(errors="replace")}, ["request body is not a GraphQL request"])
            return 400, {}, _errors("Body is not a GraphQL request", "BAD_USER_INPUT")
        problems = self.check(query, variables, operation)
        self._record({"query": query, "variables": variables, "operationName": operation}, problems)
        if problems:
            return 400, {}, _errors("; ".join(problems), "GRAPHQL_VALIDATION_FAILED")
        result = execute_sync(self.schema, parse(query), root_value=_Root(self), variable_values=variables,
                         operation_name=operation)
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        return 200, {}, out

    def _record(self, doc: dict[str, Any], problems: list[str]) -> None:
        with self.lock:
            self.state.documents.append({**doc, "valid": not problems})
            self.state.violations += problems

    def find_issue(self, key: str) -> dict[str, Any]:
        with self.lock:
            for issue in self.state.issues.values():
                if key in (issue["id"], issue["identifier"]):
                    return issue
        raise GraphQLError("Entity not found: Issue", extensions={
            "type": "invalid input", "code": "INVALID_INPUT", "statusCode": 404, "userError": True,
            "userPresentableMessage": "Could not find referenced Issue."})

    def create_comment(self, fields: dict[str, Any]) -> dict[str, Any]:
        issue = self.find_issue(str(fields.get("issueId") or ""))
        comment_id = str(fields.get("id") or uuid.uuid4())
        with self.lock:
            if comment_id in self.state.comments:
                raise GraphQLError("Comment with this id already exists", extensions={
                    "type": "invalid input", "code": "INVALID_INPUT", "userError": True})
            comment = {"id": comment_id, "body": fields.get("body") or "", "issue": issue,
                       "url": f"{issue['url']}#comment-{comment_id[:8]}"}
            self.state.comments[comment_id] = comment
        return comment


class _Root(dict[str, Any]):
    """Root fields as callables: graphql-core's default resolver calls them with (info, **args)."""

    def __init__(self, standin: LinearStandIn) -> None:
        super().__init__(
            issue=lambda _info, id: standin.find_issue(id),
            comment=lambda _info, id=None, hash=None: self._comment(standin, id),
            commentCreate=lambda _info, input: {"success": True, "lastSyncId": 1.0,
                                                "comment": standin.create_comment(input)},
        )

    @staticmethod
    def _comment(standin: LinearStandIn, comment_id: str | None) -> dict[str, Any]:
        with standin.lock:
            found = standin.state.comments.get(comment_id or "")
        if found is None:
            raise GraphQLError("Entity not found: Comment", extensions={"code": "INVALID_INPUT", "statusCode": 404})
        return found


def _errors(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}], "data": None}


class _Handler(BaseHTTPRequestHandler):
    standin: LinearStandIn

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        if self.standin.down:
            self.close_connection = True
            return  # no status line at all: to the client the connection was dropped
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, extra, body = self.standin.answer({k.lower(): v for k, v in self.headers.items()}, raw)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # requests carry the key: never log them
        return
