"""Config objects of an AIC tenant (``/openidm/config``): the ids promote manages, reads,
writes in mutable environments, deletes."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from promote.errors import ImmutableError
from promote.tenants.base import (
    JSON,
)

if TYPE_CHECKING:
    pass
from promote.tenants.aic.common import _IDM_API, AicParts, _config_path

__all__ = ["ALWAYS_MANAGED_CONFIG", "ConfigObjects"]


ALWAYS_MANAGED_CONFIG = ("external.email",)


class ConfigObjects(AicParts):
    """Config objects: ``list_config_ids``, ``read_config``, ``put_config``, ``delete_config``."""

    def list_config_ids(self) -> set[str]:
        """The managed ids this tenant holds: the workspace's config, ``external.email`` and
        every id promote wrote or promoted here (still managed once removed from the
        workspace, so that it is deleted). The platform's own objects are never listed."""
        body = self._http.get_json("/openidm/config", api_version=_IDM_API)
        held = {
            item["_id"]
            for item in (body or {}).get("configurations", [])
            if isinstance(item, dict) and isinstance(item.get("_id"), str)
        }
        return held & (self.managed_config_ids | self._written.ids())

    def read_config(self, ids: Collection[str]) -> dict[str, JSON]:
        """``GET /openidm/config/{id}`` for each id (concurrently); absent ids omitted."""

        def read(object_id: str) -> tuple[str, JSON | None]:
            response = self._http.request(
                "GET", _config_path(object_id), api_version=_IDM_API, ok=(404,)
            )
            if response.status_code == 404:
                return object_id, None
            value = self._http.json_of(response)
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if k not in ("_id", "_rev")}
            return object_id, value

        found = self._map(read, sorted(ids))
        return {object_id: value for object_id, value in found if value is not None}

    def put_config(self, object_id: str, value: JSON) -> None:
        """``PUT /openidm/config/{id}``; ``ImmutableError`` for an immutable environment."""
        self._refuse_if_immutable("PUT", object_id)
        self._written.add(object_id)  # before the write: a crash after it still tracks the id
        self._http.request("PUT", _config_path(object_id), api_version=_IDM_API, json_body=value)

    def delete_config(self, object_id: str) -> None:
        """``DELETE /openidm/config/{id}`` (absent: no-op); immutable as for put."""
        self._refuse_if_immutable("DELETE", object_id)
        self._http.request("DELETE", _config_path(object_id), api_version=_IDM_API, ok=(404,))
        self._written.discard(object_id)

    def reconcile_write_only(self, object_id: str, desired: JSON, current: JSON) -> JSON:
        """AIC returns config as written: nothing to reconcile."""
        return current

    def _refuse_if_immutable(self, method: str, object_id: str) -> None:
        if not self.mutable:
            raise ImmutableError(
                f"{self.env} is immutable: its config changes only by promotion from the "
                "stage below (run `promote run --to " + self.env + "`)",
                env=self.env,
                url=self._http.display_url,
                method=method,
                path=_config_path(object_id),
            )
