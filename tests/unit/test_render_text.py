"""Block Kit messages rendered as console text."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    ImageBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)

from bot.standins.console.render_text import mrkdwn_text, plain, render_message
from bot.standins.slack.block_checks import with_ids
from bot.standins.slack.model import Message

NAMES = {"U0SHEPHERD": "shepherd", "U_ALICE": "alice", "C_OPS": "ops"}
TABLE = "customer   window  windows\nhilton         5d        4\nmarriott      10d        2"


def msg(blocks: list[dict[str, Any]], text: str = "fallback", **kwargs: Any) -> Message:
    return Message("C_OPS", "1700000000.000100", "U0SHEPHERD", text, with_ids(blocks), **kwargs)


def plan_message() -> Message:
    return msg([b.to_dict() for b in [
        HeaderBlock(text=PlainTextObject(text="Backfill plan b-1a2b3c")),
        SectionBlock(fields=[MarkdownTextObject(text=f"*{k}*\n{v}") for k, v in [
            ("Range", "2026-01-03 to 2026-01-22 (20 days)"), ("Windows", "4 for 1 customer(s)"),
            ("ETA", "7.5 h at parallel 2"), ("Sequential", "15 h")]]),
        SectionBlock(text=MarkdownTextObject(text=f"```\n{TABLE}\n```")),
        DividerBlock(),
        ContextBlock(elements=[MarkdownTextObject(text="plan `9f3e` · requested by <@U_ALICE>")]),
        ImageBlock(image_url="https://example.com/c.png", alt_text="windows per day"),
        ActionsBlock(elements=[ButtonElement(text="Run", action_id="backfill.run", value="b-1a2b3c", style="primary"),
                               ButtonElement(text="Dismiss", action_id="plan.dismiss", value="b-1a2b3c")]),
    ]], edits=1, reply_count=3, files=[{"id": "F1", "name": "chart.png", "title": "Throughput"}])


def test_a_plan_message_reads_well() -> None:
    lines = plain(render_message(plan_message(), NAMES)).splitlines()
    assert lines[0].startswith("shepherd · ") and lines[0].endswith("1700000000.000100 (edited)")
    assert lines[1] == "Backfill plan b-1a2b3c"
    # fields in two columns, labels then values, aligned
    assert lines[2].split() == ["Range", "Windows"] and lines[2].index("Windows") == lines[3].index("4 for 1")
    assert lines[3].startswith("2026-01-03 to 2026-01-22 (20 days)")
    assert lines[4].split() == ["ETA", "Sequential"] and lines[4].index("Sequential") == lines[2].index("Windows")
    assert "\n".join(lines[6:9]) == TABLE  # code blocks verbatim, fences dropped
    assert lines[9] == "─" * 40
    assert lines[10] == "  › plan 9f3e · requested by @alice"
    assert lines[11:] == ["[image: windows per day]", "[1 Run] [2 Dismiss]", "[file: chart.png - Throughput]",
                          "  ↳ 3 replies (open 1700000000.000100)"]


def test_styles_mark_headers_context_and_buttons() -> None:
    fragments = render_message(plan_message(), NAMES)
    styles = dict((text, style) for style, text in fragments)
    assert styles["Backfill plan b-1a2b3c"] == "class:header"
    assert styles["Range"] == "class:bold"
    assert styles["[1 Run]"] == "class:button-primary" and styles["[2 Dismiss]"] == "class:button"
    assert styles["  › plan 9f3e · requested by @alice"] == "class:context"


def test_buttons_are_numbered_as_message_buttons_counts_them() -> None:
    m = msg([
        {"type": "section", "text": {"type": "mrkdwn", "text": "Cancel *b-1*?"},
         "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Yes"}, "action_id": "yes"}},
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "No"}, "action_id": "no"},
            StaticSelectElement(placeholder="Pick a window", action_id="pick",
                                options=[{"text": {"type": "plain_text", "text": "5d"}, "value": "5"}]).to_dict()]},
    ], ephemeral_to="U_ALICE")
    text = plain(render_message(m, NAMES))
    assert "(only visible to you)" in text
    assert "Cancel b-1?  [1 Yes]" in text and "[2 No] [static_select: Pick a window]" in text
    assert [b[:2] for b in m.buttons()] == [(1, "Yes"), (2, "No")]


def test_mrkdwn_becomes_plain_text() -> None:
    assert mrkdwn_text("*bold* _it_ ~gone~ `b-123456` snake_case_name 2*3*4", NAMES) == \
        "bold it gone b-123456 snake_case_name 2*3*4"
    assert mrkdwn_text("<@U_ALICE> in <#C_OPS|ops> and <#C_OPS>, <!here>", NAMES) == "@alice in #ops and #ops, @here"
    assert mrkdwn_text("<https://x.example/p|the plan> <https://x.example>", NAMES) == \
        "the plan (https://x.example/p) https://x.example"
    assert mrkdwn_text("at <!date^1767225600^{date_short_pretty} {time}|2026-01-01 00:00 UTC>") == \
        "at 2026-01-01 00:00 UTC"
    assert mrkdwn_text("a &lt;b&gt; &amp; c <!subteam^S1|@oncall>") == "a <b> & c @oncall"
    assert mrkdwn_text("```\n*keep* _this_ <@U_ALICE>\n```") == "*keep* _this_ <@U_ALICE>"


def test_text_only_messages_and_unknown_blocks() -> None:
    m = Message("C_OPS", "1700000000.000200", "U_ALICE", ":x: unknown customer *nobody*\nUsage: `/backfill plan`")
    assert plain(render_message(m, NAMES, header=False)) == ":x: unknown customer nobody\nUsage: /backfill plan\n"
    odd = msg([{"type": "video", "title": {"type": "plain_text", "text": "t"}, "video_url": "https://v",
                "thumbnail_url": "https://t", "alt_text": "a"},
               {"type": "input", "label": {"type": "plain_text", "text": "Body"},
                "element": {"type": "plain_text_input", "action_id": "b"}},
               {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
                   {"type": "text", "text": "rich "}, {"type": "user", "user_id": "U_ALICE"}]}]}])
    assert plain(render_message(odd, NAMES, header=False)).splitlines() == ["[video]", "Body: [plain_text_input]",
                                                                          "rich @alice"]
