"""The bot token, checked once when Shepherd starts; requests are then authorized from that answer.

Bolt's single-workspace mode calls `auth.test` before the first listener runs (and again until one
succeeds), so with Slack's Web API unreachable every slash command was answered HTTP 500. Here the
token is checked at start: Slack refusing it is a clear error then; Slack not answering is a warning,
and the check is repeated in the background until Slack answers. Every request is authorized from
the cached answer (Bolt's `authorize` hook): an ack never waits on the Web API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError

log = logging.getLogger(__name__)

REFUSED = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                     "no_permission", "not_allowed_token_type", "missing_scope", "ekm_access_denied"})
RECHECK_S = 30.0


class TokenCheck:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.result: AuthorizeResult | None = None  # Slack's answer to auth.test, once it gave one
        self._recheck: asyncio.Task[None] | None = None

    async def check(self) -> bool:
        """auth.test once: True if Slack confirmed the token, False if Slack did not answer (a background
        task keeps asking). ConfigError if Slack refused the token."""
        try:
            answer = await self.client.auth_test()
        except SlackApiError as err:
            error = str(err.response.get("error") or "unknown_error")
            if error in REFUSED:
                raise ConfigError("environment", [
                    f"SHEPHERD_SLACK_BOT_TOKEN was refused by Slack's auth.test ({error}): use the app's bot"
                    " token (xoxb-...) from its OAuth & Permissions page"]) from None
            return self._unanswered(f"auth.test answered {error}")
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            return self._unanswered(f"{type(err).__name__}")
        self.result = AuthorizeResult.from_auth_test_response(bot_token=self.client.token,
                                                              auth_test_response=answer)
        return True

    def _unanswered(self, why: str) -> bool:
        log.warning("Slack's Web API did not confirm the bot token at start (%s): starting anyway; commands are"
                    " acked and replies wait in the outbox until Slack answers", why)
        if self._recheck is None or self._recheck.done():
            self._recheck = asyncio.create_task(self._keep_checking())
        return False

    async def _keep_checking(self) -> None:
        while self.result is None:
            await asyncio.sleep(RECHECK_S)
            try:
                answer = await self.client.auth_test()
            except SlackApiError as err:
                error = str(err.response.get("error") or "unknown_error")
                if error in REFUSED:
                    log.error("Slack refused SHEPHERD_SLACK_BOT_TOKEN (%s): replies will not be delivered", error)
                    return
                continue
            except (aiohttp.ClientError, OSError, TimeoutError):
                continue
            self.result = AuthorizeResult.from_auth_test_response(bot_token=self.client.token,
                                                                  auth_test_response=answer)
            log.warning("Slack's Web API confirmed the bot token")

    async def authorize(self, enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        """Bolt's authorize hook: no Web API call, ever."""
        if self.result is not None:
            return self.result
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
                               bot_token=self.client.token)

    async def close(self) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recheck
