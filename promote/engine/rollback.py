"""Undo an environment's last promotion (:func:`rollback`), after saying what it restores and
deletes (:func:`rollback_preview`), and record it in the history."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from esv import EsvError
from esv.objects import content_digest
from promote.email.checks import EMAIL_OBJECT
from promote.engine.ambient import Ambient, new_run_id, open_run_store
from promote.errors import (
    BlockedError,
    PromoteError,
)
from promote.state.applied import read_applied, write_applied
from promote.state.base import StateStore
from promote.state.history import HistoryRecord, append_history, config_digest, now
from promote.state.journal import run_lock
from promote.tenants.base import PromotionReport, Tenant
from promote.workspace import Workspace

__all__ = ["rollback", "rollback_preview"]


def rollback(
    workspace: Workspace,
    env: str,
    tenants: Mapping[str, Tenant],
    *,
    approve: Collection[str] = (),
    ambient: Ambient | None = None,
    notes: list[str] | None = None,
    store: StateStore | None = None,
) -> HistoryRecord:
    """Undo ``env``'s last promotion (``tenant.rollback``) and record it in the history.

    An environment that receives config directly (mutable, or a tenant without promotions)
    keeps no rollback point: ``BlockedError`` saying how to undo instead. First, what the
    rollback restores and deletes (:func:`rollback_preview`) goes into ``notes``, or into
    the question when a person is asked: a ``protected`` environment is rolled back only when
    ``approve`` names it or ``ambient.confirm`` says yes; otherwise ``BlockedError`` (exit 3)
    and nothing changes.
    """
    ambient = ambient or Ambient()
    _check_names(workspace, env, approve)
    run_id = new_run_id(ambient.wall_clock)
    store = store or open_run_store(workspace, ambient)
    with run_lock(
        store, env=env, run_id=run_id, run=f"rollback of {env}", clock=ambient.wall_clock
    ):
        tenant = tenants[env]
        if workspace.is_mutable(env) or not tenant.capabilities.promotion:
            raise BlockedError(_direct_rollback_text(workspace, env))
        preview = rollback_preview(workspace, env, tenant)
        if not preview:
            # Checked before asking for approval: there is nothing to review or approve.
            raise BlockedError(
                f"{env}: nothing to roll back: no promotion into this environment that has "
                "not been rolled back already; nothing was changed"
            )
        _approve(workspace, env, preview, approve, ambient, notes)
        report = tenant.rollback(holder=f"promote rollback {run_id}")
        return _record(store, env, tenant, report, run_id, ambient)


def _check_names(workspace: Workspace, env: str, approve: Collection[str]) -> None:
    if env not in workspace.chain:
        raise BlockedError(
            f"unknown environment {env!r}; the chain is {' -> '.join(workspace.chain)}"
        )
    unknown = sorted(set(approve) - set(workspace.chain))
    if unknown:
        raise BlockedError(
            f"--approve names environments not in the chain: {', '.join(unknown)}; "
            f"the chain is {' -> '.join(workspace.chain)}"
        )


def _approve(
    workspace: Workspace,
    env: str,
    preview: list[str],
    approve: Collection[str],
    ambient: Ambient,
    notes: list[str] | None,
) -> None:
    """Show what the rollback does (in the question, or in ``notes``); a protected
    environment goes on only when ``approve`` names it or the person says yes."""
    protected = workspace.environments[env].protected
    if protected and env not in approve and ambient.confirm is not None:
        if not ambient.confirm("\n".join([*preview, f"{env} is protected; roll it back?"])):
            raise BlockedError(f"{env} was not rolled back (not approved); nothing was changed")
        return
    if notes is not None:
        notes.extend(preview)
    if protected and env not in approve:
        raise BlockedError(
            f"{env} is protected: rolling it back needs approval; review what it "
            f"restores, then run again with --approve {env}; nothing was changed"
        )


def _record(
    store: StateStore,
    env: str,
    tenant: Tenant,
    report: PromotionReport,
    run_id: str,
    ambient: Ambient,
) -> HistoryRecord:
    """The rollback in the history, and what the tenant now holds as what was applied (the
    rollback is promote's doing, not drift)."""
    held = tenant.read_config(sorted(tenant.list_config_ids()))
    record = HistoryRecord(
        time=now(ambient.wall_clock),
        run_id=run_id,
        env=env,
        action="rollback",
        source=report.source or "",
        config_added=tuple(report.added),
        config_modified=tuple(report.modified),
        config_deleted=tuple(report.deleted),
        report_id=report.id,
        config_digest=config_digest(held),
    )
    append_history(store, record)
    before = read_applied(store, env)
    if before is not None:
        digests = {key: content_digest(value) for key, value in held.items()}
        write_applied(store, env, replace(before, config=held, secret_paths={}, digests=digests))
    return record


def _last_promotion(reports: Sequence[PromotionReport]) -> PromotionReport | None:
    """The promotion a rollback undoes: the last one not rolled back already (a rollback
    report undoes the promotion its ``extra["rolled_back"]`` names, else the latest)."""
    standing: list[PromotionReport] = []
    for report in reports:
        if report.dry_run:
            continue
        if report.type == "promotion":
            standing.append(report)
            continue
        undone = report.extra.get("rolled_back")
        match = [i for i, p in enumerate(standing) if p.id == undone]
        if match:
            del standing[match[-1]]
        elif standing:
            standing.pop()
    return standing[-1] if standing else None


_LISTED_OBJECTS = 10


def _listed(ids: Sequence[str]) -> str:
    more = len(ids) - _LISTED_OBJECTS
    return ", ".join(ids[:_LISTED_OBJECTS]) + (f", and {more} more" if more > 0 else "")


def rollback_preview(workspace: Workspace, env: str, tenant: Tenant) -> list[str]:
    """What rolling ``env`` back does, in lines for people (read from the tenant's report of
    the promotion it undoes): what it restores and deletes, that ESVs stay as they are, and
    a warning when it leaves an environment that is not mutable without ``external.email``.
    No lines when the reports show no promotion to undo."""
    try:
        last = _last_promotion(tenant.reports())
    except (PromoteError, EsvError) as error:
        reason = " ".join(str(error).split())
        last, lines = None, [f"{env}: its promotion reports cannot be read ({reason})"]
    else:
        if last is None:
            return []  # nothing to roll back: the tenant's rollback says so
        lines = []
    if last is None:
        lines.append(
            f"{env}: rolling back its last promotion; what it restores is the tenant's to tell"
        )
    else:
        source = f" from {last.source}" if last.source else ""
        when = f", {last.created}" if last.created else ""
        lines.append(f"{env}: rolling back its last promotion{source} (report {last.id}{when}):")
        restored = [*last.modified, *last.deleted]
        lines.append(f"  restores: {_listed(sorted(restored)) if restored else 'nothing'}")
        lines.append(f"  deletes: {_listed(sorted(last.added)) if last.added else 'nothing'}")
    lines.append(
        f"  ESVs are not rolled back: {env} keeps the ESV values it holds now "
        "(change them in its environment file and run again if needed)"
    )
    if (
        last is not None
        and EMAIL_OBJECT in last.added
        and not workspace.is_mutable(env)
        and tenant.capabilities.builtin_email != "platform"
    ):
        lines.append(
            f"  warning: {env} would be left without {EMAIL_OBJECT}; it is not mutable, so the "
            "built-in email provider cannot serve it: it sends no email until its next "
            "promotion"
        )
    return lines


def _direct_rollback_text(workspace: Workspace, env: str) -> str:
    lower = workspace.lower(env)
    source = "config" if lower is None else f"{lower}'s config"
    index = workspace.chain.index(env)
    above = workspace.chain[index + 1] if index + 1 < len(workspace.chain) else None
    text = (
        f"cannot roll back {env}: direct writes keep no rollback point. {env} receives "
        f"{source} directly (mutable); revert config/ and run again"
    )
    if above is not None:
        text += f", or roll back the stage above (promote rollback --env {above})"
    return text + "; nothing was changed"
