"""The Email Servers API client: the shared HTTP client with Okta's error objects."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import httpx

from promote.errors import TenantError
from promote.http import HttpClient, scrub

__all__ = []


_API = "/api/v1/email-servers"

_EXCERPT_CHARS = 300


class _OktaHttp(HttpClient):
    """The shared client with Okta's error objects: ``errorCode: errorSummary (errorId)``."""

    def __init__(self, base_url: str, *, hidden: Callable[[], Collection[str]], **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self._hidden = hidden

    def error(self, method: str, path: str, response: httpx.Response) -> TenantError:
        """Okta's error object as one line plus causes; other bodies as status and excerpt."""
        message = _okta_message(response)
        excerpt = None
        if message is None:
            message = response.reason_phrase or "unexpected response"
            excerpt = self._hide(response.text)[:_EXCERPT_CHARS] if response.text else None
        return TenantError(
            self._hide(message) + _HINTS.get(response.status_code, ""),
            env=self.env,
            method=method,
            path=path,
            status=response.status_code,
            body=excerpt,
        )

    def _hide(self, text: str) -> str:
        text = scrub(text)
        for value in self._hidden():
            if value:
                text = text.replace(value, "********")
        return text


def _okta_message(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("errorCode"), str):
        return None
    text = f"{body['errorCode']}: {body.get('errorSummary') or 'no summary'}"
    if body.get("errorId"):
        text += f" ({body['errorId']})"
    causes = [
        str(cause.get("errorSummary"))
        for cause in body.get("errorCauses") or []
        if isinstance(cause, dict) and cause.get("errorSummary")
    ]
    if causes:
        text += "; causes: " + "; ".join(causes)
    return text


_HINTS = {
    400: " (Okta refused the email server settings: fix the fields named in"
    " config/external.email.json"
    " or the environment's values)",
    401: " (the token was refused: check tenant.token, and tenant.token_type: ssws for an API"
    " token, bearer for an OAuth access token)",
    403: " (the token needs the okta.emailServers.manage scope, or an admin's API token)",
    404: " (the email server is gone: run plan again)",
    429: " (Okta's rate limit: try again after the reset)",
}
