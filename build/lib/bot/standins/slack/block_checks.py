"""Block Kit checks the Slack stand-in applies to every message and view, as Slack's servers do.

Slack answers `invalid_blocks` with messages like
`[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]`; these checks word
their findings the same way. Each block is checked with slack_sdk's own models (`validate_json`),
plus the limits those models leave out (the number of blocks, button texts and values, ids).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 40_000
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ID_LENGTH = 255


def decode_blocks(raw: Any) -> list[dict[str, Any]] | None:
    """Blocks as sent: a JSON array, or a string holding one (form bodies). None if they are neither."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, list) or not all(isinstance(b, dict) for b in raw):
        return None
    return raw


def check_blocks(blocks: list[dict[str, Any]], *, limit: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Slack's complaints about `blocks`; empty when Slack would accept them."""
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        parsed = Block.parse(block)
        if parsed is None:
            problems.append(f"[ERROR] unsupported type `{block.get('type')}` [json-pointer:{where}/type]")
            continue
        try:
            parsed.validate_json()
        except SlackObjectFormationError as err:
            problems.append(f"[ERROR] {err} [json-pointer:{where}]")
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > ID_LENGTH:
                problems.append(f"[ERROR] must be less than {ID_LENGTH + 1} characters [json-pointer:{where}/block_id]")
            if block_id in block_ids:
                problems.append(f"[ERROR] duplicate block_id `{block_id}` [json-pointer:{where}/block_id]")
            block_ids.add(str(block_id))
        problems.extend(_check_elements(block, where))
    return problems


def _check_elements(block: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    elements = block.get("elements") if block.get("type") == "actions" else None
    pointer = f"{where}/elements"
    if elements is None and isinstance(block.get("accessory"), dict):
        elements, pointer = [block["accessory"]], f"{where}/accessory"
    action_ids: set[str] = set()
    for j, element in enumerate(elements or []):
        at = pointer if pointer.endswith("accessory") else f"{pointer}/{j}"
        if not isinstance(element, dict):
            problems.append(f"[ERROR] must be an object [json-pointer:{at}]")
            continue
        action_id = element.get("action_id")
        if action_id is not None:
            if action_id in action_ids:
                problems.append(f"[ERROR] duplicate action_id `{action_id}` [json-pointer:{at}/action_id]")
            action_ids.add(str(action_id))
        if element.get("type") != "button":
            continue
        text = element.get("text") or {}
        if text.get("type") != "plain_text":
            problems.append(f"[ERROR] must be plain_text [json-pointer:{at}/text/type]")
        if len(str(text.get("text", ""))) > BUTTON_TEXT:
            problems.append(f"[ERROR] must be less than {BUTTON_TEXT + 1} characters [json-pointer:{at}/text/text]")
        if len(str(element.get("value", ""))) > BUTTON_VALUE:
            problems.append(f"[ERROR] must be less than {BUTTON_VALUE + 1} characters [json-pointer:{at}/value]")
    return problems


def with_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks as Slack stores them: every block has a block_id and every button an action_id."""
    stored: list[dict[str, Any]] = []
    for block in blocks:
        block = json.loads(json.dumps(block))
        block.setdefault("block_id", secrets.token_urlsafe(4))
        for element in [*(block.get("elements") or []), block.get("accessory")]:
            if isinstance(element, dict) and element.get("type") == "button":
                element.setdefault("action_id", secrets.token_urlsafe(4))
        stored.append(block)
    return stored
