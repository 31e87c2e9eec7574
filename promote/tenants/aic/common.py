"""What the parts of the AIC tenant share: the attributes every part reads
(:class:`AicParts`), the requests with bounded concurrency and paging, and small helpers."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from promote.errors import TenantError
from promote.http import TRANSIENT_STATUSES as TRANSIENT
from promote.http import Auth, HttpClient
from promote.state.fingerprints import Fingerprints

if TYPE_CHECKING:
    pass
from promote.tenants.aic.records import ConfigRecord, LockRecords

__all__ = ["AicParts", "MANAGED_MARKER"]


MANAGED_MARKER = "promote:"
_ESV_API = "protocol=1.0,resource=1.0"
"""Prefix of the description of every ESV promote wrote; only those are ever deleted."""

_IDM_API = "resource=1.0"


def _config_path(object_id: str) -> str:
    return f"/openidm/config/{object_id}"


def _encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _decode(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return base64.b64decode(value).decode("utf-8", errors="replace")


def _is_managed(item: Mapping[str, Any]) -> bool:
    return str(item.get("description") or "").startswith(MANAGED_MARKER)


def _transient(error: TenantError) -> bool:
    """A failure status seen while polling that :class:`HttpClient` did not retry (a 500).

    Connection errors, timeouts, 502/503/504 and 429 were already retried by the client;
    retrying them again here would multiply its attempts (an unreachable tenant would take
    minutes to fail).
    """
    return error.status is not None and error.status >= 500 and error.status not in TRANSIENT


class AicParts:
    """The state of one AIC tenant that its parts (config, ESVs, restart, promotion) share;
    :class:`~promote.tenants.aic.tenant.AicTenant` sets it."""

    env: str
    url: str
    mutable: bool
    lower: str | None
    concurrency: int
    managed_config_ids: frozenset[str]
    _http: HttpClient
    _auth: Auth
    _sleep: Callable[[float], None]
    _clock: Callable[[], float]
    _fingerprints: Fingerprints
    _locks: LockRecords
    _written: ConfigRecord
    _poll: float
    _promotion_timeout: float
    _budget: int
    _poll_failures: int
    _awaiting_restart: bool
    _variables: dict[str, dict[str, Any]] | None
    _secrets: dict[str, dict[str, Any]] | None

    def _map(self, call: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``call`` over ``items`` with at most ``concurrency`` in flight, results in order.

        On Ctrl-C (or any escaping error) requests not yet sent are cancelled; those in
        flight finish, so the tenant is never left with a half-sent request.
        """
        if self.concurrency == 1 or len(items) <= 1:
            return [call(item) for item in items]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(items)))
        try:
            futures = [pool.submit(call, item) for item in items]
            return [future.result() for future in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)

    def _list(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cookie: str | None = None
        while True:
            params = {"_pagedResultsCookie": cookie} if cookie else None
            body = self._http.get_json(path, api_version=_ESV_API, params=params)
            if not isinstance(body, dict) or not isinstance(body.get("result"), list):
                raise TenantError(
                    "expected a list envelope with 'result'",
                    env=self.env,
                    method="GET",
                    path=path,
                    url=self._http.display_url,
                )
            items.extend(x for x in body["result"] if isinstance(x, dict) and "_id" in x)
            next_cookie = body.get("pagedResultsCookie")
            if not next_cookie or next_cookie == cookie:
                return items
            cookie = str(next_cookie)
