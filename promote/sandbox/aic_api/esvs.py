"""``/environment/variables``, ``/environment/secrets`` (and versions) and
``/environment/count`` of the sandbox."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Literal

from esv.ids import is_valid_id
from esv.secrets import SecretValue
from promote.sandbox.aic_api.common import (
    _ENCODINGS,
    _ID_ERROR,
    EXPRESSION_TYPES,
    ApiParts,
    _decode,
    _no_secret,
    _no_variable,
    _page,
    _type_of,
    _version,
)
from promote.sandbox.routes import SandboxRequest, SandboxResponse, error
from promote.tenants.base import EsvWrite, SecretState, VariableState

__all__ = ["Esvs"]


class Esvs(ApiParts):
    """The ESV API family."""

    def _variable_json(
        self,
        esv_id: str,
        states: Mapping[str, VariableState] | None = None,
        descriptions: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """One variable as the API shows it; ``states`` / ``descriptions``: read once for a
        whole listing (one query each, not one per variable)."""
        state = states.get(esv_id) if states is not None else self.tenant.variable(esv_id)
        if state is None:
            return None
        description = (
            descriptions.get(esv_id, "") if descriptions is not None else self._description(esv_id)
        )
        return {
            "_id": esv_id,
            "description": description,
            "expressionType": state.type,
            "loaded": state.loaded,
            "valueBase64": base64.b64encode(state.value.encode()).decode(),
        }

    def _list_variables(self, request: SandboxRequest, _: dict[str, str]) -> SandboxResponse:
        states = self.tenant.list_variables()
        descriptions = {
            str(row[0]): str(row[1] or "")
            for row in self._meta.execute("SELECT id, description FROM esv_meta")
        }
        items = [self._variable_json(i, states, descriptions) for i in sorted(states)]
        if _version(request.headers.get("accept-api-version")).get("resource") == "2.0":
            # The v2 list omits values: read each variable for its value.
            items = [{k: v for k, v in i.items() if k != "valueBase64"} for i in items if i]
        return _page(request, items)

    def _get_variable(self, _: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        found = self._variable_json(params["id"])
        return SandboxResponse(200, found) if found else _no_variable()

    def _put_variable(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        esv_id = params["id"]
        if not is_valid_id(esv_id):
            return error(400, _ID_ERROR.format(name="variableId"))
        body = request.json if isinstance(request.json, dict) else None
        if body is None:
            return error(400, "request body must be a JSON object")
        text = _decode(body.get("valueBase64"))
        if text is None:
            return error(400, "valueBase64 must be standard padded base64 of UTF-8 text")
        current = self.tenant.variable(esv_id)
        kind = str(body.get("expressionType") or "")
        if current is None and not kind:
            return error(
                400,
                "Variable type required; expressionType cannot be empty when creating new "
                "variables",
            )
        if kind and kind not in EXPRESSION_TYPES:
            return error(400, f"expressionType {kind!r} is not one of {sorted(EXPRESSION_TYPES)}")
        if current is not None and kind and kind != current.type:
            return error(400, "Changing the type of an existing variable is not permitted")
        if refused := self._refuse_esv_write():
            return refused
        action: Literal["add", "modify"] = "modify" if current is not None else "add"
        self.tenant.write_esvs(
            [EsvWrite(esv_id, "variable", action, text, type=kind or _type_of(current))]
        )
        if "description" in body or current is None:
            self._set_meta(esv_id, description=str(body.get("description") or ""))
        return SandboxResponse(200, self._variable_json(esv_id))

    def _describe_variable(
        self, request: SandboxRequest, params: dict[str, str]
    ) -> SandboxResponse:
        if request.param("_action") != "setDescription":
            return error(400, "unknown _action")
        if self.tenant.variable(params["id"]) is None:
            return _no_variable()
        return self._set_description(request, params["id"])

    def _delete_variable(self, _: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        found = self._variable_json(params["id"])
        if found is None:
            return _no_variable()
        if refused := self._refuse_esv_write():
            return refused
        self.tenant.write_esvs([EsvWrite(params["id"], "variable", "delete")])
        self._meta.execute("DELETE FROM esv_meta WHERE id = ?", (params["id"],))
        return SandboxResponse(200, found)

    def _secret_json(
        self,
        esv_id: str,
        states: Mapping[str, SecretState] | None = None,
        metas: Mapping[str, tuple[Any, ...]] | None = None,
    ) -> dict[str, Any] | None:
        """One secret as the API shows it; ``states`` / ``metas``: read once for a listing."""
        state = states.get(esv_id) if states is not None else self.tenant.secret(esv_id)
        if state is None:
            return None
        if metas is not None:
            row = metas.get(esv_id)
        else:
            row = self._meta.execute(
                "SELECT description, encoding, use_in_placeholders FROM esv_meta WHERE id = ?",
                (esv_id,),
            ).fetchone()
        description, encoding, placeholders = row if row else ("", "generic", 1)
        return {
            "_id": esv_id,
            "activeVersion": str(state.version),
            "description": description,
            "encoding": encoding or "generic",
            "loaded": state.loaded,
            "loadedVersion": str(state.version) if state.loaded else "",
            "useInPlaceholders": bool(placeholders if placeholders is not None else 1),
        }

    def _list_secrets(self, request: SandboxRequest, _: dict[str, str]) -> SandboxResponse:
        states = self.tenant.list_secrets()
        metas = {
            str(row[0]): tuple(row[1:])
            for row in self._meta.execute(
                "SELECT id, description, encoding, use_in_placeholders FROM esv_meta"
            )
        }
        return _page(request, [self._secret_json(i, states, metas) for i in sorted(states)])

    def _get_secret(self, _: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        found = self._secret_json(params["id"])
        return SandboxResponse(200, found) if found else _no_secret()

    def _put_secret(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        esv_id = params["id"]
        if not is_valid_id(esv_id):
            return error(400, _ID_ERROR.format(name="secretId"))
        body = request.json if isinstance(request.json, dict) else None
        if body is None:
            return error(400, "request body must be a JSON object")
        if self.tenant.secret(esv_id) is not None:
            return error(400, "Failed to create secret, the secret already exists")
        text = _decode(body.get("valueBase64"))
        if text is None:
            return error(400, "valueBase64 must be standard padded base64 of UTF-8 text")
        encoding = body.get("encoding")
        if encoding not in _ENCODINGS:
            return error(400, f"encoding must be one of {sorted(_ENCODINGS)}")
        if not isinstance(body.get("useInPlaceholders"), bool):
            return error(400, "useInPlaceholders is required (true or false)")
        if refused := self._refuse_esv_write():
            return refused
        self.tenant.write_esvs([EsvWrite(esv_id, "secret", "add", SecretValue(text))])
        self._set_meta(
            esv_id,
            description=str(body.get("description") or ""),
            encoding=str(encoding),
            use_in_placeholders=int(body["useInPlaceholders"]),
        )
        return SandboxResponse(200, self._secret_json(esv_id))

    def _describe_secret(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        if request.param("_action") != "setDescription":
            return error(400, "unknown _action")
        if self.tenant.secret(params["id"]) is None:
            return _no_secret()
        return self._set_description(request, params["id"])

    def _delete_secret(self, _: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        found = self._secret_json(params["id"])
        if found is None:
            return _no_secret()
        if refused := self._refuse_esv_write():
            return refused
        self.tenant.write_esvs([EsvWrite(params["id"], "secret", "delete")])
        self._meta.execute("DELETE FROM esv_meta WHERE id = ?", (params["id"],))
        return SandboxResponse(200, found)

    def _list_versions(self, _: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        state = self.tenant.secret(params["id"])
        if state is None:
            return _no_secret()
        versions = [
            {
                "loaded": state.loaded and v == state.version,
                "status": "ENABLED",
                "version": str(v),
            }
            for v in range(state.version, 0, -1)
        ]
        return SandboxResponse(200, versions)

    def _create_version(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        if request.param("_action") != "create":
            return error(400, "unknown _action")
        esv_id = params["id"]
        if self.tenant.secret(esv_id) is None:
            return _no_secret()
        body = request.json if isinstance(request.json, dict) else {}
        text = _decode(body.get("valueBase64"))
        if text is None:
            return error(400, "valueBase64 must be standard padded base64 of UTF-8 text")
        if refused := self._refuse_esv_write():
            return refused
        self.tenant.write_esvs([EsvWrite(esv_id, "secret", "modify", SecretValue(text))])
        state = self.tenant.secret(esv_id)
        if state is None:  # deleted by a request served meanwhile
            return _no_secret()
        return SandboxResponse(
            200, {"loaded": state.loaded, "status": "ENABLED", "version": str(state.version)}
        )

    def _count(self, request: SandboxRequest, _: dict[str, str]) -> SandboxResponse:
        pending = request.param("_onlyPending") == "true"
        variables = [
            v for v in self.tenant.list_variables().values() if not pending or not v.loaded
        ]
        secrets = [s for s in self.tenant.list_secrets().values() if not pending or not s.loaded]
        return SandboxResponse(200, {"secrets": len(secrets), "variables": len(variables)})

    def _description(self, esv_id: str) -> str:
        row = self._meta.execute(
            "SELECT description FROM esv_meta WHERE id = ?", (esv_id,)
        ).fetchone()
        return str(row[0]) if row else ""

    def _set_description(self, request: SandboxRequest, esv_id: str) -> SandboxResponse:
        body = request.json if isinstance(request.json, dict) else {}
        description = body.get("description")
        if not isinstance(description, str) or len(description) > 1000:
            return error(400, "description must be a string of at most 1000 characters")
        self._set_meta(esv_id, description=description)
        return SandboxResponse(200)

    def _set_meta(self, esv_id: str, **fields: Any) -> None:
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        updates = ", ".join(f"{c} = excluded.{c}" for c in fields)
        self._meta.execute(
            f"INSERT INTO esv_meta (id, {columns}) VALUES (?, {marks}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}",
            (esv_id, *fields.values()),
        )

    def _refuse_esv_write(self) -> SandboxResponse | None:
        """The platform blocks the ESV API while an environment is locked or restarting."""
        if self.tenant.lock_state().locked:
            return error(409, "The environment is locked for a promotion; ESVs cannot change")
        if self.tenant.restart_status() == "restarting":
            return error(409, "ESV changes are inactive until the restart has completed")
        return None
