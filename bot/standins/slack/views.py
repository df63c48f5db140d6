"""Modals in the Slack stand-in: trigger ids (single use, 3 seconds, as Slack), views.open/push/update."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from bot.standins.slack.block_checks import MAX_VIEW_BLOCKS, check_blocks, decode_blocks, with_ids
from bot.standins.slack.model import SlackError, View
from bot.standins.slack.state import Workspace

TRIGGER_TTL_S = 3.0
MAX_STACK = 3
TITLE_LENGTH = 24


class Views:
    def __init__(self, ws: Workspace, trigger_ttl_s: float = TRIGGER_TTL_S) -> None:
        self.ws = ws
        self.trigger_ttl_s = trigger_ttl_s
        self.triggers: dict[str, tuple[str, float, bool]] = {}  # id -> (user, issued, used)
        self.views: dict[str, View] = {}
        self.homes: dict[str, View] = {}  # user -> the Home tab published for them
        self.publishes: dict[str, int] = {}  # user -> views.publish calls that changed it

    def new_trigger(self, user: str) -> str:
        trigger = self.ws.ids.trigger()
        with self.ws.lock:
            self.triggers[trigger] = (user, time.monotonic(), False)
        return trigger

    def _use_trigger(self, trigger_id: Any) -> str:
        found = self.triggers.get(str(trigger_id))
        if found is None:
            raise SlackError("invalid_trigger_id")
        user, issued, used = found
        if used:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() - issued > self.trigger_ttl_s:
            raise SlackError("expired_trigger_id")
        self.triggers[str(trigger_id)] = (user, issued, True)
        return user

    def open(self, trigger_id: Any, raw_view: Any) -> View:
        with self.ws.lock:
            spec = _decode_view(raw_view)
            user = self._use_trigger(trigger_id)
            view_id = self.ws.ids.next("V")
            view = View(view_id, user, spec, secrets.token_hex(8), view_id, external_id=spec.get("external_id", ""))
            self.views[view_id] = view
            return view

    def push(self, trigger_id: Any, raw_view: Any) -> View:
        with self.ws.lock:
            spec = _decode_view(raw_view)
            user = self._use_trigger(trigger_id)
            top = next((v for v in reversed(self.views.values()) if v.user == user and not v.closed), None)
            if top is None:
                raise SlackError("not_found")
            if len(self.stack(top.root_view_id)) >= MAX_STACK:
                raise SlackError("push_limit_reached")
            view_id = self.ws.ids.next("V")
            view = View(view_id, user, spec, secrets.token_hex(8), top.root_view_id, previous_view_id=top.id,
                        external_id=spec.get("external_id", ""))
            self.views[view_id] = view
            return view

    def update(self, view_id: Any, external_id: Any, raw_view: Any, view_hash: Any) -> View:
        with self.ws.lock:
            spec = _decode_view(raw_view)
            view = self.views.get(str(view_id)) if view_id else next(
                (v for v in self.views.values() if external_id and v.external_id == external_id), None)
            if view is None or view.closed:
                raise SlackError("not_found")
            if view_hash and view_hash != view.hash:
                raise SlackError("hash_conflict")
            view.view, view.hash = spec, secrets.token_hex(8)
            return view

    def publish(self, user: str, raw_view: Any, view_hash: Any) -> View:
        """views.publish: the user's Home tab (type home), replaced whole; `hash` guards against a race."""
        with self.ws.lock:
            spec = _decode_view(raw_view)
            if spec.get("type") != "home":
                raise SlackError("invalid_arguments", ["[ERROR] must be home [json-pointer:/view/type]"])
            current = self.homes.get(user)
            if view_hash and current is not None and view_hash != current.hash:
                raise SlackError("hash_conflict")
            view_id = current.id if current is not None else self.ws.ids.next("V")
            view = View(view_id, user, spec, secrets.token_hex(8), view_id, external_id=spec.get("external_id", ""))
            self.homes[user] = view
            self.publishes[user] = self.publishes.get(user, 0) + 1
            return view

    def get(self, view_id: str) -> View:
        with self.ws.lock:
            view = self.views.get(view_id)
            if view is None:
                raise KeyError(f"no view {view_id}")
            return view

    def stack(self, root_view_id: str) -> list[View]:
        with self.ws.lock:
            return [v for v in self.views.values() if v.root_view_id == root_view_id and not v.closed]

    def after_submission(self, view: View, ack_body: str) -> None:
        """What Slack does with a view_submission's ack: `response_action` update, push, clear, errors, or close."""
        try:
            answer = json.loads(ack_body) if ack_body.strip() else {}
        except ValueError:
            answer = {}
        action = answer.get("response_action") if isinstance(answer, dict) else None
        with self.ws.lock:
            if action == "errors":
                return
            if action == "update" and isinstance(answer.get("view"), dict):
                view.view, view.hash = _decode_view(answer["view"]), secrets.token_hex(8)
                return
            if action == "push" and isinstance(answer.get("view"), dict):
                view_id = self.ws.ids.next("V")
                self.views[view_id] = View(view_id, view.user, _decode_view(answer["view"]), secrets.token_hex(8),
                                           view.root_view_id, previous_view_id=view.id)
                return
            for v in self.stack(view.root_view_id) if action == "clear" else [view]:
                v.closed = True


def _decode_view(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise SlackError("invalid_arguments", ["[ERROR] view must be a JSON object"]) from None
    if not isinstance(raw, dict):
        raise SlackError("invalid_arguments", ["[ERROR] missing required field: view"])
    problems: list[str] = []
    if raw.get("type") not in ("modal", "home"):
        problems.append("[ERROR] must be one of modal, home [json-pointer:/view/type]")
    title = raw.get("title") or {}
    if raw.get("type") == "modal" and (not isinstance(title, dict) or not title.get("text")):
        problems.append("[ERROR] missing required field: title [json-pointer:/view/title]")
    elif isinstance(title, dict) and len(str(title.get("text", ""))) > TITLE_LENGTH:
        problems.append(f"[ERROR] must be less than {TITLE_LENGTH + 1} characters [json-pointer:/view/title/text]")
    blocks = decode_blocks(raw.get("blocks"))
    if blocks is None:
        problems.append("[ERROR] must be an array of objects [json-pointer:/view/blocks]")
    else:
        problems.extend(p.replace("json-pointer:/blocks", "json-pointer:/view/blocks")
                        for p in check_blocks(blocks, limit=MAX_VIEW_BLOCKS))
    if problems:
        raise SlackError("invalid_arguments", problems)
    return {**raw, "blocks": with_ids(blocks or [])}
