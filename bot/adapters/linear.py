"""Linear's GraphQL API over httpx: find an issue by its identifier, add a comment, find a comment.

Retries 429 and 5xx answers and dropped connections with exponential backoff (a 429's or 503's
`Retry-After` is honoured, up to a cap); turns GraphQL errors into Shepherd's errors with a message
fit for a person. The API key is a `SecretStr`: it goes into the Authorization header and nowhere
else — not into a log line, a message or an exception (httpx's own errors name the URL only).

Every document below validates against Linear's published schema (tests/integration/test_linear.py
sends each one through the local stand-in, which validates them with graphql-core).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from bot.errors import UpstreamError, UserInputError

log = logging.getLogger(__name__)

IDENTIFIER = re.compile(r"^[A-Z][A-Z0-9]{0,9}-\d{1,7}$")
RETRY_STATUS = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 60.0

ISSUE_QUERY = """
query ShepherdIssue($id: String!) {
  issue(id: $id) { id identifier title url }
}
"""
COMMENT_MUTATION = """
mutation ShepherdComment($input: CommentCreateInput!) {
  commentCreate(input: $input) { success comment { id url } }
}
"""
FIND_COMMENT_QUERY = """
query ShepherdFindComment($id: String!) {
  comment(id: $id) { id url issue { identifier } }
}
"""
DOCUMENTS = (ISSUE_QUERY, COMMENT_MUTATION, FIND_COMMENT_QUERY)  # every document Shepherd sends


@dataclass(frozen=True)
class LinearIssue:
    id: str
    identifier: str
    title: str
    url: str


@dataclass(frozen=True)
class LinearComment:
    id: str
    url: str


class LinearError(UpstreamError):
    """Linear answered with GraphQL errors that are not the person's doing."""

    def __init__(self, message: str, codes: tuple[str, ...] = (), *, not_found: bool = False) -> None:
        super().__init__(message)
        self.codes = codes
        self.not_found = not_found


def check_identifier(identifier: str) -> str:
    if not IDENTIFIER.match(identifier):
        raise UserInputError(f"{identifier[:40]!r} is not a Linear issue id (like CONVI-6259)")
    return identifier


