"""Apply a plan: the only engine code that changes a tenant.

``run`` holds the workspace run lock, finishes any unfinished run it finds (and says so),
checks every stage of the walk before changing anything (blocked -> ``BlockedError``, exit 3;
protected and not approved -> ``BlockedError``), then applies stage by stage in chain order,
skipping in-sync stages: ESVs, config (direct writes or promotion), restart hook + restart and
wait, check written ESVs are loaded, verify gates, history. The journal is written before each
step. The first failing stage stops the walk with ``ApplyError`` naming every environment's
state: applied, partially applied (what), or untouched.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any

from esv import EsvError, Problem, SecretValue
from esv.envfile import EnvironmentFile, Secret, SecretSource, read_secret
from promote.clock import WallClock, utc_now
from promote.email import EMAIL_OBJECT, Transports, VerifyContext, run_verify
from promote.engine.drift import mask_secret_paths
from promote.engine.hooks import PostHook, run_restart_hook
from promote.engine.plan import Plan, Stage, build_plan
from promote.engine.render import PLAN_FORMAT, plan_to_json
from promote.errors import (
    ApplyError,
    BlockedError,
    InterruptedRun,
    LockedError,
    PromoteError,
    StalePlanError,
)
from promote.files import Appender, Writer, append_line, atomic_write
from promote.state.applied import Applied, delete_applied, read_applied, write_applied
from promote.state.base import StateStore
from promote.state.factory import open_store
from promote.state.fingerprints import Fingerprints, fingerprints_for
from promote.state.history import HistoryRecord, append_history, config_digest, now, read_history
from promote.state.journal import Journal, prune_finished, run_lock, unfinished_runs
from promote.tenants.base import JSON, PromotionReport, SecretState, Tenant
from promote.workspace import Workspace

__all__ = [
    "Ambient",
    "RunResult",
    "approval_summary",
    "check_saved_plan",
    "rollback",
    "rollback_preview",
    "run",
    "run_plan",
]

DEFAULT_RESTART_TIMEOUT = 600.0
"""Seconds to wait for a restart to be ready when ``tenant.restart_timeout`` is not set."""
POLL_SECONDS = 2.0

Step = Callable[[str, str], None]
"""Called before each step with ``(env, step)``; tests raise from it to simulate a crash."""


@dataclass(frozen=True)
class Ambient:
    """Everything a run takes from its surroundings; tests pass their own."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Callable[[], float] = time.monotonic
    """Measures waits (monotonic seconds)."""
    wall_clock: WallClock = utc_now
    """The time of run ids, journals, history records and plans."""
    sleep: Callable[[float], None] = time.sleep
    confirm: Callable[[str], bool] | None = None
    """Asks a person (a TTY) to approve a protected environment; ``None``: nobody to ask."""
    progress: Callable[[str], None] | None = None
    """Receives progress lines during long waits (the CLI shows them on a TTY only)."""
    before_step: Step | None = None
    write: Writer = atomic_write
    """Writes the local store's files; tests pass one that fails like a full disk."""
    append: Appender = append_line
    """Appends the local store's history lines; tests pass one that fails like a full disk."""
    post: PostHook | None = None
    poll_seconds: float = POLL_SECONDS
    transports: Transports | None = None
    """How verify gates reach mail servers (``None``: the network, verifying certificates)."""


@dataclass(frozen=True)
class RunResult:
    """What a run did."""

    run_id: str
    plan: Plan
    applied: tuple[str, ...]
    skipped: tuple[str, ...]
    notes: tuple[str, ...] = ()
    """Human lines: recovered runs, hook and verify summaries."""
    recovered: Mapping[str, str] = field(default_factory=dict)
    """Environments an unfinished run left changed that this run finished first (applied
    or recorded), each with the id of that unfinished run."""


