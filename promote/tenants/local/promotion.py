"""Promotions into the local tenant: one lock per environment, missing ESVs refused, a report
and the previous values of what changed kept for rollback."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from esv import Problem
from esv.errors import MISSING_ESV
from esv.references import index_references
from promote.errors import BlockedError, LockedError
from promote.tenants.base import (
    JSON,
    LockState,
    PromotionReport,
    Tenant,
)
from promote.tenants.local.config import (
    ConfigObjects,
    _changes,
    _replace_config,
    _select_all_config,
    _select_config,
)

__all__ = ["Promotions"]


class Promotions(ConfigObjects):
    """Lock and promotion: ``lock``, ``unlock``, ``lock_state``, ``promote_from``, ``rollback``,
    ``reports``."""

    def lock(self, holder: str) -> str:
        """Take the promotion lock for ``holder``; returns its promotion id.

        Reentrant: the same holder gets the same id back. Held by another holder:
        ``LockedError``. A lock is never broken by age; see :meth:`force_unlock`.
        """
        with self._write("take the promotion lock") as conn:
            row = conn.execute("SELECT holder, promotion_id, locked_at FROM lock").fetchone()
            if row is not None:
                if row[0] == holder:
                    return str(row[1])
                raise LockedError(
                    self.env,
                    row[0],
                    f"since {row[2]}; if that promotion is no longer running, release the "
                    "lock explicitly (force unlock)",
                )
            promotion_id = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO lock (id, holder, promotion_id, locked_at) VALUES (1, ?, ?, ?)",
                (holder, promotion_id, self._now()),
            )
            return promotion_id

    def unlock(self, holder: str) -> None:
        """Release ``holder``'s lock (not locked: no-op; another holder's: ``LockedError``)."""
        with self._write("release the promotion lock") as conn:
            row = conn.execute("SELECT holder FROM lock").fetchone()
            if row is None:
                return
            if row[0] != holder:
                raise LockedError(self.env, row[0], f"{holder} cannot release another's lock")
            conn.execute("DELETE FROM lock")

    def force_unlock(self) -> LockState:
        """Break the lock whoever holds it (an explicit user action); returns what it was."""
        with self._write("break the promotion lock") as conn:
            row = conn.execute("SELECT holder FROM lock").fetchone()
            conn.execute("DELETE FROM lock")
        return LockState(locked=row is not None, holder=row[0] if row else None)

    def lock_state(self) -> LockState:
        """Whether the promotion lock is held, and by whom."""
        with self._read("read the promotion lock") as conn:
            row = conn.execute("SELECT holder FROM lock").fetchone()
        return LockState(locked=row is not None, holder=row[0] if row else None)

    @contextmanager
    def _locked(self, holder: str) -> Iterator[str]:
        """Hold the lock for the block; release it after only if this block took it."""
        before = self.lock_state()
        promotion_id = self.lock(holder)
        try:
            yield promotion_id
        finally:
            if not (before.locked and before.holder == holder):
                self.unlock(holder)

    def promote_from(
        self, lower: Tenant, *, holder: str, description: str, dry_run: bool = False
    ) -> PromotionReport:
        """Make this environment's config equal ``lower``'s, under the promotion lock.

        Refused with ``BlockedError`` (nothing written, dry run or not) when the incoming
        config references ESVs neither defined here nor defaulted; lists all of them with
        object and JSON path. Otherwise replaces the config, keeps the previous values of what
        changed and the report, in one transaction. ``dry_run`` computes the report only.
        The lock is reentrant: a holder that locked before keeps its lock afterwards.
        """
        if lower.env == self.env:  # the same environment, whichever object holds it
            raise BlockedError(f"cannot promote environment {self.env!r} from itself")
        with self._locked(holder) as promotion_id:
            incoming = lower.read_config(lower.list_config_ids())
            texts = {key: self._encode(key, value) for key, value in incoming.items()}
            extra = {"description": description, "holder": holder, "promotion_id": promotion_id}
            if dry_run:
                with self._read("check a promotion") as conn:
                    self._check_missing_esvs(conn, incoming, lower.env)
                    current = _select_all_config(conn)
                return self._report(current, texts, lower.env, extra, dry_run=True)
            with self._write("promote") as conn:
                self._check_missing_esvs(conn, incoming, lower.env)
                current = _select_all_config(conn)
                report = self._report(current, texts, lower.env, extra, dry_run=False)
                self._store_report(conn, report)
                conn.executemany(
                    "INSERT INTO snapshots (report_id, object_id, json) VALUES (?, ?, ?)",
                    [
                        (report.id, key, current.get(key))
                        for key in (*report.added, *report.modified, *report.deleted)
                    ],
                )
                _replace_config(
                    conn,
                    {key: texts[key] for key in (*report.added, *report.modified)},
                    report.deleted,
                )
                return report

    def _report(
        self,
        current: Mapping[str, str],
        incoming: Mapping[str, str],
        source: str,
        extra: Mapping[str, JSON],
        *,
        dry_run: bool = False,
        kind: Literal["promotion", "rollback"] = "promotion",
    ) -> PromotionReport:
        """The report of turning ``current`` into ``incoming`` (JSON texts by id)."""
        added, modified, deleted = _changes(current, incoming)
        return PromotionReport(
            id=str(uuid.uuid4()),
            type=kind,
            env=self.env,
            source=source,
            created=self._now(),
            added=added,
            modified=modified,
            deleted=deleted,
            dry_run=dry_run,
            extra=dict(extra),
        )

    def _check_missing_esvs(
        self, conn: sqlite3.Connection, incoming: Mapping[str, JSON], source: str
    ) -> None:
        defined = {row[0] for row in conn.execute("SELECT id FROM variables")}
        defined |= {row[0] for row in conn.execute("SELECT id FROM secrets")}
        missing = [
            ref
            for ref in index_references(incoming)
            if not ref.defaulted and ref.esv_id not in defined
        ]
        if not missing:
            return
        ids = sorted({ref.esv_id for ref in missing})
        problems = [
            Problem(
                location=ref.object_id,
                path=ref.path,
                message=f"{ref.esv_id} is not defined in {self.env}",
                esv_id=ref.esv_id,
                hint=f"define it in the {self.env} environment file, or give the placeholder "
                "a default",
                code=MISSING_ESV,
            )
            for ref in missing
        ]
        raise BlockedError(
            f"{self.env}: cannot promote from {source}: {len(ids)} ESV(s) missing "
            f"({', '.join(ids)}); nothing was changed",
            problems,
        )

    def rollback(self, *, holder: str) -> PromotionReport:
        """Restore what the last promotion not yet rolled back changed; records a report.

        Nothing to roll back: ``BlockedError``. Takes the lock like a promotion.
        """
        with self._locked(holder), self._write("roll back") as conn:
            row = conn.execute(
                "SELECT id, source FROM reports WHERE type = 'promotion' AND rolled_back = 0 "
                "ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise BlockedError(
                    f"{self.env}: nothing to roll back: no promotion into this environment "
                    "that has not been rolled back already"
                )
            promotion, source = row
            previous: dict[str, str | None] = dict(
                conn.execute(
                    "SELECT object_id, json FROM snapshots WHERE report_id = ?", (promotion,)
                ).fetchall()
            )
            current = _select_config(conn, previous)
            restore = {key: text for key, text in previous.items() if text is not None}
            extra = {"holder": holder, "rolled_back": promotion}
            report = self._report(current, restore, source, extra, kind="rollback")
            self._store_report(conn, report)
            conn.execute("UPDATE reports SET rolled_back = 1 WHERE id = ?", (promotion,))
            _replace_config(
                conn,
                {key: restore[key] for key in (*report.added, *report.modified)},
                report.deleted,
            )
            return report

    def _store_report(self, conn: sqlite3.Connection, report: PromotionReport) -> None:
        body = {
            "added": list(report.added),
            "modified": list(report.modified),
            "deleted": list(report.deleted),
            "dry_run": report.dry_run,
            "missing_esvs": list(report.missing_esvs),
            "extra": dict(report.extra),
        }
        conn.execute(
            "INSERT INTO reports (id, type, source, created, body) VALUES (?, ?, ?, ?, ?)",
            (report.id, report.type, report.source, report.created, json.dumps(body)),
        )

    def reports(self) -> list[PromotionReport]:
        """Every promotion and rollback report, oldest first."""
        with self._read("read reports") as conn:
            rows = conn.execute(
                "SELECT id, type, source, created, body FROM reports ORDER BY seq"
            ).fetchall()
        result = []
        for report_id, kind, source, created, body_text in rows:
            body: dict[str, Any] = json.loads(body_text)
            result.append(
                PromotionReport(
                    id=report_id,
                    type=kind,
                    env=self.env,
                    source=source,
                    created=created,
                    added=tuple(body["added"]),
                    modified=tuple(body["modified"]),
                    deleted=tuple(body["deleted"]),
                    dry_run=bool(body["dry_run"]),
                    missing_esvs=tuple(body["missing_esvs"]),
                    extra=body["extra"],
                )
            )
        return result
