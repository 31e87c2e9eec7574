"""Promotions into an AIC tenant (``/environment/promotion/*``, called on the upper
environment): lock, dry run, stop on missing ESVs or encrypted secrets, promote, report,
unlock (also on failure and Ctrl-C); rollback and reports."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from esv.errors import MISSING_ESV, Problem
from esv.references import index_references
from promote.errors import BlockedError, LockedError, PromoteError, TenantError
from promote.tenants.base import (
    LockState,
    PromotionReport,
    Tenant,
)

if TYPE_CHECKING:
    pass
from promote.tenants.aic.common import AicParts, _transient

__all__ = ["Promotions"]


_PROMOTION_API = "protocol=1.0,resource=1.0"

_UNLOCKED = "unlocked"


def _report_id(report: Mapping[str, Any] | None) -> str | None:
    found = (report or {}).get("reportId")
    return str(found) if found else None


def _marks(status: Mapping[str, Any]) -> tuple[str, str]:
    """What changes when a new promotion starts: its id and the status time stamp."""
    return str(status.get("promotionId") or ""), str(status.get("timeStamp") or "")


def _promotion_id(state: Mapping[str, Any]) -> str | None:
    """The promotion id a lock state names (top level, else the upper environment's)."""
    upper = state.get("upperEnv")
    found = state.get("promotionId") or (
        upper.get("promotionId") if isinstance(upper, dict) else None
    )
    return str(found) if found else None


def _holder(state: Mapping[str, Any]) -> str | None:
    holder = state.get("promoter") or state.get("promotionId")
    return str(holder) if holder else None


def _promotion_report(body: Mapping[str, Any], *, env: str, source: str | None) -> PromotionReport:
    changes: dict[str, list[str]] = {"added": [], "modified": [], "deleted": []}
    for section in (body.get("report") or {}).values():
        for entry in section if isinstance(section, list) else []:
            change = entry.get("configChange") or {} if isinstance(entry, dict) else {}
            for change_kind, names in changes.items():
                for thing in change.get(change_kind) or []:
                    names.append(str(thing.get("name") if isinstance(thing, dict) else thing))
    kind: Literal["promotion", "rollback"] = (
        "rollback" if body.get("type") == "rollback" else "promotion"
    )
    return PromotionReport(
        id=str(body.get("reportId") or body.get("promotionId") or ""),
        type=kind,
        env=env,
        source=source,
        created=str(body.get("createdDate") or ""),
        added=tuple(changes["added"]),
        modified=tuple(changes["modified"]),
        deleted=tuple(changes["deleted"]),
        dry_run=bool(body.get("dryRun", False)),
        missing_esvs=tuple(str(x) for x in body.get("missingESVs") or []),
        extra={
            k: body[k]
            for k in ("promoter", "promotionDescription", "reportName", "promotionId")
            if k in body
        },
    )


class Promotions(AicParts):
    """Promotions: ``lock_state``, ``unlock``, ``promote_from``, ``rollback``, ``reports``."""

    def lock_state(self) -> LockState:
        """Whether a promotion lock is held on this environment, and by whom: the holder
        promote recorded for its promotion id, else the promoter or the promotion id."""
        state = self._lock_state()
        result = state.get("result")
        return LockState(locked=result != _UNLOCKED, holder=self._holder_of(state))

    def unlock(self, holder: str) -> None:
        """Release the lock ``holder`` took (recorded by promotion id), if AIC still holds it.

        No record for ``holder``: no-op. The lock state no longer showing that promotion id
        (released, or someone else's lock now): the record is dropped and nothing is sent.
        Otherwise ``DELETE /environment/promotion/lock/{promotionId}`` and poll until unlocked.
        """
        promotion_id = self._locks.get(holder)
        if promotion_id is None:
            return
        state = self._lock_state()
        result = state.get("result", _UNLOCKED)
        if result == _UNLOCKED or _promotion_id(state) != promotion_id:
            self._locks.remove(holder)
            return
        if result == "locking":
            self._wait_lock("locked")
        if result != "unlocking":
            self._http.request(
                "DELETE",
                f"/environment/promotion/lock/{promotion_id}",
                api_version=_PROMOTION_API,
                ok=(404,),
            )
        self._wait_lock(_UNLOCKED)
        self._locks.remove(holder)

    def promote_from(
        self, lower: Tenant, *, holder: str, description: str, dry_run: bool = False
    ) -> PromotionReport:
        """Promote ``lower`` into this (upper) environment through the promotion API.

        Lock, dry run, stop on missing ESVs or encrypted secrets (one ``BlockedError``
        listing all of them; nothing promoted), promote, read the report, unlock; the lock is
        released on every path, Ctrl-C included.
        """
        request = {
            "promoter": holder,
            "promotionDescription": description,
            "unlockEnvironmentsAfterPromotion": False,
            "ignoreEncryptedSecrets": False,
        }
        with self._locked(holder):
            status, report = self._run_promotion({"dryRun": True, **request})
            self._refuse_blocked(status, report, lower)
            if not dry_run:
                # The lower environment is locked too: what it holds now is what arrives.
                carried = lower.list_config_ids()
                status, report = self._run_promotion({"dryRun": False, **request})
                self._refuse_blocked(status, report, lower)
                self._written.replace(carried)
        return _promotion_report(report, env=self.env, source=lower.env)

    def _refuse_blocked(
        self, status: Mapping[str, Any], report: Mapping[str, Any], lower: Tenant
    ) -> None:
        """``BlockedError`` listing every missing ESV (with where the lower config uses it)
        and every encrypted secret the platform found in the incoming config."""
        missing = sorted({str(x) for x in report.get("missingESVs") or []})
        encrypted = sorted(
            {str(x) for found in (status, report) for x in found.get("encryptedSecrets") or []}
        )
        if not missing and not encrypted:
            return
        problems = self._missing_problems(missing, lower) if missing else []
        problems += [
            Problem(
                self.env,
                "",
                f"encrypted secret in the promoted config: {secret}",
                hint=f"an encrypted value cannot be decrypted in {self.env}: store it as an ESV "
                "secret and reference it with a placeholder (&{esv.x})",
            )
            for secret in encrypted
        ]
        reasons = []
        if missing:
            reasons.append(f"{len(missing)} ESV(s) missing ({', '.join(missing)})")
        if encrypted:
            reasons.append(f"{len(encrypted)} encrypted secret(s) ({', '.join(encrypted)})")
        raise BlockedError(
            f"{self.env}: cannot promote from {lower.env}: {'; '.join(reasons)}; "
            "nothing was changed",
            problems,
        )

    def _missing_problems(self, missing: Sequence[str], lower: Tenant) -> list[Problem]:
        problems = []
        try:
            incoming = lower.read_config(lower.list_config_ids())
        except PromoteError:
            incoming = {}
        used = [r for r in index_references(incoming) if r.esv_id in missing and not r.defaulted]
        hint = f"define it in the {self.env} environment file, or give the placeholder a default"
        for ref in used:
            problems.append(
                Problem(
                    ref.object_id,
                    ref.path,
                    f"{ref.esv_id} is not defined in {self.env}",
                    esv_id=ref.esv_id,
                    hint=hint,
                    code=MISSING_ESV,
                )
            )
        located = {ref.esv_id for ref in used}
        problems += [
            Problem(
                self.env,
                "",
                f"{esv_id} is not defined in {self.env}",
                esv_id=esv_id,
                hint=hint,
                code=MISSING_ESV,
            )
            for esv_id in missing
            if esv_id not in located
        ]
        return problems

    def rollback(self, *, holder: str) -> PromotionReport:
        """Roll back this environment's last promotion through the rollback endpoint."""
        with self._locked(holder):
            _, report = self._run_promotion(
                {
                    "promoter": holder,
                    "promotionDescription": f"rollback by {holder}",
                    "unlockEnvironmentsAfterPromotion": False,
                },
                path="/environment/promotion/rollback",
                refused=(400,),
            )
            self._written.restore_previous()
        return _promotion_report(report, env=self.env, source=self.lower)

    def reports(self) -> list[PromotionReport]:
        """Every promotion and rollback report, oldest first; ``source`` is :attr:`lower`."""
        metas = self._http.get_json("/environment/promotion/reports", api_version=_PROMOTION_API)
        ids = [m["reportId"] for m in metas or [] if isinstance(m, dict) and m.get("reportId")]
        bodies = self._map(
            lambda report_id: self._http.get_json(
                f"/environment/promotion/report/{report_id}", api_version=_PROMOTION_API
            ),
            ids,
        )
        found = [_promotion_report(b, env=self.env, source=self.lower) for b in bodies if b]
        return sorted(found, key=lambda r: r.created)

    def _lock_state(self) -> dict[str, Any]:
        body = self._get_polled("/environment/promotion/lock/state")
        return body if isinstance(body, dict) else {}

    def _holder_of(self, state: Mapping[str, Any]) -> str | None:
        promotion_id = _promotion_id(state)
        recorded = self._locks.holder_of(promotion_id) if promotion_id else None
        return recorded or _holder(state)

    @contextmanager
    def _locked(self, holder: str) -> Iterator[str]:
        """Hold the promotion lock for the block, its id recorded for ``holder`` until a
        clean release (so that a killed run's lock can be released by :meth:`unlock`)."""
        state = self._lock_state()
        if state.get("result", _UNLOCKED) != _UNLOCKED:
            detail = str(state.get("description") or f"lock state {state.get('result')}")
            raise LockedError(self.env, self._holder_of(state), detail)
        status = self._get_polled("/environment/promotion/promote") or {}
        if str(status.get("status", "")).upper() == "RUNNING":
            raise LockedError(self.env, status.get("promotionId"), "a promotion is running")
        response = self._http.request(
            "POST", "/environment/promotion/lock", api_version=_PROMOTION_API, ok=(409,)
        )
        body = self._http.json_of(response) or {}
        if response.status_code == 409:
            raise LockedError(self.env, None, str(body.get("message") or "lock refused"))
        promotion_id = str(body.get("promotionId") or "")
        try:
            if promotion_id:
                self._locks.put(holder, promotion_id)
        except PromoteError as error:
            self._unlock(promotion_id, quiet=True)
            raise PromoteError(
                f"{error}; the promotion lock was released and nothing was changed"
            ) from None
        except BaseException:
            self._unlock(promotion_id, quiet=True)
            raise
        failed = True
        try:
            self._wait_lock("locked")
            yield promotion_id
            failed = False
        finally:
            if self._unlock(promotion_id, quiet=failed):
                try:
                    self._locks.remove(holder)
                except PromoteError:
                    pass  # a stale record is harmless: unlock() checks the lock state first

    def _unlock(self, promotion_id: str, *, quiet: bool) -> bool:
        """Release the lock; True once AIC reports it unlocked (``quiet``: failures → False)."""
        try:
            self._http.request(
                "DELETE",
                f"/environment/promotion/lock/{promotion_id}",
                api_version=_PROMOTION_API,
            )
            self._wait_lock(_UNLOCKED)
        except PromoteError:
            if not quiet:
                raise
            return False
        return True

    def _wait_lock(self, wanted: str) -> None:
        deadline = self._clock() + self._promotion_timeout
        delays = self._delays()
        while True:
            state = self._lock_state()
            result = state.get("result")
            if result == wanted:
                return
            if result == "error":
                raise TenantError(
                    f"locking failed: {state.get('description') or 'lock state error'}",
                    env=self.env,
                    url=self._http.display_url,
                    method="GET",
                    path="/environment/promotion/lock/state",
                )
            if self._clock() >= deadline:
                raise TenantError(
                    f"lock did not reach {wanted!r} within {self._promotion_timeout:.0f}s "
                    f"(still {result!r})",
                    env=self.env,
                    url=self._http.display_url,
                )
            self._sleep(next(delays))

    def _run_promotion(
        self,
        body: Mapping[str, Any],
        *,
        path: str = "/environment/promotion/promote",
        refused: Collection[int] = (),
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start a promotion, dry run or rollback and wait for it: ``(status, report)``.

        AIC reports ``READY`` right after the lock and after every earlier run, so ``READY``
        alone proves nothing: the status and the last report id are read before the start,
        and the wait ends only at ``READY`` with a report whose id is new (after ``RUNNING``
        or a changed ``promotionId``/``timeStamp``, or a report that appeared between two
        polls). That report's ``dryRun`` must match the request.
        """
        status_path = "/environment/promotion/promote"
        before = self._get_polled(status_path) or {}
        old_report = _report_id(self._report_or_none())
        response = self._http.request(
            "POST", path, api_version=_PROMOTION_API, json_body=dict(body), ok=refused
        )
        if response.status_code in refused:
            error = self._http.error("POST", path, response)
            raise BlockedError(f"{self.env}: the platform refused: {error}")
        wanted_dry_run = bool(body.get("dryRun", False))
        deadline = self._clock() + self._promotion_timeout
        delays = self._delays()
        moved = False
        while True:
            status = self._get_polled(status_path) or {}
            if status.get("blockingError"):
                raise self._promotion_error(
                    f"promotion failed with a blocking error: {status.get('message')}; the "
                    "platform may keep the environment locked - check the promotion report"
                )
            state = str(status.get("status", "")).upper()
            if state in ("ERROR", "FAILED"):
                raise self._promotion_error(f"promotion failed: {status.get('message')}")
            moved = moved or state == "RUNNING" or _marks(status) != _marks(before)
            if state == "READY":
                report = self._report_or_none()
                report_id = _report_id(report)
                if report is not None and report_id and report_id != old_report:
                    if bool(report.get("dryRun", False)) != wanted_dry_run:
                        raise self._promotion_error(
                            f"the new report {report_id} is "
                            f"{'a dry run' if report.get('dryRun') else 'not a dry run'}, "
                            f"but {'a dry run' if wanted_dry_run else 'a promotion'} was "
                            "started; check the promotion reports in the admin console"
                        )
                    return status, report
            if self._clock() >= deadline:
                stale = "" if moved else " (never left the status it had before the start)"
                raise TenantError(
                    f"promotion still {state or 'unknown'}{stale} and no new report after "
                    f"{self._promotion_timeout:.0f}s",
                    env=self.env,
                    url=self._http.display_url,
                )
            self._sleep(next(delays))

    def _promotion_error(self, message: str) -> TenantError:
        return TenantError(
            message,
            env=self.env,
            method="GET",
            path="/environment/promotion/promote",
            url=self._http.display_url,
        )

    def _delays(self) -> Iterator[float]:
        """Poll delays: quick at first (short operations finish fast), then every
        ``poll_interval`` seconds."""
        delay = min(0.25, self._poll)
        while True:
            yield delay
            delay = min(delay * 2, self._poll)

    def _report_or_none(self) -> dict[str, Any] | None:
        """The last report (``GET /environment/promotion/report``); ``None`` before any."""
        path = "/environment/promotion/report"
        response = self._http.request("GET", path, api_version=_PROMOTION_API, ok=(404,))
        if response.status_code == 404:
            return None
        body = self._http.json_of(response)
        return body if isinstance(body, dict) else None

    def _get_polled(self, path: str) -> Any:
        """GET while polling: 500s are retried within the error budget (failures the
        client already retried - connection errors, timeouts, 502-504, 429 - are not)."""
        failures = 0
        while True:
            try:
                return self._http.get_json(path, api_version=_PROMOTION_API)
            except TenantError as error:
                failures += 1
                if not _transient(error) or failures > self._budget:
                    raise
                self._sleep(min(self._poll, float(failures)))