def _new_run_id(clock: WallClock) -> str:
    stamp = clock().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def run(
    workspace: Workspace,
    to: str,
    tenants: Mapping[str, Tenant],
    *,
    approve: Collection[str] = (),
    saved_plan: Mapping[str, Any] | None = None,
    ambient: Ambient | None = None,
    store: StateStore | None = None,
    accept_drift: Collection[str] = (),
) -> RunResult:
    """Carry config and ESVs up the chain to ``to``; see the module docstring.

    ``saved_plan``: a JSON plan (``plan --format json``) to apply exactly; refused with
    ``StalePlanError`` when any environment changed since it was made. ``store``: where the
    lock, journals, history and records of what was applied live (default: the workspace's,
    :func:`open_store`); it is locked before any tenant is touched. ``accept_drift``:
    environments whose changes made outside promote are put back even under
    ``on_drift: block``.
    """
    ambient = ambient or Ambient()
    store = store or _store(workspace, ambient)
    unknown_drift = sorted(set(accept_drift) - set(workspace.chain))
    if unknown_drift:
        raise BlockedError(
            f"--accept-drift names environments not in the chain: {', '.join(unknown_drift)}; "
            f"the chain is {' -> '.join(workspace.chain)}"
        )
    planning = _Planning(store, _fingerprints(tenants, store, ambient), tuple(accept_drift))
    unknown = sorted(set(approve) - set(workspace.chain))
    if unknown:
        raise BlockedError(
            f"--approve names environments not in the chain: {', '.join(unknown)}; "
            f"the chain is {' -> '.join(workspace.chain)}"
        )
    workspace.walk(to)
    run_id = _new_run_id(ambient.wall_clock)
    with run_lock(store, env=to, run_id=run_id, run=f"run to {to}", clock=ambient.wall_clock):
        notes, recovered = _recover(workspace, tenants, ambient, store, planning)
        plan = _plan(workspace, to, tenants, ambient, planning)
        if saved_plan is not None:
            check_saved_plan(saved_plan, plan)
        result = _apply(
            workspace,
            plan,
            tenants,
            store,
            approve=approve,
            ambient=ambient,
            run_id=run_id,
            fingerprints=planning.fingerprints,
        )
        prune_finished(store)
    return RunResult(
        result.run_id,
        plan,
        result.applied,
        result.skipped,
        tuple(notes) + result.notes,
        recovered,
    )


def run_plan(
    workspace: Workspace,
    saved_plan: Mapping[str, Any],
    tenants: Mapping[str, Tenant],
    *,
    approve: Collection[str] = (),
    ambient: Ambient | None = None,
    store: StateStore | None = None,
    accept_drift: Collection[str] = (),
) -> RunResult:
    """``run --plan FILE``: apply exactly ``saved_plan`` (its ``to``), or refuse if stale."""
    if not isinstance(saved_plan, Mapping) or saved_plan.get("format") != PLAN_FORMAT:
        raise BlockedError(
            f"not a promote plan: expected a JSON object with format {PLAN_FORMAT!r}; "
            "make one with: promote plan --to ENV --format json --out FILE"
        )
    to = saved_plan.get("to")
    if not isinstance(to, str):
        raise BlockedError("the plan has no 'to' environment; make it again with promote plan")
    return run(
        workspace,
        to,
        tenants,
        approve=approve,
        saved_plan=saved_plan,
        ambient=ambient,
        store=store,
        accept_drift=accept_drift,
    )


def _store(workspace: Workspace, ambient: Ambient) -> StateStore:
    return open_store(workspace, write=ambient.write, append=ambient.append)


@dataclass(frozen=True)
class _Planning:
    """What every plan of one run is made with."""

    store: StateStore
    fingerprints: Fingerprints
    accept_drift: tuple[str, ...]


def _fingerprints(
    tenants: Mapping[str, Tenant], store: StateStore, ambient: Ambient
) -> Fingerprints:
    # The tenants' own (opened with the workspace's key), so the plan and the tenants agree.
    found = getattr(tenants, "fingerprints", None)
    return found if isinstance(found, Fingerprints) else fingerprints_for(store, ambient.environ)


def _plan(
    workspace: Workspace,
    to: str,
    tenants: Mapping[str, Tenant],
    ambient: Ambient,
    planning: _Planning,
) -> Plan:
    return build_plan(
        workspace,
        to,
        tenants,
        environ=ambient.environ,
        store=planning.store,
        fingerprints=planning.fingerprints,
        accept_drift=planning.accept_drift,
    )


