"""Output of the console: line results, the help text, and writing styled text to a terminal or a file.

A terminal gets colours and bold through prompt_toolkit (its Vt100 output renders the fragments to
escape sequences); anything else (a file, a pipe, a StringIO) gets plain text.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import TextIO

from prompt_toolkit import print_formatted_text
from prompt_toolkit.data_structures import Size
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.styles import Style

from bot.standins.console.render_text import STYLES, Fragment, plain, render_message
from bot.standins.slack.model import Change, Message

STYLE = Style.from_dict({**STYLES, "prompt": "bold", "ok": "#5faf5f", "fail": "bold #d75f5f", "note": "#888888"})

HELP = """\
/as <user>                 act as another person (name or id)
/in <#channel>             move to another channel
/<command> <text>          a slash command, e.g. /backfill plan hilton --window 5d
click N                    the N-th button of the latest message with buttons (in the thread when one is open)
click N in <ts>            the N-th button of the message at <ts>
open <ts|last>             show a thread (last: the latest message with replies); back: leave it
messages [N]               the last N messages here (default 10), with your ephemerals
wait <seconds>             wait, showing what arrives
wait until <text>          wait until a message containing <text> arrives after the last command or click
expect <text>              fail unless the output of the previous line contains <text>
refused <line>             run <line>; fail unless it is refused (for scripts: bad input, missing permission)
help                       this list; Ctrl-D leaves
A slash command or click fails when the app's ack is not HTTP 200 or its first private reply is an error
(an ephemeral whose text, or first section, starts with ":x:")."""


@dataclass
class LineResult:
    ok: bool
    output: str


def is_error(msg: Message) -> bool:
    """The console's rule for an error reply: an ephemeral whose text or first section starts with ":x:"."""
    if msg.ephemeral_to is None:
        return False
    first = next((b for b in msg.blocks if b.get("type") == "section"), None)
    section = str(((first or {}).get("text") or {}).get("text", ""))
    return msg.text.lstrip().startswith(":x:") or section.lstrip().startswith(":x:")


def render_change(change: Change, names: dict[str, str], here: str) -> list[Fragment]:
    msg = change.message
    where = "" if msg.channel == here else f"[#{names.get(msg.channel, msg.channel)}] "
    if change.kind == "deleted":
        return [("class:note", f"{where}(message {msg.ts} deleted)\n")]
    lead = f"{where}↳ in thread {msg.thread_ts} " if msg.is_reply() else where
    if change.kind == "updated":
        lead += f"✎ {msg.ts} updated "
    head: list[Fragment] = [("class:note", lead.rstrip() + "\n")] if lead else []
    return head + render_message(msg, names)


def note(text: str, style: str = "class:note") -> list[Fragment]:
    return [(style, text.rstrip("\n") + "\n")] if text else []


class Screen:
    """Writes fragments to the console's output; thread-safe (changes arrive on the emulator's thread)."""

    def __init__(self, output: TextIO) -> None:
        self.output = output
        self.ansi = _isatty(output)
        self._lock = threading.Lock()

    def write(self, fragments: list[Fragment]) -> None:
        if not fragments:
            return
        text = to_ansi(fragments) if self.ansi else plain(fragments)
        with self._lock:
            self.output.write(text)
            self.output.flush()


def to_ansi(fragments: list[Fragment]) -> str:
    buffer = io.StringIO()
    out = Vt100_Output(buffer, lambda: Size(rows=50, columns=200), term="xterm-256color", enable_cpr=False)
    print_formatted_text(FormattedText(fragments), output=out, style=STYLE, end="")
    return buffer.getvalue()


def _isatty(output: TextIO) -> bool:
    try:
        return output.isatty()
    except (AttributeError, ValueError):
        return False
