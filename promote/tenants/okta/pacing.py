"""Okta's rate limits: requests paced by ``X-Rate-Limit-Remaining`` / ``X-Rate-Limit-Reset``,
a 429 waited out until the reset and sent again (:class:`RateLimited`)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from promote.tenants.base import JSON
from promote.tenants.okta.http import _OktaHttp

if TYPE_CHECKING:
    import httpx

__all__ = ["RateLimited"]


class RateLimited:
    """The request path of :class:`~promote.tenants.okta.tenant.OktaTenant`, which sets these
    attributes: the client, the clock and sleep, and how far to pace and wait."""

    _http: _OktaHttp
    _clock: Callable[[], float]
    _sleep: Callable[[float], None]
    _pace_below: int
    _max_wait: float
    _attempts: int
    _remaining: int | None
    _reset: float | None
    _servers: list[Any] | None

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: JSON = None,
        ok: Collection[int] = (),
    ) -> httpx.Response:
        """One request, paced by the rate-limit headers; a 429 waits for the reset. Anything
        but a GET forgets the server list read so far."""
        if method != "GET":
            self._servers = None
        for attempt in range(1, self._attempts + 1):
            self._pace()
            response = self._http.request(method, path, json_body=json_body, ok=(*ok, 429))
            if response.status_code != 429:
                return response
            wait = self._wait_for_reset(response, attempt)
            if attempt == self._attempts or wait > self._max_wait:
                raise self._http.error(method, path, response)
            self._sleep(wait)
            self._remaining = None
        raise AssertionError("unreachable")  # pragma: no cover

    def _pace(self) -> None:
        if self._remaining is None or self._reset is None:
            return
        if self._remaining > self._pace_below:
            return
        wait = self._reset - self._clock()
        if wait > 0:
            self._sleep(min(wait, self._max_wait))
        self._remaining = None

    def _note_rate_limit(self, response: httpx.Response) -> None:
        remaining = response.headers.get("X-Rate-Limit-Remaining")
        reset = response.headers.get("X-Rate-Limit-Reset")
        try:
            self._remaining = int(remaining) if remaining is not None else None
            self._reset = float(reset) if reset is not None else None
        except ValueError:
            self._remaining = self._reset = None

    def _wait_for_reset(self, response: httpx.Response, attempt: int) -> float:
        reset = response.headers.get("X-Rate-Limit-Reset")
        retry_after = response.headers.get("Retry-After")
        try:
            if reset is not None:
                return max(0.0, float(reset) - self._clock())
            if retry_after is not None:
                return max(0.0, float(retry_after))
        except ValueError:
            pass
        return float(2 ** (attempt - 1))

    def _json(self, response: httpx.Response) -> Any:
        return self._http.json_of(response)