def check_saved_plan(saved: Mapping[str, Any], fresh: Plan) -> None:
    """Refuse (``StalePlanError``) unless ``fresh`` is the plan ``saved`` describes."""
    problems: list[Problem] = []
    fresh_json = plan_to_json(fresh)
    listed = saved.get("stages")
    stages = listed if isinstance(listed, list) else []
    saved_stages = {s.get("env"): s for s in stages if isinstance(s, Mapping)}
    fresh_stages = {s["env"]: s for s in fresh_json["stages"]}
    if list(saved_stages) != list(fresh_stages):
        problems.append(
            Problem(
                "plan",
                "stages",
                f"the plan walks {', '.join(map(str, saved_stages))} but the chain now walks "
                f"{', '.join(fresh_stages)}",
            )
        )
    for env, now_stage in fresh_stages.items():
        then = saved_stages.get(env)
        if then is None:
            continue
        prints = then.get("fingerprint")
        prints = prints if isinstance(prints, Mapping) else {}
        if prints.get("tenant") != now_stage["fingerprint"]["tenant"]:
            problems.append(
                Problem(env, "", "the tenant changed since the plan was made (config or ESVs)")
            )
        elif prints.get("inputs") != now_stage["fingerprint"]["inputs"]:
            problems.append(
                Problem(
                    env,
                    "",
                    "the workspace (config/, its environment file or a secret's value) changed",
                )
            )
        elif any(then.get(key) != now_stage[key] for key in ("config_changes", "esv_changes")):
            problems.append(Problem(env, "", "the changes differ from the plan"))
    if problems:
        raise StalePlanError(
            "the plan is stale: environments changed since it was made; nothing was changed."
            " Make a new plan and review it",
            problems,
        )


