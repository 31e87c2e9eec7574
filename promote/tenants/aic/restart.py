"""Restarts of an AIC tenant (``/environment/startup``): start one only when needed, poll its
status within an error budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promote.errors import TenantError
from promote.tenants.base import (
    RestartStatus,
)

if TYPE_CHECKING:
    pass
from promote.tenants.aic.common import _ESV_API, AicParts, _transient

__all__ = ["Restarts"]


class Restarts(AicParts):
    """Restarts: ``restart``, ``restart_status``."""

    def restart(self) -> None:
        """Start a restart, or keep waiting for one already running; returns at once."""
        try:
            running = self._read_restart_status() == "restarting"
        except TenantError as error:
            if not _transient(error):
                raise
            running = False  # cannot tell: asking for a restart is safe either way
        self._awaiting_restart = True
        if running:
            return
        self._http.request(
            "POST", "/environment/startup", api_version=_ESV_API, params={"_action": "restart"}
        )

    def restart_status(self) -> RestartStatus:
        """``ready`` or ``restarting``.

        Up to ``error_budget`` consecutive 500s read as ``restarting`` (a 500 while the
        platform restarts must not fail the run); failures the HTTP client already retried
        (connection errors, timeouts, 502-504) fail at once. After :meth:`restart`, ``ready``
        is reported only once no ESV is pending, so a status read just before the platform
        flips to ``restarting`` cannot end the wait early.
        """
        try:
            status = self._read_restart_status()
            if status == "ready" and self._awaiting_restart:
                counts = self._http.get_json(
                    "/environment/count", api_version=_ESV_API, params={"_onlyPending": "true"}
                )
                pending = sum(int(v) for v in (counts or {}).values() if isinstance(v, int))
                if pending:
                    status = "restarting"
                else:
                    self._awaiting_restart = False
        except TenantError as error:
            if _transient(error) and self._poll_failures < self._budget:
                self._poll_failures += 1
                return "restarting"
            raise
        self._poll_failures = 0
        return status

    def _read_restart_status(self) -> RestartStatus:
        body = self._http.get_json("/environment/startup", api_version=_ESV_API)
        return "ready" if (body or {}).get("restartStatus") == "ready" else "restarting"
