"""What the Slack stand-in sends INTO the app: slash commands, block_actions, view_submissions, events.

Each is built as a payload dict: over HTTP it is form-encoded (events: JSON) and signed as Slack signs
it (v0 HMAC-SHA256 of `v0:{ts}:{body}` with the signing secret); over Socket Mode it is an envelope's
payload. Commands and clicks in channels carry a response_url served by the stand-in, and all a fresh
trigger_id.
Payload shapes follow Slack's: a click on an ephemeral message has `container.is_ephemeral` true and
no `message` (Slack does not send ephemeral messages back to the app).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.standins.slack.api import Backend
from bot.standins.slack.model import Change, Delivery, Message, SlackError, View

VERIFICATION_TOKEN = "emulator-verification-token"  # the deprecated token field Slack still sends
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


def form_body(payload: dict[str, Any]) -> bytes:
    """An interaction's payload as Slack posts it over HTTP: one form field `payload` holding the JSON."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed_headers(signing_secret: str, body: bytes, timestamp: str | None = None,
                   content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    return {"Content-Type": content_type, "User-Agent": USER_AGENT,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": str(SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body))}


class Payloads:
    def __init__(self, backend: Backend) -> None:
        self.b = backend
        self.ws = backend.ws

    def _user(self, user: str) -> dict[str, Any]:
        found = self.ws.user_by_name(user)
        if found is None:
            raise LookupError(f"no user {user!r}: add_user() it first")
        return {"id": found.id, "username": found.name, "name": found.name, "team_id": self.ws.team_id}

    def _channel(self, channel: str) -> dict[str, str]:
        try:
            ch = self.ws.channel(channel)
        except SlackError:
            raise LookupError(f"no channel {channel!r}: add_channel() it first") from None
        return {"id": ch.id, "name": ch.name}

    def _response_url(self, user: str, channel: str, original: tuple[str, str] | None) -> str:
        return f"{self.b.base_url}response/{self.ws.new_response_target(user, channel, original)}"

    def slash(self, user: str, channel: str, command: str, text: str) -> dict[str, str]:
        """A slash command's fields (form-encoded over HTTP, the envelope's payload over Socket Mode)."""
        who, where = self._user(user), self._channel(channel)
        return {
            "token": VERIFICATION_TOKEN, "team_id": self.ws.team_id, "team_domain": self.ws.domain,
            "channel_id": where["id"], "channel_name": where["name"], "user_id": who["id"],
            "user_name": who["name"], "command": "/" + command.lstrip("/"), "text": text,
            "api_app_id": self.ws.app_id, "is_enterprise_install": "false",
            "response_url": self._response_url(who["id"], where["id"], None),
            "trigger_id": self.b.views.new_trigger(who["id"]),
        }

    def click(self, user: str, channel: str, message_ts: str, *, action_id: str | None, label: str | None,
              index: int | None, as_shown: Message | None = None) -> dict[str, Any]:
        """A block_actions payload; `as_shown`: the message as the person still sees it (a stale copy)."""
        who, where = self._user(user), self._channel(channel)
        try:
            msg = as_shown or self.ws.find(where["id"], message_ts, ephemeral=None)
        except SlackError:
            raise LookupError(f"no message {message_ts} in {channel}") from None
        if msg.ephemeral_to not in (None, who["id"]):
            raise LookupError(f"message {message_ts} is shown only to {msg.ephemeral_to}, not {who['id']}")
        index_, text, action, value, block_id = _pick(msg, action_id, label, index)
        element = _element(msg, block_id, action)
        container: dict[str, Any] = {"type": "message", "message_ts": msg.ts, "channel_id": msg.channel,
                                     "is_ephemeral": msg.ephemeral_to is not None}
        if msg.is_reply():
            container["thread_ts"] = msg.thread_ts
        payload: dict[str, Any] = {
            "type": "block_actions", "user": who, "api_app_id": self.ws.app_id, "token": VERIFICATION_TOKEN,
            "container": container, "trigger_id": self.b.views.new_trigger(who["id"]),
            "team": {"id": self.ws.team_id, "domain": self.ws.domain}, "enterprise": None,
            "is_enterprise_install": False, "channel": where, "state": {"values": {}},
            "response_url": self._response_url(who["id"], where["id"], (msg.channel, msg.ts)),
            "actions": [{"action_id": action, "block_id": block_id,
                         "text": {"type": "plain_text", "text": text, "emoji": True}, "value": value,
                         "type": "button", "action_ts": f"{time.time():.6f}",
                         **({"style": element["style"]} if element.get("style") else {})}],
        }
        if msg.ephemeral_to is None:
            payload["message"] = self.b.message_json(msg)
        return payload

    def home_click(self, user: str, *, action_id: str | None, label: str | None, index: int | None) -> dict[str, Any]:
        """A click on a button of the person's Home tab: block_actions with the view, no channel, no response_url."""
        who = self._user(user)
        home = self.b.views.homes.get(who["id"])
        if home is None:
            raise LookupError(f"no Home tab is published for {who['id']}")
        shown = Message("", "", "", "", list(home.view.get("blocks") or []))
        _, text, action, value, block_id = _pick(shown, action_id, label, index)
        element = _element(shown, block_id, action)
        return {
            "type": "block_actions", "user": who, "api_app_id": self.ws.app_id, "token": VERIFICATION_TOKEN,
            "container": {"type": "view", "view_id": home.id}, "trigger_id": self.b.views.new_trigger(who["id"]),
            "team": {"id": self.ws.team_id, "domain": self.ws.domain}, "enterprise": None,
            "is_enterprise_install": False, "state": {"values": {}},
            "view": home.as_slack(self.ws.team_id, self.ws.app_id, self.ws.bot_id),
            "actions": [{"action_id": action, "block_id": block_id,
                         "text": {"type": "plain_text", "text": text, "emoji": True}, "value": value,
                         "type": "button", "action_ts": f"{time.time():.6f}",
                         **({"style": element["style"]} if element.get("style") else {})}],
        }

    def app_home_opened(self, user: str) -> dict[str, Any]:
        """The Events API callback Slack sends when a person opens the app's Home tab."""
        who = self._user(user)
        dm = self.ws.channel(who["id"])
        event: dict[str, Any] = {"type": "app_home_opened", "user": who["id"], "channel": dm.id, "tab": "home",
                                 "event_ts": self.ws.clock.next()}
        home = self.b.views.homes.get(who["id"])
        if home is not None:
            event["view"] = home.as_slack(self.ws.team_id, self.ws.app_id, self.ws.bot_id)
        return self.event_callback(event)

    def event_callback(self, event: dict[str, Any]) -> dict[str, Any]:
        return {"token": VERIFICATION_TOKEN, "team_id": self.ws.team_id, "api_app_id": self.ws.app_id,
                "event": event, "type": "event_callback", "event_id": self.ws.ids.next("Ev"),
                "event_time": int(time.time()), "is_ext_shared_channel": False,
                "authorizations": [{"enterprise_id": None, "team_id": self.ws.team_id,
                                    "user_id": self.ws.bot_user_id, "is_bot": True, "is_enterprise_install": False}]}

    def view_submission(self, user: str, view: View, values: dict[str, dict[str, Any]]) -> dict[str, Any]:
        who = self._user(user)
        if view.user != who["id"] or view.closed:
            raise LookupError(f"view {view.id} is not open for {who['id']}")
        state = {block: {action: value if isinstance(value, dict) else {"type": "plain_text_input", "value": value}
                         for action, value in actions.items()} for block, actions in values.items()}
        payload = {
            "type": "view_submission", "team": {"id": self.ws.team_id, "domain": self.ws.domain}, "user": who,
            "api_app_id": self.ws.app_id, "token": VERIFICATION_TOKEN,
            "trigger_id": self.b.views.new_trigger(who["id"]),
            "view": view.as_slack(self.ws.team_id, self.ws.app_id, self.ws.bot_id, state),
            "response_urls": [], "is_enterprise_install": False, "enterprise": None,
        }
        return payload

    def after_slash_ack(self, user: str, channel: str, delivery: Delivery) -> list[Change]:
        """Slack shows a slash command's ack body: JSON text/blocks (ephemeral or in_channel) or plain text."""
        if delivery.status != 200 or not delivery.body.strip():
            return []
        try:
            answer: Any = json.loads(delivery.body)
        except ValueError:
            answer = {"text": delivery.body}
        if not isinstance(answer, dict) or not (answer.get("text") or answer.get("blocks")):
            return []
        who, where = self._user(user)["id"], self._channel(channel)["id"]
        try:
            if answer.get("response_type") == "in_channel":
                return self.ws.post(where, answer.get("text"), answer.get("blocks"))[1]
            return self.ws.ephemeral(where, who, answer.get("text"), answer.get("blocks"))[1]
        except SlackError as err:
            raise SlackError(err.error, [f"the ack of {delivery.body[:80]!r} was refused", *err.messages]) from None


def _pick(msg: Message, action_id: str | None, label: str | None, index: int | None) -> tuple[int, str, str, str, str]:
    buttons = msg.buttons()
    if not buttons:
        raise LookupError(f"message {msg.ts} has no buttons")
    for found in buttons:
        if (action_id is not None and found[2] == action_id) or (label is not None and found[1] == label) or (
                index is not None and found[0] == index):
            return found
    if action_id is None and label is None and index is None and len(buttons) == 1:
        return buttons[0]
    shown = ", ".join(f"[{i} {t}]" for i, t, *_ in buttons)
    raise LookupError(f"no such button on message {msg.ts} (it has {shown})")


def _element(msg: Message, block_id: str, action_id: str) -> dict[str, Any]:
    for block in msg.blocks:
        if block.get("block_id") == block_id:
            for element in [*(block.get("elements") or []), block.get("accessory")]:
                if isinstance(element, dict) and element.get("action_id") == action_id:
                    return element
    return {}