def _recover(
    workspace: Workspace,
    tenants: Mapping[str, Tenant],
    ambient: Ambient,
    store: StateStore,
    planning: _Planning,
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
            plan = _plan(workspace, journal.to, tenants, ambient, finishing)
            result = _apply(
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
    result: _Applied,
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
                source=_source_of(workspace, env),
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


def _source_of(workspace: Workspace, env: str) -> str:
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
class _Applied:
    run_id: str
    applied: tuple[str, ...]
    skipped: tuple[str, ...]
    notes: tuple[str, ...]


def _apply(
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
) -> _Applied:
    """Apply ``plan``'s stages with changes as run ``run_id`` (default: a new id);
    ``earlier``: the unfinished run this one finishes (its history records include what
    that run changed); ``fingerprints``: for the record of what was applied."""
    if plan.blocked:
        blocked = [s.env for s in plan.stages if s.status == "blocked"]
        raise BlockedError(
            f"blocked by checks in {', '.join(blocked)}; nothing was changed", plan.problems()
        )
    approved = _approval(plan, approve, ambient)
    run_id = run_id or _new_run_id(ambient.wall_clock)
    to_apply = [stage for stage in plan.stages if stage.changed]
    skipped = tuple(stage.env for stage in plan.stages if not stage.changed)
    if not to_apply:
        return _Applied(run_id, (), skipped, ())
    try:
        journal = Journal.start(
            store,
            run_id=run_id,
            to=plan.to,
            stages=[stage.env for stage in to_apply],
            approved=approved,
            clock=ambient.wall_clock,
            changes={stage.env: _stage_changes(stage) for stage in to_apply},
        )
    except PromoteError as error:
        raise PromoteError(f"{error}; nothing was changed") from None
    states = {stage.env: "in sync (skipped)" for stage in plan.stages}
    states.update({stage.env: "untouched" for stage in to_apply})
    notes: list[str] = []
    applied: list[str] = []
    for stage in to_apply:
        done = _Progress()
        try:
            notes += _apply_stage(
                workspace, stage, tenants, journal, run_id, done, ambient, earlier, fingerprints
            )
            journal.stage_done(stage.env)
        except KeyboardInterrupt:
            states[stage.env] = _partial(done, "interrupted")
            _forget_applied_quietly(store, stage.env, done)
            _finish_quietly(journal, "interrupted")
            raise InterruptedRun(
                _state_text("interrupted", states) + "\nthe next 'promote run' finishes this run"
            ) from None
        except (PromoteError, EsvError) as error:
            states[stage.env] = _partial(done)
            _record_failed(store, stage, tenants[stage.env], run_id, done, ambient)
            _finish_quietly(journal, "failed")
            if isinstance(error, LockedError) and not applied and not done.done:
                raise  # locked before anything changed: exit 4, as SPEC 4.1 says
            raise ApplyError(_stage_failure(stage.env, error), states) from error
        except Exception as error:
            # A bug, or an OSError from a tenant: its text may hold a value, so only its type
            # is named (--debug shows the chained traceback). The journal stays unfinished.
            states[stage.env] = _partial(done)
            _forget_applied_quietly(store, stage.env, done)
            _finish_quietly(journal, "aborted", error=type(error).__name__)
            raise ApplyError(
                f"{stage.env} failed: {_unexpected(error)}; this is a bug in promote (rerun "
                "with --debug for the traceback and report it); the next 'promote run' "
                "finishes this run",
                states,
            ) from error
        states[stage.env] = "applied"
        applied.append(stage.env)
    _finish_quietly(journal, "done")
    return _Applied(run_id, tuple(applied), skipped, tuple(notes))


_STEP_WORDS = {
    "esvs": "writing ESVs",
    "config": "the config step",
    "restart": "the restart",
    "verify": "verification",
    "record": "recording the history",
}


@dataclass
class _Progress:
    """What one stage has done so far, and the step under way."""

    done: list[str] = field(default_factory=list)
    step: str | None = None
    completed: set[str] = field(default_factory=set)
    """Steps that finished: ``esvs``, ``config``, ``restart``."""
    report_id: str | None = None

    def append(self, item: str, *, completes: str | None = None) -> None:
        self.done.append(item)
        if completes is not None:
            self.completed.add(completes)


def _record_failed(
    store: StateStore,
    stage: Stage,
    tenant: Tenant,
    run_id: str,
    progress: _Progress,
    ambient: Ambient,
) -> None:
    """Record what a stage that failed part-way wrote (its completed steps), marked failed,
    so the history keeps it (the next run finds those changes in sync). Quiet: the failure
    matters more; a record that cannot be written leaves the journal (``failed``) to tell."""
    if not progress.done:
        return
    changes = _stage_changes(stage)
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


def _forget_applied_quietly(store: StateStore, env: str, progress: _Progress) -> None:
    # Something of the stage was written: its record of what was applied no longer holds.
    if progress.done:
        try:
            delete_applied(store, env)
        except PromoteError:
            pass


def _partial(progress: _Progress, how: str = "failed") -> str:
    failed = f"{how} during {_STEP_WORDS.get(progress.step or '', progress.step)}"
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


def _apply_stage(
    workspace: Workspace,
    stage: Stage,
    tenants: Mapping[str, Tenant],
    journal: Journal,
    run_id: str,
    done: _Progress,
    ambient: Ambient,
    earlier: Journal | None,
    fingerprints: Fingerprints,
) -> list[str]:
    env = stage.env
    tenant = tenants[env]
    envfile = workspace.environments[env]
    notes: list[str] = []
    holder = f"promote run {run_id}"
    secret_states: Mapping[str, SecretState] | None = None
    """The tenant's secrets as listed after the restart (the record reuses them)."""

    def step(name: str, ids: Collection[str] = ()) -> None:
        journal.step(env, name, sorted(ids))
        done.step = name
        if ambient.before_step is not None:
            ambient.before_step(env, name)

    if stage.esv_writes:
        step("esvs", [w.id for w in stage.esv_writes])
        try:
            tenant.write_esvs(stage.esv_writes)
        except BaseException:
            if not tenant.capabilities.atomic_esv_writes:
                # One request per ESV: some may be written (the tenant's error names them).
                done.append("some ESV writes may have been made, as the error lists")
            raise
        done.append(f"ESVs written: {', '.join(w.id for w in stage.esv_writes)}", completes="esvs")
    report_id = None
    if stage.config_changes:
        step("config", [d.object for d in stage.config_changes])
        if stage.via == "direct":
            for object_id, value in stage.config_writes.items():
                tenant.put_config(object_id, value)
            for object_id in stage.config_deletes:
                tenant.delete_config(object_id)
        else:
            report = tenant.promote_from(
                tenants[stage.source],
                holder=holder,
                description=f"promote run {run_id}: {stage.source} -> {env}",
            )
            report_id = done.report_id = report.id
        done.append(
            f"config {'written' if stage.via == 'direct' else 'promoted'}", completes="config"
        )
    if stage.restart:
        step("restart")
        if envfile.restart is not None:
            post = {"post": ambient.post} if ambient.post is not None else {}
            summary = run_restart_hook(
                envfile.restart,
                env=env,
                cwd=workspace.root,
                environ=ambient.environ,
                secrets=_secrets_in_play(workspace, ambient.environ),
                **post,
            )
            notes.append(f"{env}: restart hook {summary}")
            done.append("restart hook ran")
        tenant.restart()
        _wait_ready(tenant, envfile, _restart_timeout(envfile), ambient)
        done.append("restarted", completes="restart")
        secret_states = _check_loaded(tenant, stage)
    if envfile.verify:
        step("verify")
        ctx = VerifyContext(
            env=envfile, tenant=tenant, resolved=stage.resolved, workspace=workspace
        )
        if ambient.transports is not None:
            ctx = replace(ctx, transports=ambient.transports)
        summary_line = run_verify(ctx)
        if summary_line:
            notes.append(summary_line)
    step("record")
    after = _config_after(tenant, stage)
    record = _stage_record(stage, run_id, report_id, config_digest(after), ambient, earlier)
    append_history(journal.store, record)
    applied = _applied(tenant, stage, envfile, after, fingerprints, secret_states)
    write_applied(journal.store, env, applied)
    return notes


def _stage_record(
    stage: Stage,
    run_id: str,
    report_id: str | None,
    digest: str,
    ambient: Ambient,
    earlier: Journal | None,
) -> HistoryRecord:
    """The history record of an applied stage; when this run finishes ``earlier``, what
    that run changed in this environment first, then what this run added to it."""
    changes = _stage_changes(stage)
    before = earlier.begun_changes(stage.env) if earlier is not None else {}

    def merged(key: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*before.get(key, ()), *changes[key]]))

    return HistoryRecord(
        time=now(ambient.wall_clock),
        run_id=run_id,
        env=stage.env,
        action="promote",
        source=stage.source,
        config_added=merged("config_added"),
        config_modified=merged("config_modified"),
        config_deleted=merged("config_deleted"),
        esvs=merged("esvs"),
        restarted=stage.restart or bool(before.get("restart")),
        report_id=report_id,
        config_digest=digest,
        notes=(f"finishes run {earlier.run_id}",) if before and earlier else (),
    )


