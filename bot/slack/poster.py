"""The one Slack poster: drains `shepherd.outbox` (bot/slack/outbox.py) into Slack's Web API.

Rules
- Per channel: one call at a time, at most one per `per_channel_interval_s` (Slack allows about one
  message a second per channel), the channel's oldest due row first.
- Per lane (a channel's top level, or one thread): strict enqueue order. A row that cannot go yet (in
  backoff, or a reply whose parent has no ts yet) holds back the rest of its lane, not other lanes and
  not other channels.
- 429: the channel waits Retry-After seconds; the row is not charged an attempt (only a separate count,
  capped at `max_rate_limited`, so a row cannot be rate limited forever).
- 5xx, Slack's own transient errors, and connection errors or timeouts: exponential backoff with jitter
  (`base_backoff_s` doubling up to `max_backoff_s`), failed after `max_attempts` attempts.
- Any other Slack error (`channel_not_found`, `not_in_channel`, `is_archived`, `msg_too_long`,
  `invalid_blocks`, `no_text`, `message_not_found`, `cant_update_message`, `invalid_auth`,
  `account_inactive`, `invalid_arguments`, ...) is permanent: logged (method, key, channel and error
  code only: never the token or the payload) and the row marked failed at once. A reply whose parent,
  or an edit whose target, failed is failed too.

The client. Give the poster an `AsyncWebClient(token=..., retry_handlers=[])`: slack_sdk's default
handlers retry connection errors (and its optional rate-limit handler sleeps on 429) inside the call,
which would hide the answers the poster paces and counts by. The constructor refuses a client that has
retry handlers.

Delivery is at least once, not exactly once. Enqueue is idempotent on the dedupe key, so a message is
queued once however often a caller asks. But Slack has no idempotency key for chat.postMessage: if the
process dies (or the connection drops) after Slack accepted a post and before `mark_sent` is stored,
the row is still pending and the message is posted again. Such a duplicate is rare (the window is one
call per channel) and is preferred to a lost message. Run one poster per deployment: two posters on
one outbox would each send the same due rows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.outbox import Outbox, OutboxItem

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout",
                              "bad_gateway", "team_added_to_org"})
DEFAULT_RETRY_AFTER_S = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SlackPoster:
    def __init__(self, outbox: Outbox, client: AsyncWebClient, *, per_channel_interval_s: float = 1.0,
                 max_attempts: int = 8, base_backoff_s: float = 0.5, max_backoff_s: float = 60.0,
                 max_rate_limited: int = 50, batch: int = 500, now: Callable[[], datetime] = _utcnow,
                 rng: random.Random | None = None) -> None:
        if any(not getattr(h, "never_retries", False) for h in client.retry_handlers):  # counters may stay
            raise ValueError("construct the poster's AsyncWebClient with retry_handlers=[]: "
                             "the poster retries, paces and counts Slack's answers itself")
        self.outbox = outbox
        self.client = client
        self.interval = timedelta(seconds=per_channel_interval_s)
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_rate_limited = max_rate_limited
        self.batch = batch
        self.now = now
        self.rng = rng or random.Random()
        self._not_before: dict[str, datetime] = {}  # channel -> earliest time of its next call
        self._wake_at: datetime | None = None  # when a channel with work is free again
        self._methods: dict[str, Callable[..., Awaitable[Any]]] = {
            "chat.postMessage": client.chat_postMessage,
            "chat.update": client.chat_update,
            "chat.postEphemeral": client.chat_postEphemeral,
            "files_upload_v2": self._upload,
        }

    async def _upload(self, *, channel: str, content_b64: str, filename: str, title: str,
                      thread_ts: str | None = None) -> Any:
        """files_upload_v2 rows: the three calls of files_upload_v2 (upload URL, the bytes, complete)."""
        return await self.client.files_upload_v2(channel=channel, thread_ts=thread_ts, filename=filename,
                                                 title=title, content=base64.b64decode(content_b64))

    async def run(self, stop: asyncio.Event, poll_s: float = 0.2) -> None:
        """Deliver until `stop` is set; the calls in flight when it is set are finished and recorded."""
        while not stop.is_set():
            wait = poll_s
            try:
                await self.run_once()
            except Exception:  # Postgres away, say: keep the loop alive and try again
                log.exception("Slack poster pass failed; trying again")
                wait = max(poll_s, 1.0)
            else:
                if self._wake_at is not None:
                    wait = min(poll_s, (self._wake_at - self.now()).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(wait, 0.01))

    async def run_once(self) -> int:
        """One pass: at most one call per channel whose turn it is. Returns the number of calls made."""
        now = self.now()
        items = await asyncio.to_thread(self.outbox.due, self.batch, now)
        chosen: dict[str, OutboxItem] = {}
        seen: set[str] = set()
        for item in items:
            if item.blocked is not None:
                log.warning("Slack %s %s in %s not sent: %s; marked failed", item.method, item.key, item.channel,
                            item.blocked)
                await asyncio.to_thread(self.outbox.mark_failed, item.id, item.blocked, attempted=False)
                continue
            channel = item.channel or ""
            seen.add(channel)
            if channel in chosen or self._not_before.get(channel, now) > now:
                continue
            chosen[channel] = item
        await asyncio.gather(*(self._send(item) for item in chosen.values()))
        waits = [self._not_before[c] for c in seen if c in self._not_before]
        self._wake_at = min(waits) if waits else None
        return len(chosen)

    async def _send(self, item: OutboxItem) -> None:
        channel = item.channel or ""
        started = self.now()
        self._not_before[channel] = max(self._not_before.get(channel, started), started + self.interval)
        try:
            response = await self._methods[item.method](**item.call_args())
        except SlackApiError as err:
            await self._refused(item, err)
            return
        except SlackClientError as err:  # refused before any request was made: it will not change
            await self._fail(item, f"client error: {type(err).__name__}")
            return
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            await self._backoff(item, f"connection error: {type(err).__name__}")
            return
        except Exception as err:
            log.exception("Slack %s %s in %s: unexpected %s", item.method, item.key, channel, type(err).__name__)
            await self._backoff(item, f"unexpected: {type(err).__name__}")
            return
        result = {k: v for k, v in dict(response.data).items() if k != "message"}
        await asyncio.to_thread(self.outbox.mark_sent, item.id, result)

    async def _refused(self, item: OutboxItem, err: SlackApiError) -> None:
        status, error, retry_after = _answer(err)
        if status == 429 or error == "ratelimited":
            await self._rate_limited(item, retry_after)
        elif status >= 500 or status == 408 or error in TRANSIENT_ERRORS:
            await self._backoff(item, f"HTTP {status}: {error}")
        else:
            await self._fail(item, f"HTTP {status}: {error}")

    async def _rate_limited(self, item: OutboxItem, retry_after: float) -> None:
        if item.rate_limited + 1 >= self.max_rate_limited:
            await self._fail(item, f"rate limited {item.rate_limited + 1} times", attempted=False)
            return
        until = self.now() + timedelta(seconds=retry_after)
        channel = item.channel or ""
        self._not_before[channel] = max(self._not_before.get(channel, until), until)
        log.info("Slack rate limited %s in %s: waiting %.1f s", item.method, channel, retry_after)
        await asyncio.to_thread(self.outbox.retry_later, item.id, until, "ratelimited", rate_limited=True)

    async def _backoff(self, item: OutboxItem, error: str) -> None:
        attempts = item.attempts + 1
        if attempts >= self.max_attempts:
            await self._fail(item, f"{error} (after {attempts} attempts)")
            return
        delay = min(self.max_backoff_s, self.base_backoff_s * 2 ** (attempts - 1))
        delay = delay / 2 + self.rng.uniform(0, delay / 2)
        log.info("Slack %s %s in %s failed (%s): attempt %d, again in %.2f s", item.method, item.key,
                 item.channel, error, attempts, delay)
        await asyncio.to_thread(self.outbox.retry_later, item.id, self.now() + timedelta(seconds=delay), error)

    async def _fail(self, item: OutboxItem, error: str, *, attempted: bool = True) -> None:
        log.warning("Slack %s %s in %s failed for good: %s; marked failed", item.method, item.key, item.channel,
                    error)
        await asyncio.to_thread(self.outbox.mark_failed, item.id, error, attempted=attempted)


def _answer(err: SlackApiError) -> tuple[int, str, float]:
    """(HTTP status, Slack's error code, Retry-After seconds) of a refused call."""
    response: Any = err.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None) or 0
    error = "unknown_error"
    with contextlib.suppress(Exception):
        error = str(response.get("error") or error)
    headers = getattr(response, "headers", None) or {}
    retry_after = DEFAULT_RETRY_AFTER_S
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            with contextlib.suppress(ValueError, TypeError):
                retry_after = max(0.0, float(value))
    return int(status), error, retry_after
