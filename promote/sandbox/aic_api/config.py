"""``/openidm/config`` and ``/openidm/external/email`` of the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from promote.sandbox.aic_api.common import ApiParts, _idm_error, _no_config, _with_id
from promote.sandbox.routes import SandboxRequest, SandboxResponse

__all__ = ["ConfigAndEmail"]


class ConfigAndEmail(ApiParts):
    """The IDM config and email API family."""

    def _config_list(self, _: SandboxRequest, __: dict[str, str]) -> SandboxResponse:
        ids = sorted(self.tenant.list_config_ids())
        return SandboxResponse(
            200,
            {"_id": "", "configurations": [{"_id": i, "pid": i, "factoryPid": None} for i in ids]},
        )

    def _config_get(self, _: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        object_id = params["id"]
        found = self.tenant.read_config([object_id]).get(object_id)
        if found is None:
            return _no_config(object_id)
        return SandboxResponse(200, _with_id(object_id, found))

    def _config_put(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        object_id = params["id"]
        if not isinstance(request.json, dict):
            return _idm_error(400, "Bad Request", "the config must be a JSON object")
        value = {k: v for k, v in request.json.items() if k not in ("_id", "_rev")}
        self.tenant.put_config(object_id, value)
        return SandboxResponse(200, _with_id(object_id, value))

    def _config_delete(self, _: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        object_id = params["id"]
        found = self.tenant.read_config([object_id]).get(object_id)
        if found is None:
            return _no_config(object_id)
        self.tenant.delete_config(object_id)
        return SandboxResponse(200, _with_id(object_id, found))

    def _send_email(self, request: SandboxRequest, _: dict[str, str]) -> SandboxResponse:
        if request.param("_action") not in ("send", "sendTemplate"):
            return _idm_error(400, "Bad Request", "unknown _action")
        body = request.json if isinstance(request.json, dict) else {}
        if not body.get("to"):
            return _idm_error(400, "Bad Request", "to is required")
        if "external.email" not in self.tenant.list_config_ids():
            return _idm_error(400, "Bad Request", "no email provider configured (external.email)")
        outbox = Path(self.tenant.state_dir) / "outbox.jsonl"
        with outbox.open("a", encoding="utf-8") as file:
            file.write(json.dumps(body) + "\n")
        return SandboxResponse(200, {"status": "OK", "message": "Email sent"})