def _config_after(tenant: Tenant, stage: Stage) -> Mapping[str, JSON]:
    """What ``tenant`` holds once ``stage`` is applied: the plan's target, without reading
    the tenant again (an AIC tenant can hold 20,000 objects).

    A tenant without placeholders holds resolved config, and reading it omits write-only
    fields (a password), so it is read back: it holds a handful of objects."""
    if tenant.capabilities.placeholders:
        return stage.config_after
    return tenant.read_config(sorted(tenant.list_config_ids()))


def _applied(
    tenant: Tenant,
    stage: Stage,
    envfile: EnvironmentFile,
    config: Mapping[str, JSON],
    fingerprints: Fingerprints,
    secret_states: Mapping[str, SecretState] | None = None,
) -> Applied:
    """The record of what ``stage`` left in ``tenant`` (drift is measured against it): its
    config (secret-derived values of resolved config masked, kept as keyed fingerprints),
    the variables written, and the version of each secret as the tenant shows it now."""
    masked: dict[str, JSON] = {}
    secret_paths: dict[str, dict[str, str]] = {}
    for object_id, value in config.items():
        item = stage.resolved.get(object_id)
        paths = (
            item.secret_paths if item is not None and not tenant.capabilities.placeholders else None
        )
        if paths:
            masked[object_id], prints = mask_secret_paths(value, paths, fingerprints.of)
            if prints:
                secret_paths[object_id] = prints
        else:
            masked[object_id] = value
    variables: dict[str, tuple[str, str]] = {}
    secrets: dict[str, int] = {}
    if tenant.capabilities.esvs:
        variables = {key: (v.value, v.type) for key, v in envfile.variables.items()}
        held = secret_states if secret_states is not None else tenant.list_secrets()
        secrets = {key: held[key].version for key in envfile.secrets if key in held}
    return Applied(masked, secret_paths, variables, secrets)


