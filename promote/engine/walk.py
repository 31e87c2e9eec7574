"""Apply a plan's stages in chain order (:func:`apply_walk`): approvals first, then one
journal for the run and each stage with changes in turn; the first stage that fails stops the
walk with every environment's state named (applied, partially applied, untouched)."""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from esv import EsvError
from promote.engine.ambient import Ambient, new_run_id
from promote.engine.plan import Plan, Stage
from promote.engine.stage import STEP_WORDS, Progress, apply_stage, stage_changes
from promote.errors import (
    ApplyError,
    BlockedError,
    InterruptedRun,
    LockedError,
    PromoteError,
)
from promote.state.applied import delete_applied
from promote.state.base import StateStore
from promote.state.fingerprints import Fingerprints
from promote.state.history import HistoryRecord, append_history, config_digest, now
from promote.state.journal import Journal
from promote.tenants.base import Tenant
from promote.workspace import Workspace

__all__ = ["WalkResult", "apply_walk", "approval_summary"]


def _approval(plan: Plan, approve: Collection[str], ambient: Ambient) -> list[str]:
    approved = []
    refused = []
    for stage in plan.stages:
        if not (stage.changed and stage.protected):
            continue
        if stage.env in approve:
            approved.append(stage.env)
        elif ambient.confirm is not None and ambient.confirm(
            f"{approval_summary(stage)}\n{stage.env} is protected; apply these changes to it?"
        ):
            approved.append(stage.env)
        else:
            refused.append(stage.env)
    if refused:
        flags = " ".join(f"--approve {env}" for env in refused)
        raise BlockedError(
            f"protected environment{'s' if len(refused) > 1 else ''} "
            f"{', '.join(refused)} need{'s' if len(refused) == 1 else ''} approval; "
            f"review the plan, then run again with {flags}; nothing was changed"
        )
    return approved


_LISTED_ESVS = 8


def approval_summary(stage: Stage) -> str:
    """What applying ``stage`` changes, in a few lines (shown before asking for approval):
    config counts, ESV changes by id (never a value), whether it restarts."""
    counts = {"add": 0, "modify": 0, "delete": 0}
    for diff in stage.config_changes:
        counts[diff.action] += 1
    how = "written directly" if stage.via == "direct" else f"by promotion from {stage.source}"
    lines = [f"{stage.env} <- {stage.source} (protected):"]
    if stage.config_changes:
        lines.append(f"  config: +{counts['add']} ~{counts['modify']} -{counts['delete']} ({how})")
    else:
        lines.append("  config: no changes")
    if stage.esv_changes:
        signs = {"add": "+", "modify": "~", "delete": "-"}
        ids = [f"{signs[c.action]}{c.id}" for c in stage.esv_changes]
        more = len(ids) - _LISTED_ESVS
        listed = ", ".join(ids[:_LISTED_ESVS]) + (f", and {more} more" if more > 0 else "")
        lines.append(f"  ESVs: {len(ids)} to change ({listed})")
    else:
        lines.append("  ESVs: no changes")
    lines.append(f"  restart: {'yes' if stage.restart else 'no'}")
    return "\n".join(lines)


@dataclass(frozen=True)
class WalkResult:
    run_id: str
    applied: tuple[str, ...]
    skipped: tuple[str, ...]
    notes: tuple[str, ...]


