"""ESVs of an AIC tenant (``/environment/variables``, ``/environment/secrets``): one bulk read
per kind, writes of what changed only, with bounded concurrency; secrets compared by their
keyed fingerprint in the description, never read back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from esv.ids import is_valid_id
from esv.secrets import SecretValue
from promote.errors import PromoteError, TenantError
from promote.tenants.base import (
    EsvWrite,
    SecretState,
    VariableState,
)

if TYPE_CHECKING:
    pass
from promote.tenants.aic.common import _ESV_API, AicParts, _decode, _encode, _is_managed

__all__ = ["Esvs"]


_VARIABLE_DESCRIPTION = "promote:managed"

_FINGERPRINT_PREFIX = "promote:"


def _secret_state(item: Mapping[str, Any]) -> SecretState:
    active = str(item.get("activeVersion") or "")
    loaded_version = str(item.get("loadedVersion") or "")
    if item.get("useInPlaceholders", True):
        loaded = bool(active) and active == loaded_version
    else:
        loaded = True
    return SecretState(
        id=str(item["_id"]),
        version=int(active) if active.isdigit() else 0,
        loaded=loaded,
        managed=_is_managed(item),
        encoding=str(item.get("encoding") or "generic"),
        use_in_placeholders=bool(item.get("useInPlaceholders", True)),
    )


class Esvs(AicParts):
    """ESVs: ``list_variables``, ``list_secrets``, ``secret_matches``, ``write_esvs``."""

    def list_variables(self) -> dict[str, VariableState]:
        """Every variable, values decoded (one bulk read, following the paging cookie)."""
        raw = {item["_id"]: item for item in self._list("/environment/variables")}
        self._variables = raw
        return {
            esv_id: VariableState(
                id=esv_id,
                value=_decode(item.get("valueBase64")),
                type=str(item.get("expressionType") or "string"),
                loaded=bool(item.get("loaded", False)),
                managed=_is_managed(item),
            )
            for esv_id, item in raw.items()
        }

    def list_secrets(self) -> dict[str, SecretState]:
        """Every secret's metadata (one bulk read); pending = active version not loaded."""
        raw = {item["_id"]: item for item in self._list("/environment/secrets")}
        self._secrets = raw
        return {esv_id: _secret_state(item) for esv_id, item in raw.items()}

    def secret_matches(self, esv_id: str, value: SecretValue) -> bool | None:
        """Compare ``value`` with the fingerprint promote stored; None without one."""
        if self._secrets is None:
            self.list_secrets()
        assert self._secrets is not None
        item = self._secrets.get(esv_id)
        if item is None:
            return False
        description = str(item.get("description") or "")
        if not description.startswith(_FINGERPRINT_PREFIX):
            return None
        return self._fingerprints.matches(description[len(_FINGERPRINT_PREFIX) :], value)

    def write_esvs(self, writes: Sequence[EsvWrite]) -> None:
        """Apply writes with ``concurrency`` requests in flight; raise naming what was written.

        Variables: ``PUT`` (upsert with ``expressionType``; a type change deletes and
        recreates). Secrets: ``PUT`` once to create (generic, usable in placeholders), new
        values as new versions. Deletes: ``DELETE`` (absent: no-op).
        """
        if not writes:
            return
        invalid = sorted({w.id for w in writes if not is_valid_id(w.id)})
        if invalid:
            raise TenantError(
                f"{len(invalid)} invalid ESV id(s), nothing was written: "
                + ", ".join(repr(i) for i in invalid)
                + " (ids must match ^esv-[a-z0-9_-]{1,124}$)",
                env=self.env,
                url=self._http.display_url,
            )
        if self._variables is None and any(w.kind == "variable" for w in writes):
            self.list_variables()
        if self._secrets is None and any(w.kind == "secret" for w in writes):
            self.list_secrets()
        variables = dict(self._variables or {})
        secrets = dict(self._secrets or {})

        def apply(write: EsvWrite) -> tuple[EsvWrite, PromoteError | None]:
            try:
                if write.kind == "variable":
                    self._write_variable(write, variables.get(write.id))
                else:
                    self._write_secret(write, write.id in secrets)
            except PromoteError as error:
                return write, error
            return write, None

        try:
            results = self._map(apply, list(writes))
        finally:
            self._variables = None
            self._secrets = None
        failed = [(w, e) for w, e in results if e is not None]
        if failed:
            done = [f"{w.action} {w.kind} {w.id}" for w, e in results if e is None]
            lines = [f"{w.action} {w.kind} {w.id}: {e}" for w, e in failed]
            written = ", ".join(done) if done else "none"
            raise TenantError(
                f"{len(failed)} of {len(writes)} ESV writes failed; written: {written}; "
                "failed:\n  "
                + "\n  ".join(lines)
                + "\nrun again to finish (writes are idempotent)",
                env=self.env,
                url=self._http.display_url,
                status=failed[0][1].status if isinstance(failed[0][1], TenantError) else None,
            )

    def _write_variable(self, write: EsvWrite, current: Mapping[str, Any] | None) -> None:
        path = f"/environment/variables/{write.id}"
        if write.action == "delete":
            self._http.request("DELETE", path, api_version=_ESV_API, ok=(404,))
            return
        if isinstance(write.value, SecretValue):
            raise TenantError(
                f"{write.id}: a secret value cannot be written as a variable",
                env=self.env,
                url=self._http.display_url,
            )
        old_type = str((current or {}).get("expressionType") or "")
        if current is not None and old_type and old_type != write.type:
            # The platform refuses to change a variable's type; delete and recreate instead.
            self._http.request("DELETE", path, api_version=_ESV_API, ok=(404,))
        body = {
            "valueBase64": _encode(write.value or ""),
            "expressionType": write.type,
            "description": _VARIABLE_DESCRIPTION,
        }
        self._http.request("PUT", path, api_version=_ESV_API, json_body=body)

    def _write_secret(self, write: EsvWrite, exists: bool) -> None:
        path = f"/environment/secrets/{write.id}"
        if write.action == "delete":
            self._http.request("DELETE", path, api_version=_ESV_API, ok=(404,))
            return
        value = write.value
        if not isinstance(value, SecretValue):
            value = SecretValue(value or "")
        description = f"{_FINGERPRINT_PREFIX}{self._fingerprints.of(value)}"
        encoded = _encode(value.reveal())
        if not exists:
            body = {
                "valueBase64": encoded,
                "encoding": write.encoding,
                "useInPlaceholders": write.use_in_placeholders,
                "description": description,
            }
            self._http.request("PUT", path, api_version=_ESV_API, json_body=body)
            return
        self._http.request(
            "POST",
            f"{path}/versions",
            api_version=_ESV_API,
            params={"_action": "create"},
            json_body={"valueBase64": encoded},
        )
        self._http.request(
            "POST",
            path,
            api_version=_ESV_API,
            params={"_action": "setDescription"},
            json_body={"description": description},
        )
