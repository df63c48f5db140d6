"""The HTTP side of the Slack stand-in: /api/<method>, response_urls, and file upload URLs (aiohttp).

Each Web API call is authenticated (Bearer header or `token` argument), may be failed on purpose
(`Faults`), is checked against the contract, answered by `emulator_api.METHODS`, and recorded.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.standins.slack.api import METHODS, Backend
from bot.standins.slack.contract import Contract
from bot.standins.slack.model import Call, Change, SlackError

APP_TOKEN_METHODS = frozenset({"apps.connections.open"})  # the app-level token (xapp-...) and nothing else
SERVER_ERRORS = {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable", 504: "request_timeout"}


@dataclass
class Fault:
    method: str | None
    status: int
    remaining: int
    retry_after: int


@dataclass
class Faults:
    queued: list[Fault] = field(default_factory=list)
    rate: float = 0.0
    statuses: Sequence[int] = (429, 500)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    outage: int | None = None  # an HTTP status every Web API call gets (Slack down), until ended
    outage_response_urls: bool = False  # ... and every response_url POST

    def next(self, method: str) -> tuple[int, int] | None:
        """(status, retry_after) if this call must fail."""
        for fault in self.queued:
            if fault.remaining > 0 and fault.method in (None, method):
                fault.remaining -= 1
                return fault.status, fault.retry_after
        self.queued = [f for f in self.queued if f.remaining > 0]
        if self.rate > 0 and self.rng.random() < self.rate:
            return self.rng.choice(list(self.statuses)), 1
        return None


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


class ApiServer:
    def __init__(self, backend: Backend, bot_token: str, contract: Contract | None, strict: bool) -> None:
        self.backend = backend
        self.bot_token = bot_token
        self.contract = contract
        self.strict = strict
        self.faults = Faults()
        self.record = Recorder()
        self.app_token: str | None = None  # Socket Mode's app-level token, if the app has one

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self.api)
        app.router.add_post("/response/{token}", self.response_url)
        app.router.add_post("/upload/{file_id}", self.upload)
        app.router.add_get("/files/{file_id}", self.download)
        return app

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if self.faults.outage is not None:  # Slack is down: nothing is read, nothing is checked
            with self.backend.ws.lock:
                return self._answer(method, {}, self.faults.outage, {"ok": False, "error": "service_unavailable"})
        try:
            args = await _arguments(request)
        except SlackError as err:
            return self._answer(method, {}, 200, {"ok": False, "error": err.error})
        token = args.pop("token", None)
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
        ws = self.backend.ws
        with ws.lock:
            if not token:
                return self._answer(method, args, 200, {"ok": False, "error": "not_authed"})
            expected = self.app_token if method in APP_TOKEN_METHODS else self.bot_token
            if token != expected:
                error = "not_allowed_token_type" if token in (self.bot_token, self.app_token) else "invalid_auth"
                return self._answer(method, args, 200, {"ok": False, "error": error})
            fault = self.faults.next(method)
            if fault is not None:
                status, retry_after = fault
                error = "ratelimited" if status == 429 else SERVER_ERRORS.get(status, "fatal_error")
                headers = {"Retry-After": str(retry_after)} if status == 429 else {}
                return self._answer(method, args, status, {"ok": False, "error": error}, headers)
            problems = self._check(method, args)
            if problems and self.strict:
                return self._answer(method, args, 200, {"ok": False, "error": "invalid_arguments",
                                                        "response_metadata": {"messages": problems}})
            handler = METHODS.get(method)
            if handler is None:
                return self._answer(method, args, 200, {"ok": False, "error": "unknown_method"})
            changes: list[Change] = []
            try:
                body, changes = handler(self.backend, args)
            except SlackError as err:
                body = {"ok": False, "error": err.error}
                if err.messages:
                    body["response_metadata"] = {"messages": err.messages}
            response = self._answer(method, args, 200, body)
        ws.notify(changes)
        return response

    def _check(self, method: str, args: dict[str, Any]) -> list[str]:
        if self.contract is None or not self.contract.has(method):
            return []
        problems, unknown = self.contract.check(method, args)
        self.record.violations.extend(f"{method}: {p}" for p in problems)
        self.record.unknown.extend(f"{method}: {name}" for name in unknown)
        return problems

    def _answer(self, method: str, args: dict[str, Any], status: int, body: dict[str, Any],
                headers: dict[str, str] | None = None) -> web.Response:
        ok = bool(body.get("ok"))
        self.record.calls.append(Call(method, args, ok, None if ok else str(body.get("error")), status))
        return web.json_response(body, status=status, headers=headers)

    async def response_url(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.faults.outage is not None and self.faults.outage_response_urls:
            with self.backend.ws.lock:
                self.record.calls.append(Call("response_url", {}, False, "service_unavailable", self.faults.outage))
            return web.Response(status=self.faults.outage, text="service_unavailable")
        try:
            payload: Any = json.loads(raw or b"null")
        except ValueError:
            form = await request.post()
            payload = json.loads(str(form["payload"])) if "payload" in form else raw.decode(errors="replace")
        status, text, changes = self.backend.ws.respond(request.match_info["token"], payload)
        with self.backend.ws.lock:
            args = payload if isinstance(payload, dict) else {"payload": payload}
            self.record.calls.append(Call("response_url", args, status == 200, None if status == 200 else text,
                                          status))
        self.backend.ws.notify(changes)
        return web.Response(status=status, text=text)

    async def upload(self, request: web.Request) -> web.Response:
        upload = self.backend.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="file_not_found")
        data = await request.read()
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = next((v for v in form.values() if isinstance(v, web.FileField)), None)
            data = part.file.read() if part is not None else b""
        with self.backend.ws.lock:
            upload.data = data
        return web.Response(text=f"OK - {len(data)}")

    async def download(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") != f"Bearer {self.bot_token}":
            return web.Response(status=403, text="invalid_auth")
        upload = self.backend.uploads.get(request.match_info["file_id"])
        if upload is None or upload.data is None:
            return web.Response(status=404, text="file_not_found")
        return web.Response(body=upload.data, content_type="application/octet-stream")


async def _arguments(request: web.Request) -> dict[str, Any]:
    """Query string, form fields and JSON body merged (later wins), as Slack reads them."""
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise SlackError("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackError("json_not_object")
        args.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            args[key] = value.file.read() if isinstance(value, web.FileField) else value
    return args
