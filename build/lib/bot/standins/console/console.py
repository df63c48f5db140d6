"""A terminal console over the Slack stand-in: type slash commands and click buttons as a person would.

    console = Console(emu, default_user="U_ALICE", default_channel="C_OPS", output=sys.stdout)
    await console.run_interactive()            # a prompt_toolkit prompt; new posts appear above it
    code = await console.run_script(path)      # each line echoed as "> line"; 0 if all passed, else 1
    result = await console.run_line("/backfill plan hilton")   # LineResult(ok, output)

The lines are listed in `console_output.HELP` (`help` prints them). After a slash command or a click
the console waits up to `reply_wait_s` for the app's first reply in view (then `settle_s` more for the
rest of the burst) and shows what came. The line fails when the ack is not HTTP 200 or one of those
replies is an error: an ephemeral whose text, or first section, starts with ":x:". `wait until <text>`
looks at messages that arrived or changed since the last slash command or click; `expect <text>`
looks at the output of the previous line.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

import aiohttp
from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

from bot.standins.console.output import HELP, STYLE, LineResult, Screen, is_error, note, render_change
from bot.standins.console.render_text import Fragment, plain, render_message
from bot.standins.slack.emulator import SlackEmulator
from bot.standins.slack.model import Change, Message, SlackError

Outcome = tuple[bool, list[Fragment], list[Fragment]]  # ok, the line's own output, what arrived meanwhile


class Console:
    def __init__(self, emulator: SlackEmulator, *, default_user: str, default_channel: str, output: TextIO,
                 wait_timeout: float = 60.0, reply_wait_s: float = 5.0, settle_s: float = 0.3) -> None:
        self.emu = emulator
        self.screen = Screen(output)
        self.wait_timeout, self.reply_wait_s, self.settle_s = wait_timeout, reply_wait_s, settle_s
        self.user = self._user(default_user) or default_user
        self.channel = self._channel(default_channel) or default_channel
        self.thread_ts: str | None = None
        self.latest = ""
        self._log: list[Change] = []
        self._log_lock = threading.Lock()
        self._mark = 0  # where in the log the last slash command or click began
        self._live = False
        self._unsubscribe = emulator.subscribe(self._on_change)

    def close(self) -> None:
        self._unsubscribe()

    # --- entry points ------------------------------------------------------------------------
    async def run_line(self, line: str) -> LineResult:
        ok, own, arrived = await self._run(line)
        return LineResult(ok, plain(own + arrived))

    async def run_script(self, path: Path) -> int:
        for number, raw in enumerate(path.read_text().splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            self.screen.write([("class:prompt", f"> {line}\n")])
            ok, own, arrived = await self._run(line)
            self.screen.write(own + arrived)
            if not ok:
                self.screen.write(note(f"{path.name}:{number}: failed: {line}", "class:fail"))
                return 1
        return 0

    async def run_interactive(self) -> None:
        session: PromptSession[str] = PromptSession(history=InMemoryHistory(), style=STYLE)
        original = self.screen.output
        with patch_stdout(raw=True):
            self.screen.output = sys.stdout  # the proxy that prints above the prompt
            self._live = True
            try:
                self.screen.write(note("Type help for the commands; Ctrl-D leaves."))
                while True:
                    try:
                        line = await session.prompt_async(self._prompt)
                    except KeyboardInterrupt:
                        continue
                    except EOFError:
                        break
                    ok, own, _ = await self._run(line)  # what arrived was printed as it came
                    self.screen.write(own if ok or own else note("failed", "class:fail"))
            finally:
                self._live = False
                self.screen.output = original

    def _prompt(self) -> FormattedText:
        names = self.emu.users() | self.emu.channels()
        where = f"#{names.get(self.channel, self.channel)}" + (f" thread {self.thread_ts}" if self.thread_ts else "")
        return FormattedText([("class:who", names.get(self.user, self.user)), ("", f" in {where} > ")])

    # --- lines -------------------------------------------------------------------------------
    async def _run(self, line: str) -> Outcome:
        line = line.strip()
        if not line or line.startswith("#"):
            return True, [], []
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        try:
            outcome = await self._dispatch(word.lower(), rest, line)
        except (LookupError, ValueError, SlackError) as err:
            outcome = False, note(f"✗ {err.args[0] if err.args else err}", "class:fail"), []
        except (OSError, aiohttp.ClientError, TimeoutError) as err:
            outcome = False, note(f"✗ could not reach the app at {self.emu.app_url}: {err!r}", "class:fail"), []
        if word.lower() != "expect":
            self.latest = plain(outcome[1] + outcome[2])
        return outcome

    async def _dispatch(self, word: str, rest: str, line: str) -> Outcome:
        if word == "/as":
            return self._switch_user(rest)
        if word == "/in":
            found = self._channel(rest)
            if found is None:
                return False, note(f"✗ no channel {rest!r}", "class:fail"), []
            self.channel, self.thread_ts = found, None
            return True, note(f"now in #{self.emu.channels()[found]}"), []
        if word.startswith("/"):
            return await self._slash(word, rest)
        if word == "click":
            return await self._click(rest)
        if word == "open":
            return self._open(rest)
        if word == "back":
            self.thread_ts = None
            return True, note(f"back in #{self.emu.channels().get(self.channel, self.channel)}"), []
        if word == "messages":
            return self._messages(int(rest) if rest else 10)
        if word == "wait":
            return await self._wait(rest)
        if word == "expect":
            seen = rest in self.latest
            return seen, note(f"✓ saw {rest!r}" if seen else f"✗ {rest!r} not in the last output",
                              "class:ok" if seen else "class:fail"), []
        if word == "help":
            return True, note(HELP, ""), []
        if word == "refused" and rest:  # for scripts: the line must be answered with an error
            ok, own, arrived = await self._dispatch(rest.partition(" ")[0].lower(), rest.partition(" ")[2].strip(),
                                                    rest)
            verdict = note("✓ refused, as expected" if not ok else f"✗ {rest!r} was not refused",
                           "class:ok" if not ok else "class:fail")
            return not ok, own + verdict, arrived
        return False, note(f"✗ unknown line {line!r}; type help", "class:fail"), []

    def _switch_user(self, who: str) -> Outcome:
        found = self._user(who)
        if found is None:
            return False, note(f"✗ no user {who!r}", "class:fail"), []
        self.user = found
        return True, note(f"now acting as {self.emu.users()[found]} ({found})"), []

    async def _slash(self, command: str, text: str) -> Outcome:
        self._mark = self._log_size()
        delivery = await self.emu.slash(self.user, self.channel, command, text)
        ok, own, arrived = await self._after_delivery(delivery.status, delivery.body)
        if self.thread_ts:  # Slack has no slash commands in threads
            own = note("(sent to the channel: Slack takes no slash commands in a thread)") + own
        return ok, own, arrived

    async def _click(self, rest: str) -> Outcome:
        words = shlex.split(rest)
        if not words or not words[0].isdigit() or (len(words) > 1 and (len(words) != 3 or words[1] != "in")):
            raise ValueError("usage: click N  or  click N in <ts>")
        msg = self._message(words[2]) if len(words) == 3 else self._latest_with_buttons()
        self._mark = self._log_size()
        delivery = await self.emu.click(self.user, msg.channel, msg.ts, index=int(words[0]))
        return await self._after_delivery(delivery.status, delivery.body)

    async def _after_delivery(self, status: int, body: str) -> Outcome:
        if status != 200:
            return False, note(f"✗ the app answered HTTP {status}: {body[:200]}", "class:fail"), []
        changes = await self._replies()
        arrived = [f for c in changes for f in self._render(c)]
        ok = not any(is_error(c.message) for c in changes if c.kind in ("ephemeral", "updated"))
        if not changes:
            return True, note(f"(no reply within {self.reply_wait_s:g} s)"), []
        return ok, [], arrived

    async def _replies(self) -> list[Change]:
        """The changes in view after the mark: wait for the first, then for the burst to settle."""
        deadline = time.monotonic() + self.reply_wait_s
        seen, quiet_since = 0, time.monotonic()
        while time.monotonic() < deadline:
            found = self._since_mark()
            if len(found) != seen:
                seen, quiet_since = len(found), time.monotonic()
            elif seen and time.monotonic() - quiet_since >= self.settle_s:
                break
            await asyncio.sleep(0.02)
        return self._since_mark()

    async def _wait(self, rest: str) -> Outcome:
        if rest.startswith("until "):
            text = rest.removeprefix("until ").strip()
            deadline = time.monotonic() + self.wait_timeout
            while time.monotonic() < deadline:
                for change in reversed(self._since_mark(everywhere=True)):
                    if change.kind != "deleted" and text in plain(render_message(change.message, self._names())):
                        return True, self._render(change), []
                await asyncio.sleep(0.05)
            return False, note(f"✗ nothing with {text!r} within {self.wait_timeout:g} s", "class:fail"), []
        seconds = float(rest)
        start = self._log_size()
        await asyncio.sleep(seconds)
        with self._log_lock:
            arrived = [c for c in self._log[start:] if self._visible(c, everywhere=True)]
        return True, [], [f for c in arrived for f in self._render(c)]

    def _open(self, rest: str) -> Outcome:
        if rest in ("", "last"):
            top = self.emu.messages(self.channel)
            with_replies = [m for m in top if m.reply_count]
            if not (with_replies or top):
                return False, note("✗ no messages here", "class:fail"), []
            root = (with_replies or top)[-1]
        else:
            root = self._message(rest)
            if root.is_reply():
                root = self._message(str(root.thread_ts))
        self.thread_ts = root.ts
        names = self._names()
        shown = render_message(root, names)
        for reply in self.emu.thread(self.channel, root.ts):
            shown += [("class:thread", "  │ ")] + _indent(render_message(reply, names))
        return True, shown, []

    def _messages(self, count: int) -> Outcome:
        mine = self.emu.ephemerals(self.user, self.channel)
        shown = sorted(self.emu.messages(self.channel) + mine, key=lambda m: float(m.ts))[-count:]
        names = self._names()
        out = [f for m in shown for f in render_message(m, names)]
        return True, out or note("(no messages)"), []

    # --- looking things up -------------------------------------------------------------------
    def _names(self) -> dict[str, str]:
        return self.emu.users() | self.emu.channels()

    def _user(self, who: str) -> str | None:
        key = who.strip().lstrip("@")
        users = self.emu.users()
        return key if key in users else next((uid for uid, name in users.items() if name == key), None)

    def _channel(self, where: str) -> str | None:
        key = where.strip().lstrip("#")
        channels = self.emu.channels()
        return key if key in channels else next((cid for cid, name in channels.items() if name == key), None)

    def _message(self, ts: str) -> Message:
        msg = self.emu.message(self.channel, ts)
        if msg.ephemeral_to not in (None, self.user):
            raise LookupError(f"message {ts} is not shown to {self.user}")
        return msg

    def _latest_with_buttons(self) -> Message:
        if self.thread_ts:
            pool = [self.emu.message(self.channel, self.thread_ts), *self.emu.thread(self.channel, self.thread_ts)]
        else:
            pool = self.emu.messages(self.channel)
        pool += self.emu.ephemerals(self.user, self.channel)
        with_buttons = [m for m in pool if m.buttons()]
        if not with_buttons:
            raise LookupError("no message with buttons in view")
        return max(with_buttons, key=lambda m: float(m.ts))

    # --- changes from the emulator -----------------------------------------------------------
    def _on_change(self, change: Change) -> None:
        with self._log_lock:
            self._log.append(change)
        if self._live and self._visible(change, everywhere=True):
            self.screen.write(self._render(change))

    def _visible(self, change: Change, *, everywhere: bool = False) -> bool:
        msg = change.message
        return msg.ephemeral_to in (None, self.user) and (everywhere or msg.channel == self.channel)

    def _since_mark(self, *, everywhere: bool = False) -> list[Change]:
        with self._log_lock:
            return [c for c in self._log[self._mark:] if self._visible(c, everywhere=everywhere)]

    def _log_size(self) -> int:
        with self._log_lock:
            return len(self._log)

    def _render(self, change: Change) -> list[Fragment]:
        return render_change(change, self._names(), self.channel)


def _indent(fragments: list[Fragment]) -> list[Fragment]:
    out: list[Fragment] = []
    for style, text in fragments:
        out.append((style, text.replace("\n", "\n  │ ")))
    if out and out[-1][1].endswith("  │ "):
        out[-1] = (out[-1][0], out[-1][1][: -len("  │ ")])
    return out
