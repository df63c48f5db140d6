"""The "Plan a backfill" modal behind the Home tab's button: the form of `/backfill plan`.

Fields follow Slack's form conventions (a label, a hint, optional fields marked so): customers (text, a
name, a comma list or `all`), from and to (date pickers, empty for the default range), window (text,
`auto` or days like `5d`), parallelism (a number input) and the channel the plan is posted in. A
submission is checked as the slash command is, with the same parsers and the customer registry, before
the ack: every bad value is answered on its own field (`response_action: errors`) and nothing starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from slack_sdk.models.blocks import (
    ConversationFilter,
    ConversationSelectElement,
    DatePickerElement,
    InputBlock,
    NumberInputElement,
    PlainTextInputElement,
)
from slack_sdk.models.views import View

from bot.errors import ShepherdError
from bot.slack.deps import SlackDeps
from commands import verbs as v
from commands.values import parse_count, parse_date, parse_names, parse_window

CALLBACK = "backfill.plan"
FIELDS = ("customers", "from", "to", "window", "parallel", "channel")


@dataclass(frozen=True)
class PlanForm:
    command: v.BackfillPlan
    channel: str
    text: str  # the same request as a slash command, for the audit log


def plan_view(deps: SlackDeps, channel: str | None) -> dict[str, Any]:
    backfill = deps.config.backfill
    days = deps.config.default_range.days
    blocks = [
        InputBlock(block_id="customers", label="Customers", hint="A name, a comma list like hilton,marriott, or all",
                   element=PlainTextInputElement(action_id="value", placeholder="hilton, marriott", max_length=2000)),
        InputBlock(block_id="from", label="From", optional=True, element=DatePickerElement(action_id="value"),
                   hint=f"Empty: the default range (the last {days} days)"),
        InputBlock(block_id="to", label="To", optional=True, hint="Empty: yesterday, or the default range's end",
                   element=DatePickerElement(action_id="value")),
        InputBlock(block_id="window", label="Window", hint="auto, or a number of days like 5d",
                   element=PlainTextInputElement(action_id="value", initial_value="auto", max_length=10)),
        InputBlock(block_id="parallel", label="Parallelism", optional=True,
                   hint=f"Windows at once, 1 to {backfill.max_parallel} (empty: {backfill.default_parallel})",
                   element=NumberInputElement(action_id="value", is_decimal_allowed=False, min_value=1,
                                              max_value=backfill.max_parallel)),
        InputBlock(block_id="channel", label="Post the plan in", hint="Its Run button and progress thread go there",
                   element=ConversationSelectElement(action_id="value", initial_conversation=channel,
                                                     filter=ConversationFilter(include=["public", "private"],
                                                                               exclude_bot_users=True))),
    ]
    return View(type="modal", callback_id=CALLBACK, title="Plan a backfill", submit="Plan", close="Cancel",
                blocks=blocks).to_dict()


def _value(view: dict[str, Any], block: str) -> str:
    found = ((view.get("state") or {}).get("values") or {}).get(block, {}).get("value") or {}
    raw = found.get("value") or found.get("selected_date") or found.get("selected_conversation") or ""
    return str(raw).strip()


def read_plan(deps: SlackDeps, view: dict[str, Any], today: date) -> PlanForm | dict[str, str]:
    """The submitted form as a `/backfill plan` command, or Slack's `errors` (block_id -> what is wrong)."""
    errors: dict[str, str] = {}
    customers: tuple[str, ...] | None = None
    try:
        customers = parse_names(_value(view, "customers").replace(" ", ""), "customer")
        deps.planning.registry.resolve(customers)
    except ValueError as err:
        errors["customers"] = str(err) if _value(view, "customers") else "Name the customers, or all"
    except ShepherdError as err:
        errors["customers"] = err.message
    dates: dict[str, date | None] = {}
    for block, option in (("from", "--from"), ("to", "--to")):
        raw = _value(view, block)
        try:
            dates[block] = parse_date(raw, option) if raw else None
        except ValueError as err:
            errors[block] = str(err)
    start, end = dates.get("from"), dates.get("to")
    if start and end and start > end:
        errors["to"] = f"{end} is before the start, {start}"
    elif "from" not in errors and "to" not in errors:
        try:
            deps.planning.range_for(start, end, today)
        except ShepherdError as err:
            errors["to" if end else "from"] = err.message
    window: int | None = None
    try:
        window = parse_window(_value(view, "window") or "auto")
    except ValueError as err:
        errors["window"] = str(err)
    parallel: int | None = None
    if raw := _value(view, "parallel"):
        try:
            parallel = parse_count(raw, "Parallelism", minimum=1, maximum=deps.config.backfill.max_parallel)
        except ValueError as err:
            errors["parallel"] = str(err)
    channel = _value(view, "channel")
    allowed = deps.config.access.allowed_channels
    if not channel:
        errors["channel"] = "Choose the channel the plan is posted in"
    elif allowed and channel not in allowed:
        errors["channel"] = "Shepherd does not take commands in that channel; choose " + ", ".join(
            f"<#{c}>" if not c.startswith("#") else c for c in allowed)
    if errors:
        return {k: v[:150] for k, v in errors.items()}  # Slack shows at most a short line under a field
    args = v.BackfillArgs(customers=customers, start=start, end=end, window_days=window, parallel=parallel)
    words = ["plan", ",".join(customers) if customers else "all", *([f"--from {start}"] if start else []),
             *([f"--to {end}"] if end else []), f"--window {f'{window}d' if window else 'auto'}",
             *([f"--parallel {parallel}"] if parallel else [])]
    text = " ".join(words)
    return PlanForm(v.BackfillPlan(args=args), channel, f"/backfill {text}")
