"""The sandbox's Okta org: the Email Servers API (``/api/v1/email-servers``) on SQLite.

Behaves as the Okta reference describes it: list (``{"email-servers": [...]}``, or a bare
array when configured so, as some live orgs answer), create (201), get, PATCH (``authType``
required for OAuth 2.0 servers), DELETE (204) and test (204); one custom server per org;
``password``, ``clientSecret`` and ``privateKey`` are write-only, never returned. Errors are
Okta error objects: 400 ``E0000001``, 401 ``E0000011``, 404 ``E0000007``, 405 ``E0000022``,
429 ``E0000047``. Every response carries ``X-Rate-Limit-Limit/-Remaining/-Reset`` from a
fixed-window counter kept in the database, so several server processes share it.

The test endpoint does not reach the SMTP host: it records the message in the ``outbox``
table (:meth:`OktaApi.outbox`), and fails for hosts under ``.invalid`` (RFC 2606), which is
how tests make a server "unreachable". State lives in ``okta.sqlite3`` under ``state_dir``.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from promote.sandbox.routes import SandboxRequest, SandboxResponse, match

__all__ = ["DB_FILE", "OktaApi"]

DB_FILE = "okta.sqlite3"
_API = "/api/v1/email-servers"
_AUTH_TYPES: dict[str, tuple[str, ...]] = {
    "BASIC_SMTP_AUTH": ("password",),
    "OAUTH2_CLIENT_CREDENTIALS": (
        "clientId",
        "clientSecret",
        "tokenEndpoint",
        "tokenEndpointAuthMethod",
        "scopes",
    ),
    "OAUTH2_JWT_BEARER_GRANT": (
        "tokenEndpoint",
        "clientId",
        "signingAlgorithm",
        "keyId",
        "issuer",
        "subject",
        "audience",
        "scopes",
        "privateKey",
    ),
}
_BASE_FIELDS = ("alias", "enabled", "host", "port", "username")
_WRITE_ONLY = frozenset({"password", "clientSecret", "privateKey"})
_ENUMS = {
    "tokenEndpointAuthMethod": ("CLIENT_SECRET_BASIC", "CLIENT_SECRET_POST"),
    "signingAlgorithm": ("RS256",),
}
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_SUMMARIES = {
    "E0000001": "Api validation failed: {0}",
    "E0000007": "Not found: Resource not found: {0} (EmailServer)",
    "E0000011": "Invalid token provided",
    "E0000022": "The endpoint does not support the provided HTTP method",
    "E0000047": "API call exceeded rate limit due to too many requests.",
}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS servers (
    id TEXT PRIMARY KEY, alias TEXT NOT NULL UNIQUE, auth_type TEXT NOT NULL,
    public TEXT NOT NULL, write_only TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, server_id TEXT NOT NULL, from_address TEXT NOT NULL,
    to_address TEXT NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL, sent_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_DEFAULTS = {"rate_limit": "600", "rate_window": "60", "list_shape": "object"}


class OktaApi:
    """An Okta org's Email Servers API for the sandbox server (``handle`` per request)."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DB_FILE
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.path.chmod(0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    # -- test and operator knobs --------------------------------------------------------

    def configure(
        self,
        *,
        rate_limit: int | None = None,
        rate_window: float | None = None,
        list_shape: str | None = None,
    ) -> None:
        """Set the requests allowed per window, the window in seconds, and the list shape
        (``object``: ``{"email-servers": [...]}``; ``array``: a bare array)."""
        if list_shape not in (None, "object", "array"):
            raise ValueError("list_shape must be 'object' or 'array'")
        with self._lock:
            for key, value in (
                ("rate_limit", rate_limit),
                ("rate_window", rate_window),
                ("list_shape", list_shape),
            ):
                if value is not None:
                    self._set(key, str(value))

    def exhaust_rate_limit(self) -> None:
        """Use up a window starting now, as other API clients of the org would."""
        with self._lock:
            self._set("window", json.dumps([self._clock(), int(self._setting("rate_limit"))]))

    def outbox(self) -> list[dict[str, Any]]:
        """Every test message sent, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT server_id, from_address, to_address, host, port, sent_at"
                " FROM outbox ORDER BY id"
            ).fetchall()
        keys = ("server_id", "fromAddress", "toAddress", "host", "port", "sent_at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # -- requests -----------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse | None:
        """Answer one request under ``/api/v1/email-servers``; ``None`` for other paths."""
        route = _route(request.path)
        if route is None:
            return None
        with self._lock:
            limit, remaining, reset = self._count_request()
            headers = {
                "X-Rate-Limit-Limit": str(limit),
                "X-Rate-Limit-Remaining": str(max(0, remaining)),
                "X-Rate-Limit-Reset": str(reset),
            }
            if remaining < 0:
                response = _error(429, "E0000047")
            elif not _authorized(request.headers.get("authorization", "")):
                response = _error(401, "E0000011")
            else:
                response = self._dispatch(route, request)
        return SandboxResponse(response.status, response.json, {**response.headers, **headers})

    def _dispatch(self, route: tuple[str, str | None], request: SandboxRequest) -> SandboxResponse:
        action, server_id = route
        method = request.method.upper()
        handlers: dict[tuple[str, str], Callable[[], SandboxResponse]] = {
            ("list", "GET"): self._list,
            ("list", "POST"): lambda: self._create(request.json),
            ("one", "GET"): lambda: self._get(server_id or ""),
            ("one", "PATCH"): lambda: self._update(server_id or "", request.json),
            ("one", "DELETE"): lambda: self._delete(server_id or ""),
            ("test", "POST"): lambda: self._test(server_id or "", request.json),
        }
        handler = handlers.get((action, method))
        if handler is None:
            return _error(405, "E0000022")
        return handler()

    def _list(self) -> SandboxResponse:
        servers = [_public(row) for row in self._rows()]
        if self._setting("list_shape") == "array":
            return SandboxResponse(200, servers)
        return SandboxResponse(200, {"email-servers": servers})

    def _create(self, body: Any) -> SandboxResponse:
        if not isinstance(body, dict):
            return _error(400, "E0000001", "body", ["The request body must be a JSON object"])
        causes = _validate(body, required=True)
        if self._rows():
            causes.append("Only one custom email server is allowed per org")
        if causes:
            return _error(400, "E0000001", "emailServer", causes)
        server_id = "ces" + secrets.token_hex(8)
        self._save(server_id, body, insert=True)
        return SandboxResponse(201, self._public_of(server_id))

    def _get(self, server_id: str) -> SandboxResponse:
        if self._row(server_id) is None:
            return _error(404, "E0000007", server_id)
        return SandboxResponse(200, self._public_of(server_id))

    def _update(self, server_id: str, body: Any) -> SandboxResponse:
        row = self._row(server_id)
        if row is None:
            return _error(404, "E0000007", server_id)
        if not isinstance(body, dict):
            return _error(400, "E0000001", "body", ["The request body must be a JSON object"])
        current = {**json.loads(row[3]), **json.loads(row[4])}
        auth_type = body.get("authType", current["authType"])
        causes = []
        if current["authType"] != "BASIC_SMTP_AUTH" and "authType" not in body:
            causes.append("authType: is required to update an OAuth 2.0 server")
        if auth_type != current["authType"]:
            merged = {k: v for k, v in current.items() if k in ("authType", *_BASE_FIELDS)}
            merged.update(body)
            causes += _validate(merged, required=True)
        else:
            merged = {**current, **body}
            causes += _validate(body, required=False)
        if causes:
            return _error(400, "E0000001", "emailServer", causes)
        self._save(server_id, merged, insert=False)
        return SandboxResponse(200, self._public_of(server_id))

    def _delete(self, server_id: str) -> SandboxResponse:
        if self._row(server_id) is None:
            return _error(404, "E0000007", server_id)
        self._db.execute("DELETE FROM servers WHERE id = ?", (server_id,))
        return SandboxResponse(204)

    def _test(self, server_id: str, body: Any) -> SandboxResponse:
        row = self._row(server_id)
        if row is None:
            return _error(404, "E0000007", server_id)
        body = body if isinstance(body, dict) else {}
        causes = [
            f"{key}: must be an email address"
            for key in ("fromAddress", "toAddress")
            if not isinstance(body.get(key), str) or not _ADDRESS.match(body[key])
        ]
        if causes:
            return _error(400, "E0000001", "testEmailServer", causes)
        server = json.loads(row[3])
        host = str(server["host"])
        if host.lower().rstrip(".").endswith(".invalid"):
            cause = f"Could not connect to SMTP server {host}:{server['port']}"
            return _error(400, "E0000001", "testEmailServer", [cause])
        self._db.execute(
            "INSERT INTO outbox (server_id, from_address, to_address, host, port, sent_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                server_id,
                body["fromAddress"],
                body["toAddress"],
                host,
                server["port"],
                self._clock(),
            ),
        )
        return SandboxResponse(204)

    # -- storage ------------------------------------------------------------------------

    def _rows(self) -> list[tuple[Any, ...]]:
        return self._db.execute(
            "SELECT id, alias, auth_type, public, write_only FROM servers ORDER BY created"
        ).fetchall()

    def _row(self, server_id: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._db.execute(
            "SELECT id, alias, auth_type, public, write_only FROM servers WHERE id = ?",
            (server_id,),
        ).fetchone()
        return row

    def _public_of(self, server_id: str) -> dict[str, Any]:
        row = self._row(server_id)
        assert row is not None
        return _public(row)

    def _save(self, server_id: str, server: Mapping[str, Any], *, insert: bool) -> None:
        fields = ("authType", *_BASE_FIELDS, *_AUTH_TYPES[server["authType"]])
        public = {k: server[k] for k in fields if k in server and k not in _WRITE_ONLY}
        hidden = {k: server[k] for k in fields if k in server and k in _WRITE_ONLY}
        values = (server["alias"], server["authType"], json.dumps(public), json.dumps(hidden))
        if insert:
            self._db.execute(
                "INSERT INTO servers (alias, auth_type, public, write_only, created, id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (*values, self._clock(), server_id),
            )
        else:
            self._db.execute(
                "UPDATE servers SET alias = ?, auth_type = ?, public = ?, write_only = ?"
                " WHERE id = ?",
                (*values, server_id),
            )

    def _setting(self, key: str) -> str:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else _DEFAULTS[key]

    def _set(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _window(self) -> tuple[float, int]:
        """The current fixed window's start and the requests counted in it."""
        window = float(self._setting("rate_window"))
        stored = self._db.execute("SELECT value FROM settings WHERE key = 'window'").fetchone()
        start, count = json.loads(stored[0]) if stored else (0.0, 0)
        now = self._clock()
        if now >= start + window:
            return float(math.floor(now)), 0
        return float(start), int(count)

    def _count_request(self) -> tuple[int, int, int]:
        """Count one request; (limit, remaining after it — negative when over, reset epoch)."""
        limit = int(self._setting("rate_limit"))
        start, count = self._window()
        count += 1
        self._set("window", json.dumps([start, count]))
        reset = math.ceil(start + float(self._setting("rate_window")))
        return limit, limit - count, reset


def _route(path: str) -> tuple[str, str | None] | None:
    path = path.rstrip("/") or "/"
    if path == _API:
        return ("list", None)
    found = match(_API + "/{id}/test", path)
    if found is not None:
        return ("test", found["id"])
    found = match(_API + "/{id}", path)
    if found is not None:
        return ("one", found["id"])
    return None


def _authorized(header: str) -> bool:
    scheme, _, token = header.partition(" ")
    return scheme in ("SSWS", "Bearer") and bool(token.strip())


def _public(row: tuple[Any, ...]) -> dict[str, Any]:
    server: dict[str, Any] = {"id": row[0], **json.loads(row[3])}
    return server


def _validate(body: Mapping[str, Any], *, required: bool) -> list[str]:
    """Causes why ``body`` is not a valid server (``required``: a full create body)."""
    causes: list[str] = []
    auth_type = body.get("authType")
    if auth_type not in _AUTH_TYPES:
        if required or "authType" in body:
            causes.append(f"authType: must be one of {', '.join(_AUTH_TYPES)}")
        extra: tuple[str, ...] = ()
    else:
        extra = _AUTH_TYPES[auth_type]
    for key in (*_BASE_FIELDS, *extra):
        if key not in body:
            if required:
                causes.append(f"{key}: is required")
            continue
        value = body[key]
        if key == "enabled":
            ok = isinstance(value, bool)
        elif key == "port":
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536
        elif key == "scopes":
            ok = isinstance(value, list) and bool(value) and all(isinstance(s, str) for s in value)
        else:
            ok = isinstance(value, str) and bool(value.strip())
            if ok and key in _ENUMS:
                ok = value in _ENUMS[key]
        if not ok:
            causes.append(f"{key}: invalid value")
    return causes


def _error(
    status: int, code: str, detail: str = "", causes: list[str] | None = None
) -> SandboxResponse:
    error_id = "oae" + secrets.token_urlsafe(16)
    return SandboxResponse(
        status,
        {
            "errorCode": code,
            "errorSummary": _SUMMARIES[code].format(detail),
            "errorLink": code,
            "errorId": error_id,
            "errorCauses": [{"errorSummary": cause} for cause in causes or []],
        },
    )