class LinearClient:
    def __init__(self, api_url: str, api_key: SecretStr, *, transport: httpx.AsyncBaseTransport | None = None,
                 attempts: int = 4, base_delay_s: float = 0.5, max_delay_s: float = 8.0, timeout_s: float = 15.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.api_url = api_url
        self._key = api_key
        self.attempts = max(1, attempts)
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.sleep = sleep
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout_s)

    def __repr__(self) -> str:
        return f"LinearClient({self.api_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> LinearClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- the calls Shepherd makes --------------------------------------------------------

    async def issue(self, identifier: str) -> LinearIssue:
        check_identifier(identifier)
        try:
            data = await self.execute(ISSUE_QUERY, {"id": identifier}, "ShepherdIssue")
        except LinearError as err:
            if _not_found(err):
                raise UserInputError(f"issue {identifier} not found in Linear (check the id, and that the "
                                     "API key's workspace can see it)") from None
            raise
        found = data.get("issue")
        if not found:
            raise UserInputError(f"issue {identifier} not found in Linear")
        return LinearIssue(str(found["id"]), str(found["identifier"]), str(found.get("title") or ""),
                           str(found.get("url") or ""))

    async def comment(self, issue_id: str, body: str, *, comment_id: str | None = None) -> LinearComment:
        """Add `body` (Markdown) to the issue. With `comment_id` (a UUID v4), Linear creates the comment
        under that id, so a repeated call cannot create a second one."""
        payload: dict[str, Any] = {"issueId": issue_id, "body": body}
        if comment_id is not None:
            payload["id"] = comment_id
        data = await self.execute(COMMENT_MUTATION, {"input": payload}, "ShepherdComment")
        made = data.get("commentCreate") or {}
        comment = made.get("comment")
        if not made.get("success") or not comment:
            raise UpstreamError("Linear did not create the comment (commentCreate answered success: false)")
        return LinearComment(str(comment["id"]), str(comment["url"]))

    async def find_comment(self, comment_id: str) -> LinearComment | None:
        try:
            data = await self.execute(FIND_COMMENT_QUERY, {"id": comment_id}, "ShepherdFindComment")
        except LinearError as err:
            if _not_found(err):
                return None
            raise
        found = data.get("comment")
        return LinearComment(str(found["id"]), str(found["url"])) if found else None

    # ---- transport -----------------------------------------------------------------------

    async def execute(self, document: str, variables: dict[str, Any], operation: str) -> dict[str, Any]:
        """POST one GraphQL request; its `data`, or a ShepherdError that says what went wrong."""
        body = {"query": document, "variables": variables, "operationName": operation}
        headers = {"Authorization": self._key.get_secret_value(), "Content-Type": "application/json"}
        last = "no answer"
        for attempt in range(1, self.attempts + 1):
            wait: float | None = None
            try:
                answer = await self._http.post(self.api_url, json=body, headers=headers)
            except httpx.TransportError as err:
                last = f"{type(err).__name__}: {_scrub(str(err), self._key)}"[:200] or type(err).__name__
            else:
                if answer.status_code in RETRY_STATUS:
                    last = f"HTTP {answer.status_code}"
                    wait = _retry_after(answer.headers.get("Retry-After"))
                else:
                    return self._data(answer, operation)
            if attempt == self.attempts:
                break
            delay = wait if wait is not None else min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
            log.info("Linear %s attempt %d/%d failed (%s); retrying in %.1f s", operation, attempt, self.attempts,
                     last, delay)
            await self.sleep(delay)
        raise UpstreamError(f"Linear is unreachable ({last} after {self.attempts} attempts); nothing was "
                            "changed there, try again later")

    def _data(self, answer: httpx.Response, operation: str) -> dict[str, Any]:
        try:
            doc = answer.json()
        except ValueError:
            doc = None
        errors = doc.get("errors") if isinstance(doc, dict) else None
        codes = tuple(str((e.get("extensions") or {}).get("code", "")) for e in errors or [] if isinstance(e, dict))
        if answer.status_code in (401, 403) or "AUTHENTICATION_ERROR" in codes or "FORBIDDEN" in codes:
            raise UpstreamError("Linear refused Shepherd's API key (check SHEPHERD_LINEAR_API_KEY and its access)")
        if errors:
            messages = "; ".join(_error_message(e) for e in errors[:3])
            if "GRAPHQL_VALIDATION_FAILED" in codes or "GRAPHQL_PARSE_FAILED" in codes:
                log.error("Linear rejected the %s document: %s", operation, messages)
                raise LinearError(f"Linear rejected Shepherd's {operation} request as invalid: {messages}", codes)
            raise LinearError(f"Linear answered {operation} with an error: {messages}", codes,
                              not_found=any(_is_not_found(e) for e in errors))
        if answer.status_code != 200 or not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
            raise UpstreamError(f"Linear answered {operation} with HTTP {answer.status_code} and no data")
        data: dict[str, Any] = doc["data"]
        return data


def _error_message(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)[:200]
    ext = error.get("extensions") or {}
    return str(ext.get("userPresentableMessage") or error.get("message") or "unknown error")[:200]


def _not_found(err: LinearError) -> bool:
    return err.not_found


def _is_not_found(error: Any) -> bool:
    if not isinstance(error, dict):
        return False
    ext = error.get("extensions") or {}
    text = f"{error.get('message', '')} {ext.get('userPresentableMessage', '')}".lower()
    return ext.get("statusCode") == 404 or "not found" in text or "could not find" in text


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_S))


def _scrub(text: str, key: SecretStr) -> str:
    secret = key.get_secret_value()
    return text.replace(secret, "***") if secret else text
