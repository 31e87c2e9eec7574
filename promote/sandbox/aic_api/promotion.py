"""``/environment/promotion/*`` of the sandbox: lock, promote (with stale polls as AIC
has them), rollback, reports."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from promote.errors import BlockedError, LockedError
from promote.sandbox.aic_api.common import (
    _API_HOLDER,
    ApiParts,
    _encrypted_secrets,
    _now_iso,
    _report_json,
    _status,
)
from promote.sandbox.routes import SandboxRequest, SandboxResponse, error
from promote.tenants.base import PromotionReport

__all__ = ["Promotions"]


class Promotions(ApiParts):
    """The promotion API family."""

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