def apply_walk(
    workspace: Workspace,
    plan: Plan,
    tenants: Mapping[str, Tenant],
    store: StateStore,
    *,
    approve: Collection[str],
    ambient: Ambient,
    earlier: Journal | None = None,
    run_id: str | None = None,
    fingerprints: Fingerprints,
) -> WalkResult:
    """Apply ``plan``'s stages with changes as run ``run_id`` (default: a new id);
    ``earlier``: the unfinished run this one finishes (its history records include what
    that run changed); ``fingerprints``: for the record of what was applied."""
    if plan.blocked:
        blocked = [s.env for s in plan.stages if s.status == "blocked"]
        raise BlockedError(
            f"blocked by checks in {', '.join(blocked)}; nothing was changed", plan.problems()
        )
    approved = _approval(plan, approve, ambient)
    run_id = run_id or new_run_id(ambient.wall_clock)
    to_apply = [stage for stage in plan.stages if stage.changed]
    skipped = tuple(stage.env for stage in plan.stages if not stage.changed)
    if not to_apply:
        return WalkResult(run_id, (), skipped, ())
    walk = _Walk(
        workspace,
        tenants,
        store,
        _start_journal(store, run_id, plan, to_apply, approved, ambient),
        run_id,
        ambient,
        earlier,
        fingerprints,
        states={stage.env: "in sync (skipped)" for stage in plan.stages},
    )
    walk.states.update({stage.env: "untouched" for stage in to_apply})
    notes: list[str] = []
    applied: list[str] = []
    for stage in to_apply:
        notes += walk.apply(stage, nothing_applied_yet=not applied)
        walk.states[stage.env] = "applied"
        applied.append(stage.env)
    _finish_quietly(walk.journal, "done")
    return WalkResult(run_id, tuple(applied), skipped, tuple(notes))


def _start_journal(
    store: StateStore,
    run_id: str,
    plan: Plan,
    to_apply: Sequence[Stage],
    approved: Sequence[str],
    ambient: Ambient,
) -> Journal:
    """The run's journal, written before any stage changes anything."""
    try:
        return Journal.start(
            store,
            run_id=run_id,
            to=plan.to,
            stages=[stage.env for stage in to_apply],
            approved=approved,
            clock=ambient.wall_clock,
            changes={stage.env: stage_changes(stage) for stage in to_apply},
        )
    except PromoteError as error:
        raise PromoteError(f"{error}; nothing was changed") from None


@dataclass
class _Walk:
    """One run's walk: what each stage's apply needs, and the state each environment is in."""

    workspace: Workspace
    tenants: Mapping[str, Tenant]
    store: StateStore
    journal: Journal
    run_id: str
    ambient: Ambient
    earlier: Journal | None
    fingerprints: Fingerprints
    states: dict[str, str]

    def apply(self, stage: Stage, *, nothing_applied_yet: bool) -> list[str]:
        """Apply one stage and mark it done in the journal; its notes. A failure records
        what the stage did, finishes the journal and raises with every environment's state."""
        done = Progress()
        try:
            notes = apply_stage(
                self.workspace,
                stage,
                self.tenants,
                self.journal,
                self.run_id,
                done,
                self.ambient,
                self.earlier,
                self.fingerprints,
            )
            self.journal.stage_done(stage.env)
            return notes
        except KeyboardInterrupt:
            self.states[stage.env] = _partial(done, "interrupted")
            _forget_applied_quietly(self.store, stage.env, done)
            _finish_quietly(self.journal, "interrupted")
            raise InterruptedRun(
                _state_text("interrupted", self.states)
                + "\nthe next 'promote run' finishes this run"
            ) from None
        except (PromoteError, EsvError) as error:
            self.states[stage.env] = _partial(done)
            tenant = self.tenants[stage.env]
            _record_failed(self.store, stage, tenant, self.run_id, done, self.ambient)
            _finish_quietly(self.journal, "failed")
            if isinstance(error, LockedError) and nothing_applied_yet and not done.done:
                raise  # locked before anything changed: exit 4, as SPEC 4.1 says
            raise ApplyError(_stage_failure(stage.env, error), self.states) from error
        except Exception as error:
            # A bug, or an OSError from a tenant: its text may hold a value, so only its type
            # is named (--debug shows the chained traceback). The journal stays unfinished.
            self.states[stage.env] = _partial(done)
            _forget_applied_quietly(self.store, stage.env, done)
            _finish_quietly(self.journal, "aborted", error=type(error).__name__)
            raise ApplyError(
                f"{stage.env} failed: {_unexpected(error)}; this is a bug in promote (rerun "
                "with --debug for the traceback and report it); the next 'promote run' "
                "finishes this run",
                self.states,
            ) from error


