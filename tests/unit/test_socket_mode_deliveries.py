"""A Socket Mode delivery is recognised again when Slack redelivers it: by what Slack keeps across attempts."""

from __future__ import annotations

import asyncio

from slack_sdk.socket_mode.request import SocketModeRequest

from bot.slack.socket_mode import Deliveries, delivery_key


def envelope(kind: str, payload: dict[str, object], envelope_id: str = "e-1", retry: int | None = None
             ) -> SocketModeRequest:
    return SocketModeRequest(kind, envelope_id, payload, retry_attempt=retry, retry_reason="timeout" if retry else None)


def test_keys_are_what_stays_the_same_across_attempts() -> None:
    command = {"command": "/purge", "trigger_id": "t.1"}
    assert delivery_key(envelope("slash_commands", command)) == delivery_key(
        envelope("slash_commands", command, "e-2", retry=1))
    assert delivery_key(envelope("events_api", {"event_id": "Ev1"})) != delivery_key(
        envelope("events_api", {"event_id": "Ev2"}))
    assert delivery_key(envelope("interactive", {}, "e-9")) == "envelope:e-9"  # nothing else to go by


async def test_a_repeat_gets_the_first_answer_and_old_answers_are_forgotten() -> None:
    seen = Deliveries(remember_s=0.05)
    first, answer = seen.claim("k")
    again, same = seen.claim("k")
    assert first and not again and same is answer and seen.repeats == 1
    await asyncio.sleep(0.1)
    assert seen.claim("k")[0]  # remembered for remember_s only
    seen.forget("k")
    assert seen.claim("k")[0]
    bounded = Deliveries(size=3)
    for key in "abcd":
        bounded.claim(key)
    assert bounded.claim("a")[0] and not bounded.claim("d")[0]
