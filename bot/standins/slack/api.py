"""The Web API methods the Slack stand-in answers, with Slack's response shapes and error names.

Each handler takes the decoded arguments (token removed) and returns the JSON answer and the
message changes to publish; errors are raised as `SlackError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.standins.slack.model import Change, Message, SlackError, User
from bot.standins.slack.state import Workspace
from bot.standins.slack.views import Views

Answer = tuple[dict[str, Any], list[Change]]


@dataclass
class Upload:
    id: str
    filename: str
    length: int
    title: str = ""
    data: bytes | None = None


@dataclass
class Backend:
    ws: Workspace
    views: Views
    base_url: str = ""  # http://127.0.0.1:PORT/ once serving
    uploads: dict[str, Upload] = field(default_factory=dict)
    socket_url: Callable[[], str] | None = None  # apps.connections.open: a new Socket Mode URL

    def message_json(self, msg: Message) -> dict[str, Any]:
        return msg.as_slack(self.ws.team_id, self.ws.app_id)


_WHEN_MISSING = {"channel": "channel_not_found", "ts": "message_not_found", "message_ts": "message_not_found",
                 "user": "user_not_found", "usergroup": "no_such_subteam"}


def _required(args: dict[str, Any], *names: str) -> list[Any]:
    """The named arguments, or the error Slack answers when one is missing (the contract may say more)."""
    values = [args.get(n) for n in names]
    for name, value in zip(names, values, strict=True):
        if value is None or value == "":
            raise SlackError(_WHEN_MISSING.get(name, "invalid_arguments"), [f"[ERROR] missing required field: {name}"])
    return values


def auth_test(b: Backend, args: dict[str, Any]) -> Answer:
    ws = b.ws
    return {"ok": True, "url": f"https://{ws.domain}.slack.com/", "team": "Shepherd Emulator", "user": "shepherd",
            "team_id": ws.team_id, "user_id": ws.bot_user_id, "bot_id": ws.bot_id, "app_id": ws.app_id,
            "is_enterprise_install": False}, []


def chat_post_message(b: Backend, args: dict[str, Any]) -> Answer:
    (channel,) = _required(args, "channel")
    _check_dm(b, str(channel))
    msg, changes = b.ws.post(str(channel), args.get("text"), args.get("blocks"), thread_ts=args.get("thread_ts"))
    return {"ok": True, "channel": msg.channel, "ts": msg.ts, "message": b.message_json(msg)}, changes


def chat_update(b: Backend, args: dict[str, Any]) -> Answer:
    channel, ts = _required(args, "channel", "ts")
    msg, changes = b.ws.update(str(channel), str(ts), args.get("text"), args.get("blocks"))
    return {"ok": True, "channel": msg.channel, "ts": msg.ts, "text": msg.text,
            "message": b.message_json(msg)}, changes


def chat_post_ephemeral(b: Backend, args: dict[str, Any]) -> Answer:
    channel, user = _required(args, "channel", "user")
    msg, changes = b.ws.ephemeral(str(channel), str(user), args.get("text"), args.get("blocks"),
                                  args.get("thread_ts"))
    return {"ok": True, "message_ts": msg.ts}, changes


def chat_delete(b: Backend, args: dict[str, Any]) -> Answer:
    channel, ts = _required(args, "channel", "ts")
    changes = b.ws.delete(str(channel), str(ts))
    return {"ok": True, "channel": b.ws.channel(str(channel)).id, "ts": str(ts)}, changes


def chat_get_permalink(b: Backend, args: dict[str, Any]) -> Answer:
    channel, ts = _required(args, "channel", "message_ts")
    return {"ok": True, "channel": b.ws.channel(str(channel)).id, "permalink": b.ws.permalink(str(channel),
                                                                                              str(ts))}, []


def _view_answer(b: Backend, view: Any) -> Answer:
    return {"ok": True, "view": view.as_slack(b.ws.team_id, b.ws.app_id, b.ws.bot_id)}, []


def views_open(b: Backend, args: dict[str, Any]) -> Answer:
    return _view_answer(b, b.views.open(args.get("trigger_id"), args.get("view")))


def views_push(b: Backend, args: dict[str, Any]) -> Answer:
    return _view_answer(b, b.views.push(args.get("trigger_id"), args.get("view")))


def views_update(b: Backend, args: dict[str, Any]) -> Answer:
    return _view_answer(b, b.views.update(args.get("view_id"), args.get("external_id"), args.get("view"),
                                          args.get("hash")))


def _user_json(ws: Workspace, u: User) -> dict[str, Any]:
    return {"id": u.id, "team_id": ws.team_id, "name": u.name, "deleted": u.deleted, "real_name": u.real_name,
            "tz": u.tz, "tz_label": u.tz, "tz_offset": 0, "is_bot": u.is_bot, "is_admin": False,
            "is_app_user": False, "profile": {"real_name": u.real_name, "display_name": u.name,
                                               "real_name_normalized": u.real_name, "team": ws.team_id}}


def users_info(b: Backend, args: dict[str, Any]) -> Answer:
    (user,) = _required(args, "user")
    return {"ok": True, "user": _user_json(b.ws, b.ws.user(str(user)))}, []


def conversations_info(b: Backend, args: dict[str, Any]) -> Answer:
    (channel,) = _required(args, "channel")
    ch = b.ws.channel(str(channel))
    is_im = ch.id.startswith("D")
    info: dict[str, Any] = {"id": ch.id, "name": ch.name, "is_channel": not is_im, "is_group": False,
                            "is_im": is_im, "is_private": is_im, "is_archived": False, "is_general": False,
                            "is_member": True, "is_shared": False, "is_org_shared": False, "context_team_id":
                            b.ws.team_id, "created": 1700000000, "topic": {"value": ""}, "purpose": {"value": ""}}
    if args.get("include_num_members") in (True, "true", "1", 1):
        info["num_members"] = len(ch.members)
    return {"ok": True, "channel": info}, []


def conversations_open(b: Backend, args: dict[str, Any]) -> Answer:
    """A direct message with one person (`users`), or the one named by `channel`."""
    if args.get("channel"):
        ch = b.ws.channel(str(args["channel"]))
    else:
        (users,) = _required(args, "users")
        wanted = [u.strip() for u in str(users).split(",") if u.strip()]
        if len(wanted) != 1:
            raise SlackError("not_implemented", ["[ERROR] the stand-in opens direct messages with one person only"])
        user = b.ws.user(wanted[0])
        if user.deleted:
            raise SlackError("user_disabled")
        if user.is_bot:
            raise SlackError("cannot_dm_bot")
        ch = b.ws.channel(user.id)
    shown: dict[str, Any] = {"id": ch.id}
    if args.get("return_im") in (True, "true", "1", 1):
        other = next((m for m in ch.members if m != b.ws.bot_user_id), "")
        shown.update(is_im=ch.id.startswith("D"), user=other, created=1700000000, is_open=True)
    return {"ok": True, "channel": shown}, []


def _check_dm(b: Backend, channel: str) -> None:
    """Posting into a direct message: refused where Slack would refuse it."""
    with b.ws.lock:
        ch = b.ws.channel(channel) if channel.startswith(("D", "U", "W")) else None
        if ch is None or not ch.id.startswith("D"):
            return
        for member in ch.members - {b.ws.bot_user_id}:
            user = b.ws.users.get(member)
            if user is not None and user.deleted:
                raise SlackError("user_disabled")
            if user is not None and user.dms_restricted:
                raise SlackError("restricted_action")


def apps_connections_open(b: Backend, args: dict[str, Any]) -> Answer:
    if b.socket_url is None:
        raise SlackError("not_allowed_token_type")
    return {"ok": True, "url": b.socket_url()}, []


def views_publish(b: Backend, args: dict[str, Any]) -> Answer:
    user_id, view = _required(args, "user_id", "view")
    b.ws.user(str(user_id))
    return _view_answer(b, b.views.publish(str(user_id), view, args.get("hash")))


def usergroups_users_list(b: Backend, args: dict[str, Any]) -> Answer:
    (group,) = _required(args, "usergroup")
    found = b.ws.usergroups.get(str(group))
    if found is None:
        raise SlackError("no_such_subteam")
    return {"ok": True, "users": list(found.users)}, []


def usergroups_list(b: Backend, args: dict[str, Any]) -> Answer:
    with_users = args.get("include_users") in (True, "true", "1", 1)
    groups = []
    for g in b.ws.usergroups.values():
        shown: dict[str, Any] = {"id": g.id, "team_id": b.ws.team_id, "is_usergroup": True, "name": g.handle,
                                 "handle": g.handle, "description": "", "user_count": len(g.users)}
        if with_users:
            shown["users"] = list(g.users)
        groups.append(shown)
    return {"ok": True, "usergroups": groups}, []


def files_get_upload_url_external(b: Backend, args: dict[str, Any]) -> Answer:
    filename, length = _required(args, "filename", "length")
    try:
        size = int(length)
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments", ["[ERROR] expected integer for field length"]) from None
    upload = Upload(b.ws.ids.next("F"), str(filename), size)
    with b.ws.lock:
        b.uploads[upload.id] = upload
    return {"ok": True, "upload_url": f"{b.base_url}upload/{upload.id}", "file_id": upload.id}, []


def files_complete_upload_external(b: Backend, args: dict[str, Any]) -> Answer:
    (raw,) = _required(args, "files")
    try:
        wanted = json.loads(raw) if isinstance(raw, str) else raw
        ids = [(str(f["id"]), str(f.get("title") or "")) for f in wanted]
    except (ValueError, TypeError, KeyError):
        raise SlackError("invalid_arguments", ["[ERROR] files must be a JSON array of {id, title}"]) from None
    with b.ws.lock:
        uploads = [b.uploads.get(i) for i, _ in ids]
        if any(u is None or u.data is None for u in uploads):
            raise SlackError("file_not_found")
        shown = []
        for (_, title), upload in zip(ids, uploads, strict=True):
            assert upload is not None and upload.data is not None
            upload.title = title or upload.filename
            shown.append({"id": upload.id, "name": upload.filename, "title": upload.title, "size": len(upload.data),
                          "mimetype": "application/octet-stream", "user": b.ws.bot_user_id,
                          "url_private": f"{b.base_url}files/{upload.id}"})
    changes: list[Change] = []
    channel = args.get("channel_id") or args.get("channels")
    if channel:
        _, changes = b.ws.post(str(channel).split(",")[0], args.get("initial_comment") or "", None,
                               thread_ts=args.get("thread_ts"), files=shown)
    return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in shown]}, changes


METHODS: dict[str, Callable[[Backend, dict[str, Any]], Answer]] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.delete": chat_delete,
    "chat.getPermalink": chat_get_permalink,
    "views.open": views_open,
    "views.update": views_update,
    "views.push": views_push,
    "views.publish": views_publish,
    "apps.connections.open": apps_connections_open,
    "conversations.open": conversations_open,
    "users.info": users_info,
    "conversations.info": conversations_info,
    "usergroups.list": usergroups_list,
    "usergroups.users.list": usergroups_users_list,
    "files.getUploadURLExternal": files_get_upload_url_external,
    "files.completeUploadExternal": files_complete_upload_external,
}