def _record_failed(
    store: StateStore,
    stage: Stage,
    tenant: Tenant,
    run_id: str,
    progress: Progress,
    ambient: Ambient,
) -> None:
    """Record what a stage that failed part-way wrote (its completed steps), marked failed,
    so the history keeps it (the next run finds those changes in sync). Quiet: the failure
    matters more; a record that cannot be written leaves the journal (``failed``) to tell."""
    if not progress.done:
        return
    changes = stage_changes(stage)
    config = "config" in progress.completed
    try:
        held = tenant.read_config(sorted(tenant.list_config_ids()))
        digest = config_digest(held)
    except (PromoteError, EsvError):
        digest = ""
    record = HistoryRecord(
        time=now(ambient.wall_clock),
        run_id=run_id,
        env=stage.env,
        action="promote",
        source=stage.source,
        config_added=tuple(changes["config_added"]) if config else (),
        config_modified=tuple(changes["config_modified"]) if config else (),
        config_deleted=tuple(changes["config_deleted"]) if config else (),
        esvs=tuple(changes["esvs"]) if "esvs" in progress.completed else (),
        restarted="restart" in progress.completed,
        report_id=progress.report_id,
        config_digest=digest,
        notes=(_partial(progress),),
        failed=True,
    )
    try:
        append_history(store, record)
        # Part of the stage was written: what promote applied there is no longer one known
        # state, so drift is not told until the next stage applied in full.
        delete_applied(store, stage.env)
    except PromoteError:
        pass


def _forget_applied_quietly(store: StateStore, env: str, progress: Progress) -> None:
    # Something of the stage was written: its record of what was applied no longer holds.
    if progress.done:
        try:
            delete_applied(store, env)
        except PromoteError:
            pass


def _partial(progress: Progress, how: str = "failed") -> str:
    failed = f"{how} during {STEP_WORDS.get(progress.step or '', progress.step)}"
    if not progress.done:
        return f"untouched ({failed})" if progress.step else "untouched"
    return f"partially applied ({'; '.join(progress.done)}; {failed})"


def _stage_failure(env: str, error: Exception) -> str:
    """``<env> failed: <error>``, naming ``env`` (and its tenant URL) once: a leading
    ``<env>: `` or ``<env> (<url>): `` of the error's text is dropped, the URL moving to the
    head (``dev (http://host/dev) failed: ...``) and its repeats inside the text dropped too."""
    text = str(error)
    if text.startswith(f"{env}: "):
        return f"{env} failed: {text[len(env) + 2 :]}"
    found = re.match(rf"{re.escape(env)} \(([^()\s]+)\): ", text)
    if found is None:
        return f"{env} failed: {text}"
    rest = text[found.end() :].replace(found.group(0), "")
    return f"{env} ({found.group(1)}) failed: {rest}"


def _state_text(head: str, states: Mapping[str, str]) -> str:
    return "\n".join([head] + [f"  {env}: {state}" for env, state in states.items()])


def _finish_quietly(journal: Journal, status: Any, **extra: Any) -> None:
    # The run's outcome matters more than its journal; a journal that cannot be closed
    # is found as unfinished by the next run, which re-plans (idempotent).
    try:
        journal.finish(status, **extra)
    except PromoteError:
        pass


def _unexpected(error: Exception) -> str:
    """An unexpected exception in words that cannot hold a value: its type, and for an
    ``OSError`` with an error number the system's text for that number."""
    text = f"internal error ({type(error).__name__}"
    if isinstance(error, OSError) and isinstance(error.errno, int):
        text += f": {os.strerror(error.errno)}"
    return text + ")"
