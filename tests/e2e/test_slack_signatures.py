"""Requests Slack did not sign, or signed long ago, are refused with 401 and run nothing."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from tests.e2e.conftest import SECRET, SlackEnv


def slash_body(text: str) -> bytes:
    return urlencode({"command": "/backfill", "text": text, "user_id": "U_ALICE", "user_name": "alice",
                      "channel_id": "C_OPS", "channel_name": "ops", "team_id": "T0SHEPHERD",
                      "response_url": "http://127.0.0.1:9/none", "trigger_id": "t.1"}).encode()


async def test_forged_and_stale_signatures_are_refused(slack: SlackEnv) -> None:
    body = slash_body("plan hilton")
    now = str(int(time.time()))
    forged = SignatureVerifier("not-the-secret").generate_signature(timestamp=now, body=body)
    stale_ts = str(int(time.time()) - 3600)
    stale = SignatureVerifier(SECRET).generate_signature(timestamp=stale_ts, body=body)
    before = (slack.jobs(), slack.audit(), len(slack.emu.messages("C_OPS")))
    cases = {
        "forged": {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": forged},
        "stale": {"X-Slack-Request-Timestamp": stale_ts, "X-Slack-Signature": stale},
        "unsigned": {},
    }
    for name, headers in cases.items():
        answer = await slack.emu.deliver_raw(body, {"Content-Type": "application/x-www-form-urlencoded", **headers})
        assert answer.status == 401, (name, answer)
    assert (slack.jobs(), slack.audit(), len(slack.emu.messages("C_OPS"))) == before
    # The same body signed properly is accepted (so the refusals above were for the signature alone).
    good = SignatureVerifier(SECRET).generate_signature(timestamp=now, body=body)
    answer = await slack.emu.deliver_raw(body, {"Content-Type": "application/x-www-form-urlencoded",
                                                "X-Slack-Request-Timestamp": now, "X-Slack-Signature": good})
    assert answer.status == 200
