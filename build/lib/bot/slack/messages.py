"""A Slack message built from slack_sdk's Block Kit models, checked against Slack's limits when built.

slack_sdk validates each block's own limits in `to_dict()` (text lengths, elements per block);
`Message` adds the per-message ones. Long tables are split over several sections or summarised,
never cut mid-row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

MAX_BLOCKS = 50
SECTION_TEXT = 3000
MAX_TEXT = 3000  # the notification text; Slack allows 40,000 but it is only the fallback
TABLE_SECTIONS = 6  # a table longer than this many sections is summarised


class MessageTooLarge(ValueError):
    pass


@dataclass
class Message:
    text: str  # the notification and accessibility fallback
    blocks: list[Block] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        if len(self.blocks) > MAX_BLOCKS:
            raise MessageTooLarge(f"{len(self.blocks)} blocks: Slack allows {MAX_BLOCKS} per message")
        return {"text": self.text[:MAX_TEXT], "blocks": [b.to_dict() for b in self.blocks]}


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=text[:150], emoji=True))


def section(markdown: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=markdown[:SECTION_TEXT]))


def fields(pairs: Sequence[tuple[str, str]]) -> SectionBlock:
    return SectionBlock(fields=[MarkdownTextObject(text=f"*{k}*\n{v}"[:2000]) for k, v in pairs[:10]])


def context(*parts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=p[:3000]) for p in parts[:10] if p])


def button(label: str, action_id: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=PlainTextObject(text=label[:75]), action_id=action_id, value=value[:2000], style=style)


def actions(*buttons: ButtonElement, block_id: str | None = None) -> ActionsBlock:
    return ActionsBlock(elements=list(buttons[:25]), block_id=block_id)


def table_sections(lines: Sequence[str], summary: str | None = None) -> list[SectionBlock]:
    """A monospaced table (header lines first) as code sections of at most SECTION_TEXT characters.

    Past TABLE_SECTIONS sections the remaining rows are dropped and `summary` (which should total
    them) is added instead, so the message stays within Slack's limits and says what it left out.
    """
    budget = SECTION_TEXT - 8  # the ``` fences and newlines
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        line = line[:budget]
        if chunks[-1] and size + len(line) + 1 > budget:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    shown = chunks[:TABLE_SECTIONS]
    blocks = [section("```\n" + "\n".join(c) + "\n```") for c in shown if c]
    dropped = sum(len(c) for c in chunks[TABLE_SECTIONS:])
    if dropped:
        blocks.append(section(summary or f"_{dropped} more rows not shown_"))
    return blocks


def error(message: str, usage: str | None = None) -> Message:
    text = f":x: {message}"
    if usage:
        text += f"\nUsage: `{usage}`"
    return Message(text=text, blocks=[section(text)])


def note(text: str) -> Message:
    return Message(text=text, blocks=[section(text)])
