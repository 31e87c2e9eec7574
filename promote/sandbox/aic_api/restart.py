"""``/environment/startup`` of the sandbox: restart status and restarts."""

from __future__ import annotations

from promote.sandbox.aic_api.common import ApiParts
from promote.sandbox.routes import SandboxRequest, SandboxResponse, error

__all__ = ["Restarts"]


class Restarts(ApiParts):
    """The restart API family."""

    def _restart_status(self, _: SandboxRequest, __: dict[str, str]) -> SandboxResponse:
        return SandboxResponse(200, {"restartStatus": self.tenant.restart_status()})

    def _restart(self, request: SandboxRequest, _: dict[str, str]) -> SandboxResponse:
        if request.param("_action") != "restart":
            return error(400, "unknown _action")
        self.tenant.restart()
        return SandboxResponse(200, {"restartStatus": "restarting"})
