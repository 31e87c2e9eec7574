"""The AIC REST API of one sandbox environment, backed by a ``local`` tenant's store.

Speaks the documented shapes (reference §1, §3, §4): ``/environment/variables``,
``/environment/secrets`` (+ versions), ``/environment/count``, ``/environment/startup``,
``/environment/promotion/*`` (an upper environment paired with its lower),
``/openidm/config[/{id}]`` and ``/openidm/external/email``. ESV descriptions, secret encodings
and the promotion status live next to the tenant's state in ``aic-sandbox.sqlite3``; sent
emails are appended to ``outbox.jsonl``.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from esv.conversions import TYPES
from esv.ids import is_valid_id
from esv.secrets import SecretValue
from promote.errors import BlockedError, LockedError
from promote.sandbox.routes import SandboxRequest, SandboxResponse, error, match
from promote.tenants.base import EsvWrite, PromotionReport, SecretState, VariableState
from promote.tenants.local import LocalTenant

__all__ = ["EXPRESSION_TYPES", "AicApi"]

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


class AicApi:
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

    # -- variables ----------------------------------------------------------------------
    def _variable_json(
        self,
        esv_id: str,
        states: Mapping[str, VariableState] | None = None,
        descriptions: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """One variable as the API shows it; ``states`` / ``descriptions``: read once for a
        whole listing (one query each, not one per variable)."""
        state = (states if states is not None else self.tenant.list_variables()).get(esv_id)
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
        current = self.tenant.list_variables().get(esv_id)
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
        if params["id"] not in self.tenant.list_variables():
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

    # -- secrets ------------------------------------------------------------------------
    def _secret_json(
        self,
        esv_id: str,
        states: Mapping[str, SecretState] | None = None,
        metas: Mapping[str, tuple[Any, ...]] | None = None,
    ) -> dict[str, Any] | None:
        """One secret as the API shows it; ``states`` / ``metas``: read once for a listing."""
        state = (states if states is not None else self.tenant.list_secrets()).get(esv_id)
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
        if esv_id in self.tenant.list_secrets():
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
        if params["id"] not in self.tenant.list_secrets():
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
        state = self.tenant.list_secrets().get(params["id"])
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
        if esv_id not in self.tenant.list_secrets():
            return _no_secret()
        body = request.json if isinstance(request.json, dict) else {}
        text = _decode(body.get("valueBase64"))
        if text is None:
            return error(400, "valueBase64 must be standard padded base64 of UTF-8 text")
        if refused := self._refuse_esv_write():
            return refused
        self.tenant.write_esvs([EsvWrite(esv_id, "secret", "modify", SecretValue(text))])
        state = self.tenant.list_secrets()[esv_id]
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

    # -- restart ------------------------------------------------------------------------
    def _restart_status(self, _: SandboxRequest, __: dict[str, str]) -> SandboxResponse:
        return SandboxResponse(200, {"restartStatus": self.tenant.restart_status()})

    def _restart(self, request: SandboxRequest, _: dict[str, str]) -> SandboxResponse:
        if request.param("_action") != "restart":
            return error(400, "unknown _action")
        self.tenant.restart()
        return SandboxResponse(200, {"restartStatus": "restarting"})

    # -- promotion ----------------------------------------------------------------------
    def _lock(self, _: SandboxRequest, __: dict[str, str]) -> SandboxResponse:
        if self.lower is None:
            return error(400, f"{self.tenant.env} has no lower environment to promote from")
        holder = f"{_API_HOLDER}{uuid.uuid4()}"
        try:
            promotion_id = self.tenant.lock(holder)
            try:
                self.lower.lock(holder)
            except LockedError:
                self.tenant.unlock(holder)
                raise
        except LockedError as locked:
            return error(409, f"A promotion is already running ({locked})")
        self._holder, self._promotion_id = holder, promotion_id
        self._status = _status("READY", "Environment ready for promotion", promotion_id)
        return SandboxResponse(
            202,
            {
                "description": "Environment lock in progress",
                "promotionId": promotion_id,
                "result": "locking",
            },
        )

    def _lock_state(self, _: SandboxRequest, __: dict[str, str]) -> SandboxResponse:
        upper = self.tenant.lock_state()
        lower = self.lower.lock_state() if self.lower is not None else None
        locked = upper.locked or bool(lower and lower.locked)
        ours = upper.locked and upper.holder == self._holder
        body: dict[str, Any] = {
            "description": "" if not locked or ours else "Environment locked by another promotion",
            "promotionId": self._promotion_id if ours else None,
            "result": "locked" if locked else "unlocked",
            "upperEnv": {"state": "LOCKED" if upper.locked else "UNLOCKED"},
        }
        if lower is not None:
            body["lowerEnv"] = {"state": "LOCKED" if lower.locked else "UNLOCKED"}
        return SandboxResponse(200, body)

    def _unlock(self, _: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        if self._holder is None or params["id"] != self._promotion_id:
            return error(404, f"no lock with promotion id {params['id']}")
        if self._pending is not None:
            return error(409, "A promotion is running; unlock when it has finished")
        self.tenant.unlock(self._holder)
        if self.lower is not None:
            self.lower.unlock(self._holder)
        promotion_id = self._promotion_id
        self._holder = self._promotion_id = None
        self._status = _status("UNLOCKED", "Environment unlocked")
        return SandboxResponse(200, {"promotionId": promotion_id, "result": "unlocked"})

    def _promotion_status(self, _: SandboxRequest, __: dict[str, str]) -> SandboxResponse:
        if self._pending is not None:
            if self._stale_left > 0:
                self._stale_left -= 1
                return SandboxResponse(200, self._status)  # not started yet: the old status
            pending, self._pending = self._pending, None
            pending()
        if self._running_polls > 0:
            # A real promotion runs for a while: the first poll after a start sees it running.
            self._running_polls -= 1
            return SandboxResponse(
                200, {**self._status, "status": "RUNNING", "message": "Update configuration"}
            )
        return SandboxResponse(200, self._status)

    def _held(self) -> bool:
        return self._holder is not None and self.tenant.lock_state().holder == self._holder

    def _start(self, run: Callable[[], None]) -> None:
        """Run now, or (``stale_polls``) at the first status poll after the stale ones."""
        if self.stale_polls > 0:
            self._pending, self._stale_left = run, self.stale_polls
        else:
            run()

    def _promote(self, request: SandboxRequest, _: dict[str, str]) -> SandboxResponse:
        if self.lower is None or not self._held():
            return error(409, "Environments are not locked", status="UNLOCKED")
        if self._pending is not None:
            return error(409, "A promotion is already running", status="RUNNING")
        body = request.json if isinstance(request.json, dict) else {}
        if not isinstance(body.get("dryRun"), bool):
            return error(400, "dryRun is required")
        dry_run = bool(body["dryRun"])
        promoter = str(body.get("promoter") or "")
        description = str(body.get("promotionDescription") or "")
        ignore = body.get("ignoreEncryptedSecrets") is True
        self._start(lambda: self._run_promotion(dry_run, promoter, description, ignore))
        return SandboxResponse(202, {"result": "Promotion process initiated successfully"})

    def _run_promotion(
        self, dry_run: bool, promoter: str, description: str, ignore_encrypted: bool
    ) -> None:
        assert self._holder is not None and self.lower is not None
        encrypted = _encrypted_secrets(self.lower.read_config(self.lower.list_config_ids()))
        if encrypted and not ignore_encrypted and not dry_run:
            # The platform refuses to carry values it cannot decrypt upstream.
            self._status = {
                **_status("ERROR", "Promotion failed: encrypted secrets", self._promotion_id),
                "encryptedSecrets": encrypted,
            }
            return
        try:
            report = self.tenant.promote_from(
                self.lower, holder=self._holder, description=description, dry_run=dry_run
            )
        except BlockedError as blocked:
            missing = sorted({p.esv_id for p in blocked.problems if p.esv_id})
            report = PromotionReport(
                id=str(uuid.uuid4()),
                type="promotion",
                env=self.tenant.env,
                source=self.lower.env,
                created=_now_iso(),
                dry_run=dry_run,
                missing_esvs=tuple(missing),
            )
            message = "Promotion failed: missing ESVs"
        else:
            message = "Dry run completed" if dry_run else "Promotion completed"
        self._finish(report, promoter, description, message, encrypted=encrypted)

    def _rollback(self, request: SandboxRequest, _: dict[str, str]) -> SandboxResponse:
        if self.lower is None or not self._held():
            return error(409, "Environments are not locked", status="UNLOCKED")
        if self._pending is not None:
            return error(409, "A promotion is already running", status="RUNNING")
        body = request.json if isinstance(request.json, dict) else {}
        assert self._holder is not None
        try:
            report = self.tenant.rollback(holder=self._holder)
        except BlockedError as blocked:
            return error(400, str(blocked.args[0]))
        promoter = str(body.get("promoter") or "")
        description = str(body.get("promotionDescription") or "")

        def run() -> None:
            # Refusals are immediate; a late status shows only in what the polls see.
            self._finish(report, promoter, description, "Rollback completed")

        self._start(run)
        return SandboxResponse(202, {"result": "Rollback process initiated successfully"})

    def _finish(
        self,
        report: PromotionReport,
        promoter: str,
        description: str,
        message: str,
        *,
        encrypted: list[str] | None = None,
    ) -> None:
        body = _report_json(report, promoter=promoter, description=description)
        if report.dry_run:
            body["encryptedSecrets"] = list(encrypted or [])
        self._reports[report.id] = body
        self._last_report = body
        self._status = {
            **_status("READY", message, self._promotion_id),
            "encryptedSecrets": list(encrypted or []),
            "missingESVs": list(report.missing_esvs),
            "type": report.type,
        }
        self._running_polls = 1

    def _report(self, _: SandboxRequest, __: dict[str, str]) -> SandboxResponse:
        if self._last_report is None:
            return error(404, "No promotion report available")
        return SandboxResponse(200, self._last_report)

    def _report_by_id(self, _: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        found = self._reports.get(params["id"])
        if found is None:
            for report in self.tenant.reports():
                if report.id == params["id"]:
                    found = _report_json(report, promoter=None, description=None)
        return SandboxResponse(200, found) if found else error(404, "Report not found")

    def _report_list(self, _: SandboxRequest, __: dict[str, str]) -> SandboxResponse:
        metas = []
        for report in self.tenant.reports():
            body = self._reports.get(report.id) or _report_json(
                report, promoter=None, description=None
            )
            metas.append(
                {
                    k: body[k]
                    for k in (
                        "createdDate",
                        "dryRun",
                        "promoter",
                        "promotionId",
                        "reportId",
                        "type",
                    )
                }
            )
        return SandboxResponse(200, metas)

    # -- config and email ---------------------------------------------------------------
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
