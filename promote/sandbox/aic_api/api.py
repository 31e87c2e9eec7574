"""One environment's AIC API (:class:`AicApi`): the routes of every API family."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promote.sandbox.aic_api.common import (
    _API_HOLDER,
    _META_SCHEMA,
    Handler,
    _refuse_api_version,
    _status,
)
from promote.sandbox.aic_api.config import ConfigAndEmail
from promote.sandbox.aic_api.esvs import Esvs
from promote.sandbox.aic_api.promotion import Promotions
from promote.sandbox.aic_api.restart import Restarts
from promote.sandbox.routes import SandboxRequest, SandboxResponse, match
from promote.tenants.local import LocalTenant

__all__ = ["AicApi"]


class AicApi(Esvs, Restarts, Promotions, ConfigAndEmail):
    """One environment's AIC API over ``tenant``; ``lower`` makes it promotable from there."""

    def __init__(
        self, tenant: LocalTenant, *, lower: LocalTenant | None = None, stale_polls: int = 0
    ) -> None:
        self.tenant = tenant
        self.lower = lower
        self.stale_polls = stale_polls
        """After a promotion or rollback starts, this many status polls still answer the
        status from before the start (``READY`` after the lock or the last run) and the last
        report stays the old one, as a real AIC does; the run happens at the next poll."""
        self._pending: Callable[[], None] | None = None
        self._stale_left = 0
        self._mutex = threading.RLock()
        self._meta = sqlite3.connect(
            Path(tenant.state_dir) / "aic-sandbox.sqlite3",
            check_same_thread=False,
            isolation_level=None,
        )
        self._meta.execute("PRAGMA journal_mode = WAL")
        self._meta.execute("PRAGMA synchronous = NORMAL")  # descriptions only: no secrets here
        self._meta.execute(_META_SCHEMA)
        self._holder: str | None = None
        self._promotion_id: str | None = None
        self._status: dict[str, Any] = _status("UNLOCKED", "Environment unlocked")
        held = tenant.lock_state()
        if (
            lower is not None
            and held.holder is not None
            and held.holder.startswith(_API_HOLDER)
            and lower.lock_state().holder == held.holder
        ):
            # This API's lock on both stores, taken before the sandbox stopped: still
            # releasable by its promotion id (a lock taken by the stage above is not ours).
            self._holder = held.holder
            self._promotion_id = tenant.lock(held.holder)  # reentrant: the lock's own id
            self._status = _status("READY", "Environment ready for promotion", self._promotion_id)
        self._running_polls = 0
        self._reports: dict[str, dict[str, Any]] = {}
        self._last_report: dict[str, Any] | None = None
        self._routes: list[tuple[str, str, Handler]] = [
            ("GET", "/environment/variables", self._list_variables),
            ("GET", "/environment/variables/{id}", self._get_variable),
            ("PUT", "/environment/variables/{id}", self._put_variable),
            ("POST", "/environment/variables/{id}", self._describe_variable),
            ("DELETE", "/environment/variables/{id}", self._delete_variable),
            ("GET", "/environment/secrets", self._list_secrets),
            ("GET", "/environment/secrets/{id}", self._get_secret),
            ("PUT", "/environment/secrets/{id}", self._put_secret),
            ("POST", "/environment/secrets/{id}", self._describe_secret),
            ("DELETE", "/environment/secrets/{id}", self._delete_secret),
            ("GET", "/environment/secrets/{id}/versions", self._list_versions),
            ("POST", "/environment/secrets/{id}/versions", self._create_version),
            ("GET", "/environment/count", self._count),
            ("GET", "/environment/startup", self._restart_status),
            ("POST", "/environment/startup", self._restart),
            ("POST", "/environment/promotion/lock", self._lock),
            ("GET", "/environment/promotion/lock/state", self._lock_state),
            ("DELETE", "/environment/promotion/lock/{id}", self._unlock),
            ("GET", "/environment/promotion/promote", self._promotion_status),
            ("POST", "/environment/promotion/promote", self._promote),
            ("POST", "/environment/promotion/rollback", self._rollback),
            ("GET", "/environment/promotion/report", self._report),
            ("GET", "/environment/promotion/report/{id}", self._report_by_id),
            ("GET", "/environment/promotion/reports", self._report_list),
            ("GET", "/openidm/config", self._config_list),
            ("GET", "/openidm/config/{id+}", self._config_get),
            ("PUT", "/openidm/config/{id+}", self._config_put),
            ("DELETE", "/openidm/config/{id+}", self._config_delete),
            ("POST", "/openidm/external/email", self._send_email),
        ]

    def handle(self, request: SandboxRequest) -> SandboxResponse | None:
        """Route ``request``; ``None`` when no route matches.

        ``Accept-API-Version`` is checked per endpoint family first (reference §1.5, §3.2,
        §4): a wrong or (where the platform requires it) missing header is a 400.
        """
        path = request.path.rstrip("/") or "/"
        refused = _refuse_api_version(path, request.headers.get("accept-api-version"))
        if refused is not None:
            return refused
        for method, pattern, handler in self._routes:
            if method != request.method:
                continue
            params = match(pattern, path)
            if params is not None:
                with self._mutex:
                    return handler(request, params)
        return None

    def close(self) -> None:
        """Close the metadata store and the tenants."""
        self._meta.close()
        self.tenant.close()
        if self.lower is not None:
            self.lower.close()
