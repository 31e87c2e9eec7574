"""One HTTP client for every tenant that speaks REST (AIC, Okta): retries, 429, error mapping.

The only module besides the tenant clients that imports httpx. What it guarantees:

- ``Accept-API-Version`` is set per request (``api_version=``), never globally.
- Transient failures (connection errors, timeouts, 502/503/504) are retried with jittered
  exponential backoff, but only for idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS).
- 429 is honoured for every method: the client waits ``Retry-After`` (seconds or an HTTP
  date), then sends again; a POST answered 429 was not processed, so resending is safe.
- 401 asks the :class:`Auth` for a fresh token once, then sends again.
- Every failure becomes one :class:`promote.errors.TenantError` carrying the tenant's base
  URL (``scheme://host:port/prefix``), method, path, status and a body excerpt with tokens,
  passwords, client secrets and ``valueBase64`` scrubbed.

Sleep, clock and randomness come in as parameters so tests run instantly.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import httpx

from promote.errors import TenantError

__all__ = [
    "IDEMPOTENT_METHODS",
    "TRANSIENT_STATUSES",
    "Auth",
    "HttpClient",
    "RetryPolicy",
    "StaticAuth",
    "display_url",
    "scrub",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
TRANSIENT_STATUSES = frozenset({502, 503, 504})
_EXCERPT_CHARS = 300

_SECRET_KEYS = (
    "valueBase64|password|passwd|clientSecret|client_secret|secret|privateKey|private_key"
    "|access_token|refresh_token|id_token|assertion|token|apiKey|api_key|d|p|q|dp|dq|qi"
)
_SCRUBBERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|ssws|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 ***"),
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "***"),
    (re.compile(rf'"({_SECRET_KEYS})"\s*:\s*"(?:[^"\\]|\\.)*"'), r'"\1": "***"'),
    (re.compile(rf"(?i)\b({_SECRET_KEYS})=[^&\s\"']+"), r"\1=***"),
)


def scrub(text: str) -> str:
    """``text`` with bearer/SSWS tokens, JWTs and secret-named JSON or form fields masked."""
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


class Auth(Protocol):
    """Supplies the ``Authorization`` header; ``invalidate`` drops a token the server refused."""

    def authorization(self) -> str:
        """The header value, e.g. ``Bearer <token>``; may fetch or refresh a token."""
        ...

    def invalidate(self) -> None:
        """Forget the current token (the server answered 401)."""
        ...


class StaticAuth:
    """A fixed header value (an access token from the environment, an Okta SSWS token)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def authorization(self) -> str:
        """The fixed header value."""
        return self._value

    def invalidate(self) -> None:
        """Nothing to refresh: a refused static token stays refused."""

    def __repr__(self) -> str:
        return "StaticAuth(***)"


class RetryPolicy:
    """How often and how long to retry. Backoff: ``base * 2**attempt`` jittered to 50-100%."""

    def __init__(
        self,
        *,
        attempts: int = 5,
        base: float = 0.5,
        cap: float = 30.0,
        max_retry_after: float = 120.0,
        rate_limit_attempts: int = 10,
    ) -> None:
        self.attempts = attempts
        """Total tries of an idempotent request on transient failures (1 = no retry)."""
        self.base = base
        self.cap = cap
        self.max_retry_after = max_retry_after
        """Longest single wait honoured from ``Retry-After``; longer waits fail the request."""
        self.rate_limit_attempts = rate_limit_attempts
        """Total tries of any request answered 429."""


