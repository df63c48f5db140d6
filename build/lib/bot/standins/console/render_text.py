"""Block Kit messages as terminal text, for the console over the Slack stand-in.

`render_message(msg, names)` gives prompt_toolkit style fragments `[(style, text), ...]`; `plain(fragments)`
joins them without styles. What it shows: who posted and when, "(edited)", "(only visible to you)";
header blocks bold and underlined; section text with mrkdwn turned into plain text (bold and italics
as styles, `<@U1>` as @name, `<url|label>` as "label (url)", dates as their fallback text); section
fields in two columns; code blocks (```) verbatim, without the fences, so tables stay aligned; context
blocks dimmed behind "›"; images as "[image: alt text]", files as "[file: name]"; buttons numbered from
1 in block order (the numbering of `Message.buttons()`, which `click N` uses): "[1 Run] [2 Dismiss]";
and a thread's reply count.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.standins.slack.model import Message

Fragment = tuple[str, str]
Line = list[Fragment]

FIELD_COLUMN = 44  # widest left column of a two-column fields section
STYLES = {
    "who": "bold", "when": "#888888", "mark": "italic #888888", "header": "bold underline", "bold": "bold",
    "italic": "italic", "strike": "strike", "code": "#87afd7", "context": "#888888", "button": "reverse",
    "button-primary": "reverse #5faf5f", "button-danger": "reverse #d75f5f", "media": "#d7af5f", "thread": "#888888",
}

_CODE_BLOCK = re.compile(r"```\n?(.*?)\n?```", re.S)
_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_EMPHASIS = re.compile(r"(?<![\w*_~`])([*_~])(?=\S)([^\n]*?\S)\1(?![\w*_~])|`([^`\n]+)`")
_EMPHASIS_STYLE = {"*": "class:bold", "_": "class:italic", "~": "class:strike"}


def plain(fragments: list[Fragment]) -> str:
    return "".join(text for _, text in fragments)


def mrkdwn_text(text: str, names: Mapping[str, str] | None = None) -> str:
    """Slack mrkdwn as plain text (the same rules as the rendering, without styles)."""
    return plain(_inline(text, names or {}, mrkdwn=True))


def render_message(msg: Message, names: Mapping[str, str] | None = None, *, header: bool = True) -> list[Fragment]:
    names = names or {}
    out: list[Fragment] = []
    if header:
        out += _header_line(msg, names)
    lines = _blocks(msg, names) if msg.blocks else _text_lines(msg.text, names, mrkdwn=True)
    for line in lines:
        out += [*line, ("", "\n")]
    for f in msg.files:
        title = f.get("title") or ""
        shown = f.get("name") or title or f.get("id", "?")
        out += [("class:media", f"[file: {shown}{f' - {title}' if title and title != shown else ''}]"), ("", "\n")]
    if msg.reply_count and not msg.is_reply():
        many = "replies" if msg.reply_count != 1 else "reply"
        out += [("class:thread", f"  ↳ {msg.reply_count} {many} (open {msg.ts})"), ("", "\n")]
    return out


def _header_line(msg: Message, names: Mapping[str, str]) -> list[Fragment]:
    who = names.get(msg.user, msg.user)
    when = datetime.fromtimestamp(float(msg.ts)).strftime("%H:%M:%S")
    line: list[Fragment] = [("class:who", who), ("class:when", f" · {when} · {msg.ts}")]
    if msg.edits:
        line.append(("class:mark", " (edited)"))
    if msg.ephemeral_to:
        line.append(("class:mark", " (only visible to you)"))
    return [*line, ("", "\n")]


def _text_lines(text: str, names: Mapping[str, str], *, mrkdwn: bool) -> list[Line]:
    return _split_lines(_inline(text, names, mrkdwn=mrkdwn))


def _split_lines(fragments: list[Fragment]) -> list[Line]:
    lines: list[Line] = [[]]
    for style, text in fragments:
        parts = text.split("\n")
        for i, part in enumerate(parts):
            if i:
                lines.append([])
            if part:
                lines[-1].append((style, part))
    return lines


def _inline(text: str, names: Mapping[str, str], *, mrkdwn: bool) -> list[Fragment]:
    if not mrkdwn:
        return [("", text)]
    out: list[Fragment] = []
    pos = 0
    for block in _CODE_BLOCK.finditer(text):
        out += _emphasis(_links(text[pos:block.start()], names))
        out.append(("class:code", html.unescape(block.group(1))))
        pos = block.end()
    return out + _emphasis(_links(text[pos:], names))


def _links(text: str, names: Mapping[str, str]) -> str:
    def one(found: re.Match[str]) -> str:
        target, label = found.group(1), found.group(2)
        if target.startswith("@"):
            return "@" + (label or names.get(target[1:], target[1:]))
        if target.startswith("#"):
            return "#" + (label or names.get(target[1:], target[1:]))
        if target.startswith("!subteam^"):
            return label or "@" + target.split("^", 1)[1]
        if target.startswith("!date^"):
            return label or target
        if target.startswith("!"):
            return "@" + target[1:]
        return f"{label} ({target})" if label and label != target else target

    return _LINK.sub(one, text)


def _emphasis(text: str) -> list[Fragment]:
    out: list[Fragment] = []
    pos = 0
    for found in _EMPHASIS.finditer(text):
        if found.start() > pos:
            out.append(("", html.unescape(text[pos:found.start()])))
        if found.group(3) is not None:
            out.append(("class:code", html.unescape(found.group(3))))
        else:
            out.append((_EMPHASIS_STYLE[found.group(1)], html.unescape(found.group(2))))
        pos = found.end()
    if pos < len(text):
        out.append(("", html.unescape(text[pos:])))
    return out


def _text_object(obj: Any, names: Mapping[str, str]) -> list[Line]:
    if not isinstance(obj, dict):
        return []
    return _text_lines(str(obj.get("text", "")), names, mrkdwn=obj.get("type") == "mrkdwn")


def _blocks(msg: Message, names: Mapping[str, str]) -> list[Line]:
    numbers = {(block_id, action_id): index for index, _, action_id, _, block_id in msg.buttons()}
    lines: list[Line] = []
    for block in msg.blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append([("class:header", plain(_inline(str(block.get("text", {}).get("text", "")), names,
                                                         mrkdwn=False)))])
        elif kind == "section":
            lines += _section(block, names, numbers)
        elif kind == "divider":
            lines.append([("class:context", "─" * 40)])
        elif kind == "context":
            parts = [plain(_inline(str(e.get("text", "")), names, mrkdwn=e.get("type") == "mrkdwn"))
                     if e.get("type") in ("mrkdwn", "plain_text") else _media(e) for e in block.get("elements", [])]
            lines += [[("class:context", f"  › {line}")] for line in " · ".join(parts).split("\n")]
        elif kind == "image":
            lines.append([("class:media", _media(block))])
        elif kind == "actions":
            lines.append(_elements(block, block.get("elements", []), numbers))
        elif kind == "input":
            label = plain(_inline(str(block.get("label", {}).get("text", "")), names, mrkdwn=False))
            lines.append([("class:bold", f"{label}: "), *_elements(block, [block.get("element", {})], numbers)])
        elif kind in ("rich_text", "markdown"):
            text = _rich_text(block, names).rstrip("\n") if kind == "rich_text" else str(block.get("text", ""))
            lines += _text_lines(text, names, mrkdwn=kind == "markdown")
        else:
            lines.append([("class:media", f"[{kind}]")])
    return lines


def _section(block: dict[str, Any], names: Mapping[str, str], numbers: dict[tuple[str, str], int]) -> list[Line]:
    lines = _text_object(block.get("text"), names)
    fields = [_text_object(f, names) for f in block.get("fields", [])]
    width = min(FIELD_COLUMN, max((len(plain(line)) for f in fields[::2] for line in f), default=0) + 2)
    for i in range(0, len(fields), 2):
        left, right = fields[i], fields[i + 1] if i + 1 < len(fields) else []
        for j in range(max(len(left), len(right))):
            cell, other = left[j] if j < len(left) else [], right[j] if j < len(right) else []
            lines.append([*cell, ("", " " * max(2, width - len(plain(cell)))), *other] if other else cell)
    accessory = block.get("accessory")
    if isinstance(accessory, dict):
        shown = _elements(block, [accessory], numbers)
        if lines:
            lines[-1] = [*lines[-1], ("", "  "), *shown]
        else:
            lines.append(shown)
    return lines


def _elements(block: dict[str, Any], elements: list[Any], numbers: dict[tuple[str, str], int]) -> Line:
    line: Line = []
    for element in elements:
        if not isinstance(element, dict):
            continue
        if line:
            line.append(("", " "))
        if element.get("type") == "button":
            index = numbers.get((str(block.get("block_id", "")), str(element.get("action_id", ""))), "?")
            style = {"primary": "class:button-primary", "danger": "class:button-danger"}.get(
                str(element.get("style")), "class:button")
            line.append((style, f"[{index} {element.get('text', {}).get('text', '')}]"))
        elif element.get("type") == "image":
            line.append(("class:media", _media(element)))
        else:
            hint = (element.get("placeholder") or {}).get("text") or element.get("initial_value") or ""
            line.append(("class:media", f"[{element.get('type', '?')}{': ' + str(hint) if hint else ''}]"))
    return line


def _media(element: dict[str, Any]) -> str:
    if element.get("type") == "image":
        return f"[image: {element.get('alt_text', '')}]"
    return f"[{element.get('type', '?')}]"


def _rich_text(node: Any, names: Mapping[str, str]) -> str:
    if isinstance(node, dict):
        if node.get("type") == "text":
            return str(node.get("text", ""))
        if node.get("type") in ("user", "usergroup", "channel"):
            ref = str(node.get("user_id") or node.get("usergroup_id") or node.get("channel_id"))
            return ("#" if node["type"] == "channel" else "@") + names.get(ref, ref)
        if node.get("type") == "link":
            return str(node.get("text") or node.get("url", ""))
        inner = "".join(_rich_text(e, names) for e in node.get("elements", []))
        return inner + ("\n" if node.get("type") in ("rich_text_section", "rich_text_preformatted") else "")
    return ""