def _secrets_in_play(workspace: Workspace, environ: Mapping[str, str]) -> list[SecretValue]:
    """Every secret the workspace's environment files name that can be read here (ESV
    secrets, tenant credentials): a restart hook runs with the whole environment, so these
    are masked in what it prints."""
    found: list[SecretValue] = []
    for envfile in workspace.environments.values():
        sources: list[Secret | SecretSource] = list(envfile.secrets.values())
        sources += [v for v in envfile.tenant.values() if isinstance(v, SecretSource)]
        for source in sources:
            try:
                found.append(read_secret(source, workspace=workspace.root, environ=environ))
            except EsvError:
                continue  # not set here: then it is not in the hook's environment either
    return found


def _stage_changes(stage: Stage) -> dict[str, Any]:
    """What applying ``stage`` changes, by id (for the journal and the history)."""
    return {
        "config_added": [d.object for d in stage.config_changes if d.action == "add"],
        "config_modified": [d.object for d in stage.config_changes if d.action == "modify"],
        "config_deleted": [d.object for d in stage.config_changes if d.action == "delete"],
        "esvs": [f"{c.action} {c.kind} {c.id}" for c in stage.esv_changes],
        "restart": stage.restart,
    }


def _restart_timeout(envfile: EnvironmentFile) -> float:
    # How long the restart may take: tenant.restart_timeout (the hook has its own timeout).
    value = envfile.tenant.get("restart_timeout")
    return DEFAULT_RESTART_TIMEOUT if value is None else float(value)


def _wait_ready(tenant: Tenant, envfile: EnvironmentFile, timeout: float, ambient: Ambient) -> None:
    env = envfile.name
    start = ambient.clock()
    while tenant.restart_status() != "ready":
        waited = ambient.clock() - start
        if waited >= timeout:
            raise PromoteError(
                f"{env}: the restart did not finish within {timeout:g}s; its ESVs are written "
                "but may not be loaded yet; run again once it is ready, or raise "
                f"tenant.restart_timeout in {envfile.relpath}"
            )
        if ambient.progress is not None:
            ambient.progress(f"{env}: waiting for the restart to finish ({waited:.0f}s)")
        ambient.sleep(min(ambient.poll_seconds, max(timeout - waited, 0.0)))


def _check_loaded(tenant: Tenant, stage: Stage) -> Mapping[str, SecretState] | None:
    """Every ESV the stage wrote (added or modified) is held, of its kind, and loaded.
    Returns the secrets as listed (``None`` when nothing needed checking)."""
    written = {w.id: w.kind for w in stage.esv_writes if w.action != "delete"}
    if not written:
        return None
    loaded = {key for key, state in tenant.list_variables().items() if state.loaded}
    secret_states = tenant.list_secrets()
    loaded_secrets = {key for key, state in secret_states.items() if state.loaded}
    pending = sorted(
        esv_id
        for esv_id, kind in written.items()
        if esv_id not in (loaded if kind == "variable" else loaded_secrets)
    )
    if pending:
        raise PromoteError(
            f"{stage.env}: after the restart these ESVs are still not loaded: "
            f"{', '.join(pending)}; restart the environment again, then run again"
        )
    return secret_states


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
    run_id = _new_run_id(ambient.wall_clock)
    store = store or _store(workspace, ambient)
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
        protected = workspace.environments[env].protected
        if protected and env not in approve and ambient.confirm is not None:
            if not ambient.confirm("\n".join([*preview, f"{env} is protected; roll it back?"])):
                raise BlockedError(f"{env} was not rolled back (not approved); nothing was changed")
        else:
            if notes is not None:
                notes.extend(preview)
            if protected and env not in approve:
                raise BlockedError(
                    f"{env} is protected: rolling it back needs approval; review what it "
                    f"restores, then run again with --approve {env}; nothing was changed"
                )
        report = tenant.rollback(holder=f"promote rollback {run_id}")
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
        # The rollback is promote's doing: what the tenant now holds is what was applied.
        before = read_applied(store, env)
        if before is not None:
            write_applied(store, env, replace(before, config=held, secret_paths={}))
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