class HttpClient:
    """A base URL plus retries, 429 handling and error mapping. Thread-safe (one httpx pool)."""

    def __init__(
        self,
        base_url: str,
        *,
        env: str | None = None,
        auth: Auth | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 20,
        headers: Mapping[str, str] | None = None,
        on_response: Callable[[httpx.Response], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.display_url = display_url(self.base_url)
        """``scheme://host:port/prefix``: what every error of this client names."""
        self.env = env
        self._auth = auth
        self._retry = retry or RetryPolicy()
        self._on_response = on_response
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            limits=limits,
            headers=dict(headers or {}),
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        api_version: str | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (),
        authenticate: bool = True,
    ) -> httpx.Response:
        """Send one request with retries; return the response if 2xx or in ``ok``.

        Raises ``TenantError`` (method, path, status, scrubbed body excerpt) otherwise, and for
        connection errors once retries are spent.
        """
        method = method.upper()
        accepted = set(ok)
        idempotent = method in IDEMPOTENT_METHODS
        transient_tries = 0
        limited_tries = 0
        refreshed = False
        while True:
            try:
                response = self._send(
                    method, path, api_version, json_body, form, params, headers, authenticate
                )
            except httpx.TransportError as error:
                transient_tries += 1
                if idempotent and transient_tries < self._retry.attempts:
                    self._sleep(self._backoff(transient_tries))
                    continue
                raise TenantError(
                    f"{type(error).__name__}: {scrub(str(error)) or 'no response'}"
                    f" (after {transient_tries} attempt{'s' if transient_tries > 1 else ''});"
                    " check the tenant url and your network",
                    env=self.env,
                    method=method,
                    path=path,
                    url=self.display_url,
                ) from None
            if self._on_response is not None:
                self._on_response(response)
            status = response.status_code
            if 200 <= status < 300 or status in accepted:
                return response
            if status == 429:
                limited_tries += 1
                wait = self._retry_after(response)
                if limited_tries < self._retry.rate_limit_attempts and (
                    wait <= self._retry.max_retry_after
                ):
                    self._sleep(wait)
                    continue
            elif status == 401 and authenticate and not refreshed and self._auth is not None:
                refreshed = True
                self._auth.invalidate()
                continue
            elif status in TRANSIENT_STATUSES:
                transient_tries += 1
                if idempotent and transient_tries < self._retry.attempts:
                    self._sleep(self._backoff(transient_tries))
                    continue
            raise self.error(method, path, response)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """``request("GET", ...)`` returning the parsed JSON body (``None`` when empty)."""
        return self._json(self.request("GET", path, **kwargs), "GET", path)

    def json_of(self, response: httpx.Response) -> Any:
        """The response's parsed JSON (``None`` when empty); ``TenantError`` when not JSON."""
        return self._json(response, response.request.method, response.request.url.path)

    def error(self, method: str, path: str, response: httpx.Response) -> TenantError:
        """The ``TenantError`` for an unexpected response: message, status, scrubbed excerpt."""
        text = response.text
        message = _message_of(text) or response.reason_phrase or "unexpected response"
        hint = _HINTS.get(response.status_code, "")
        return TenantError(
            scrub(message) + hint,
            env=self.env,
            method=method,
            path=path,
            status=response.status_code,
            body=scrub(text)[:_EXCERPT_CHARS] if text else None,
            url=self.display_url,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise TenantError(
                "the response is not JSON",
                env=self.env,
                method=method,
                path=path,
                status=response.status_code,
                body=scrub(response.text)[:_EXCERPT_CHARS],
                url=self.display_url,
            ) from None

    def _send(
        self,
        method: str,
        path: str,
        api_version: str | None,
        json_body: Any,
        form: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        authenticate: bool,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if api_version is not None:
            sent["Accept-API-Version"] = api_version
        if authenticate and self._auth is not None:
            sent["Authorization"] = self._auth.authorization()
        content: bytes | None = None
        if json_body is not None:
            content = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        return self._client.request(
            method,
            path,
            content=content,
            data=dict(form) if form is not None else None,
            params=dict(params) if params is not None else None,
            headers=sent,
        )

    def _backoff(self, attempt: int) -> float:
        delay: float = min(self._retry.cap, self._retry.base * 2 ** (attempt - 1))
        return delay * (0.5 + self._rand() / 2)

    def _retry_after(self, response: httpx.Response) -> float:
        value = response.headers.get("Retry-After", "").strip()
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(value)
                except (TypeError, ValueError):
                    when = None
                if when is not None:
                    return max(0.0, when.timestamp() - self._clock())
        return self._backoff(1)


_HINTS = {
    401: " (the access token was refused: check it is current and for this tenant)",
    403: " (the token lacks the scope or role for this request)",
}


def display_url(base_url: str) -> str:
    """``base_url`` as ``scheme://host:port/prefix``, the port spelled out even when default."""
    url = httpx.URL(base_url)
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    host = f"[{url.host}]" if ":" in url.host else url.host
    netloc = f"{host}:{port}" if port else host
    return f"{url.scheme}://{netloc}{url.path.rstrip('/')}"


def _message_of(text: str) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if isinstance(body, dict):
        for key in ("message", "errorSummary", "error_description", "error", "reason"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return None
