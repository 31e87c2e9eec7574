"""What the sandbox's AIC API families share: API versions, the list envelope, error
shapes, the metadata schema, and the state of one environment's API (:class:`ApiParts`)."""

from __future__ import annotations

import base64
import binascii
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from esv.conversions import TYPES
from promote.sandbox.routes import SandboxRequest, SandboxResponse, error
from promote.tenants.base import PromotionReport, VariableState
from promote.tenants.local import LocalTenant

__all__ = ["ApiParts", "EXPRESSION_TYPES", "Handler"]


EXPRESSION_TYPES = frozenset(TYPES)
"""The ``expressionType`` values the ESV API accepts."""


_ENCODINGS = frozenset({"generic", "pem", "base64aes", "base64hmac"})


_ID_ERROR = (
    'parameter "{name}" in path has an error: string doesn\'t match the regular expression '
    '"^esv-[a-z0-9_-]{{1,124}}$"'
)


_META_SCHEMA = """
CREATE TABLE IF NOT EXISTS esv_meta (
    id TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    encoding TEXT,
    use_in_placeholders INTEGER
)
"""


_API_HOLDER = "promotion-api-"
"""Prefix of the holder name the promotion API locks the tenant store with."""


Handler = Callable[[SandboxRequest, dict[str, str]], SandboxResponse]


_ESV_VERSION = "protocol=1.0,resource=1.0"


_PROMOTION_VERSION = "protocol=1.0,resource=1.0"


_IDM_VERSION = "resource=1.0"


def _version(header: str | None) -> dict[str, str]:
    """``protocol=1.0,resource=1.0`` as ``{"protocol": "1.0", "resource": "1.0"}``."""
    parts = (p.strip().partition("=") for p in (header or "").split(",") if p.strip())
    return {name.strip().lower(): value.strip() for name, _, value in parts}


def _refuse_api_version(path: str, header: str | None) -> SandboxResponse | None:
    """The AIC-like 400 for a wrong or missing ``Accept-API-Version``; ``None`` when fine.

    ESV endpoints: v1 (``protocol=1.0,resource=1.0``) or v2 (``resource=2.0``); no header
    means v1, as on the platform. Promotion endpoints: ``resource=1.0`` with protocol 1.0
    (2.1 is what ForgeRock's own tool sends for writes), required. IDM (``/openidm``):
    ``resource=1.0``, required.
    """
    version = _version(header)
    if path.startswith("/environment/promotion"):
        if version.get("resource") == "1.0" and version.get("protocol") in ("1.0", "2.1"):
            return None
        return error(
            400,
            f"Accept-API-Version {header!r} is not supported by {path}: send {_PROMOTION_VERSION}",
        )
    if path.startswith("/environment/"):
        if header is None:
            return None
        if version.get("resource") in ("1.0", "2.0") and version.get("protocol", "1.0") == "1.0":
            return None
        return error(
            400,
            f"Accept-API-Version {header!r} is not supported by {path}: send {_ESV_VERSION} "
            "(or resource=2.0 for the v2 lists)",
        )
    if path.startswith("/openidm/") or path == "/openidm":
        if version.get("resource") == "1.0":
            return None
        return _idm_error(
            400,
            "Bad Request",
            f"Accept-API-Version {header!r} does not match any version of {path}: "
            f"send {_IDM_VERSION}",
        )
    return None


def _page(request: SandboxRequest, items: list[Any]) -> SandboxResponse:
    """The v1 list envelope; ``_pageSize`` pages with an offset cookie."""
    size_text = request.param("_pageSize")
    start = int(request.param("_pagedResultsCookie") or 0)
    if size_text is None and start == 0:
        page, cookie = items, None
    else:
        size = int(size_text or 100)
        if not 1 <= size <= 100:
            return error(400, "number must be at most 100")
        page = items[start : start + size]
        cookie = str(start + size) if start + size < len(items) else None
    return SandboxResponse(
        200,
        {
            "pagedResultsCookie": cookie,
            "remainingPagedResults": -1,
            "result": page,
            "resultCount": len(page),
            "totalPagedResults": -1,
            "totalPagedResultsPolicy": "NONE",
        },
    )


def _encrypted_secrets(config: dict[str, Any]) -> list[str]:
    """``<object id>: <JSON path>`` of every encrypted value (``{"$crypto": ...}``) in
    ``config``: what the platform cannot decrypt in another environment."""
    found: list[str] = []

    def walk(value: Any, object_id: str, path: str) -> None:
        if isinstance(value, dict):
            if "$crypto" in value:
                found.append(f"{object_id}: {path or '(whole object)'}")
                return
            for key, item in value.items():
                walk(item, object_id, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, object_id, f"{path}[{index}]")

    for object_id in sorted(config):
        walk(config[object_id], object_id, "")
    return found


def _type_of(state: VariableState | None) -> str:
    return state.type if state is not None else "string"


def _decode(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _status(status: str, message: str, promotion_id: str | None = None) -> dict[str, Any]:
    return {
        "blockingError": False,
        "encryptedSecrets": [],
        "globalLock": "UNLOCKED" if status == "UNLOCKED" else "LOCKED",
        "message": message,
        "missingESVs": [],
        "promotionId": promotion_id,
        "status": status,
        "timeStamp": _now_iso(),
        "type": "promotion",
    }


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def _report_json(
    report: PromotionReport, *, promoter: str | None, description: str | None
) -> dict[str, Any]:
    def items(ids: tuple[str, ...]) -> list[dict[str, str]]:
        return [{"name": i, "realm": "/", "uid": i} for i in ids]

    extra = report.extra
    return {
        "createdDate": report.created,
        "dryRun": report.dry_run,
        "missingESVs": list(report.missing_esvs),
        "previouslyIgnoredEncryptedSecrets": [],
        "promoter": promoter if promoter is not None else str(extra.get("holder", "")),
        "promotionDescription": description
        if description is not None
        else str(extra.get("description", "")),
        "promotionId": str(extra.get("promotion_id", report.id)),
        "reportId": report.id,
        "reportName": f"Report_{report.created}_dryrun={str(report.dry_run).lower()}_{report.id}",
        "type": report.type,
        "report": {
            "IDMConfig": [
                {
                    "configItem": "Configuration",
                    "configChange": {
                        "added": items(report.added),
                        "modified": items(report.modified),
                        "deleted": items(report.deleted),
                    },
                }
            ]
        },
    }


def _with_id(object_id: str, value: Any) -> Any:
    return {"_id": object_id, **value} if isinstance(value, dict) else value


def _idm_error(status: int, reason: str, message: str) -> SandboxResponse:
    return SandboxResponse(status, {"code": status, "reason": reason, "message": message})


def _no_config(object_id: str) -> SandboxResponse:
    return _idm_error(404, "Not Found", f"No configuration exists for id {object_id}")


def _no_variable() -> SandboxResponse:
    return error(404, "The variable does not exist")


def _no_secret() -> SandboxResponse:
    return error(404, "The secret does not exist or does not have a version")


class ApiParts:
    """The state one environment's API families share; :class:`AicApi` sets it."""

    tenant: LocalTenant
    lower: LocalTenant | None
    stale_polls: int
    _pending: Callable[[], None] | None
    _stale_left: int
    _mutex: threading.RLock
    _meta: sqlite3.Connection
    _holder: str | None
    _promotion_id: str | None
    _status: dict[str, Any]
    _running_polls: int
    _reports: dict[str, dict[str, Any]]
    _last_report: dict[str, Any] | None
