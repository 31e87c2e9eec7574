"""Finish the runs a killed or interrupted process left unfinished (:func:`recover`): re-plan
each one's walk from the tenants' state (every step is idempotent), apply what is left, and
record what the dead run changed; release the promotion locks it held."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from promote.engine.ambient import Ambient, Planning, plan_for
from promote.engine.walk import WalkResult, apply_walk
from promote.errors import (
    ApplyError,
    BlockedError,
)
from promote.state.base import StateStore
from promote.state.history import HistoryRecord, append_history, config_digest, now, read_history
from promote.state.journal import Journal, unfinished_runs
from promote.tenants.base import Tenant
from promote.workspace import Workspace

__all__ = ["recover", "source_of"]


def recover(
    workspace: Workspace,
    tenants: Mapping[str, Tenant],
    ambient: Ambient,
    store: StateStore,
    planning: Planning,
) -> tuple[list[str], dict[str, str]]:
    """Finish every unfinished run; notes for people, and the environments finished, each
    with the id of the run that left it unfinished."""
    notes = []
    recovered: dict[str, str] = {}
    for journal in unfinished_runs(store, clock=ambient.wall_clock):
        what = journal.describe()
        if journal.to not in workspace.chain:
            journal.finish("recovered", recovery="abandoned: its environment left the chain")
            notes.append(f"found unfinished {what}; {journal.to} is no longer in the chain")
            continue
        released = _release_dead_locks(workspace, journal, tenants)
        if released:
            what += f"; released the promotion lock it left on {', '.join(released)}"
        try:
            # What the dead run changed is promote's own doing, not drift.
            finishing = replace(planning, accept_drift=tuple(env for env, _ in journal.stages()))
            plan = plan_for(workspace, journal.to, tenants, ambient, finishing)
            result = apply_walk(
                workspace,
                plan,
                tenants,
                store,
                approve=journal.approved,
                ambient=replace(ambient, confirm=None),
                earlier=journal,
                fingerprints=planning.fingerprints,
            )
        except BlockedError as error:
            raise BlockedError(
                f"found unfinished {what}; it cannot be finished: {error.args[0]}",
                error.problems,
            ) from None
        except ApplyError as error:
            raise ApplyError(
                f"found unfinished {what}; finishing it failed: {error.args[0].splitlines()[0]}",
                error.states,
            ) from error
        recorded = _record_finished_elsewhere(workspace, journal, tenants, result, ambient, store)
        journal.finish("recovered", recovery=f"finished by run {result.run_id}")
        applied = ", ".join(result.applied) or "nothing left to apply"
        notes.append(f"found unfinished {what}; finished it (applied: {applied})")
        for env in [*result.applied, *recorded]:
            recovered.setdefault(env, journal.run_id)
    return notes, recovered


def _record_finished_elsewhere(
    workspace: Workspace,
    journal: Journal,
    tenants: Mapping[str, Tenant],
    result: WalkResult,
    ambient: Ambient,
    store: StateStore,
) -> list[str]:
    # A stage the dead run changed but did not record, which the finishing run found in sync
    # (killed during verify or record): its changes go to the history under the dead run's id.
    # Returns the environments recorded.
    recorded = {r.env for r in read_history(store) if r.run_id == journal.run_id}
    written = []
    for env, status in journal.stages():
        changes = journal.begun_changes(env)
        if status == "done" or env in recorded or env in result.applied or not changes:
            continue
        tenant = tenants[env]
        held = tenant.read_config(sorted(tenant.list_config_ids()))
        append_history(
            store,
            HistoryRecord(
                time=now(ambient.wall_clock),
                run_id=journal.run_id,
                env=env,
                action="promote",
                source=source_of(workspace, env),
                config_added=tuple(changes.get("config_added", ())),
                config_modified=tuple(changes.get("config_modified", ())),
                config_deleted=tuple(changes.get("config_deleted", ())),
                esvs=tuple(changes.get("esvs", ())),
                restarted=bool(changes.get("restart")),
                config_digest=config_digest(held),
                notes=(f"recorded by run {result.run_id}, which finished this run",),
            ),
        )
        written.append(env)
    return written


def source_of(workspace: Workspace, env: str) -> str:
    return workspace.lower(env) or "config"


def _release_dead_locks(
    workspace: Workspace, journal: Journal, tenants: Mapping[str, Tenant]
) -> list[str]:
    # A run killed inside a promotion leaves that environment locked in its own name. We hold
    # the workspace run lock, so that run is dead: release the locks it holds.
    holder = f"promote run {journal.run_id}"
    released = []
    for env in workspace.walk(journal.to):
        tenant = tenants[env]
        state = tenant.lock_state()
        if state.locked and state.holder == holder:
            tenant.unlock(holder)
            released.append(env)
    return released
