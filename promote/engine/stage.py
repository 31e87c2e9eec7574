"""Apply one stage of a walk: ESVs, config (direct writes or promotion), restart hook and
restart, the loaded check, verify gates, then the history record and the record of what was
applied. The journal is written before each step (:func:`apply_stage`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from esv import EsvError, SecretValue
from esv.envfile import EnvironmentFile, Secret, SecretSource, read_secret
from esv.objects import digest_of
from promote.engine.ambient import DEFAULT_RESTART_TIMEOUT, Ambient
from promote.engine.drift import mask_secret_paths
from promote.engine.hooks import run_restart_hook
from promote.engine.plan import Stage
from promote.errors import (
    PromoteError,
)
from promote.state.applied import Applied, write_applied
from promote.state.fingerprints import Fingerprints
from promote.state.history import HistoryRecord, append_history, config_digest, now
from promote.state.journal import Journal
from promote.tenants.base import JSON, SecretState, Tenant
from promote.workspace import Workspace

__all__ = ["Progress", "STEP_WORDS", "apply_stage", "stage_changes"]


STEP_WORDS = {
    "esvs": "writing ESVs",
    "config": "the config step",
    "restart": "the restart",
    "verify": "verification",
    "record": "recording the history",
}


@dataclass
class Progress:
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


@dataclass
class _StageRun:
    """One stage being applied: what every step reads, and what the steps leave behind."""

    workspace: Workspace
    stage: Stage
    tenants: Mapping[str, Tenant]
    journal: Journal
    run_id: str
    done: Progress
    ambient: Ambient
    notes: list[str] = field(default_factory=list)
    report_id: str | None = None
    secret_states: Mapping[str, SecretState] | None = None
    """The tenant's secrets as listed after the restart (the record reuses them)."""

    @property
    def tenant(self) -> Tenant:
        return self.tenants[self.stage.env]

    @property
    def envfile(self) -> EnvironmentFile:
        return self.workspace.environments[self.stage.env]

    def step(self, name: str, ids: Collection[str] = ()) -> None:
        """Journal ``name`` (with the ids it touches) before it starts."""
        self.journal.step(self.stage.env, name, sorted(ids))
        self.done.step = name
        if self.ambient.before_step is not None:
            self.ambient.before_step(self.stage.env, name)


def apply_stage(
    workspace: Workspace,
    stage: Stage,
    tenants: Mapping[str, Tenant],
    journal: Journal,
    run_id: str,
    done: Progress,
    ambient: Ambient,
    earlier: Journal | None,
    fingerprints: Fingerprints,
) -> list[str]:
    """Apply ``stage``: its steps in order, each journaled first; notes for people."""
    current = _StageRun(workspace, stage, tenants, journal, run_id, done, ambient)
    if stage.esv_writes:
        _write_esvs(current)
    if stage.config_changes:
        _write_config(current)
    if stage.restart:
        _restart(current)
    if current.envfile.verify:
        _verify(current)
    _record(current, earlier, fingerprints)
    return current.notes


def _write_esvs(current: _StageRun) -> None:
    writes, tenant = current.stage.esv_writes, current.tenant
    current.step("esvs", [w.id for w in writes])
    try:
        tenant.write_esvs(writes)
    except BaseException:
        if not tenant.capabilities.atomic_esv_writes:
            # One request per ESV: some may be written (the tenant's error names them).
            current.done.append("some ESV writes may have been made, as the error lists")
        raise
    current.done.append(f"ESVs written: {', '.join(w.id for w in writes)}", completes="esvs")


def _write_config(current: _StageRun) -> None:
    stage, tenant = current.stage, current.tenant
    current.step("config", [d.object for d in stage.config_changes])
    if stage.via == "direct":
        for object_id, value in stage.config_writes.items():
            tenant.put_config(object_id, value)
        for object_id in stage.config_deletes:
            tenant.delete_config(object_id)
    else:
        report = tenant.promote_from(
            current.tenants[stage.source],
            holder=f"promote run {current.run_id}",
            description=f"promote run {current.run_id}: {stage.source} -> {stage.env}",
        )
        current.report_id = current.done.report_id = report.id
    how = "written" if stage.via == "direct" else "promoted"
    current.done.append(f"config {how}", completes="config")


def _restart(current: _StageRun) -> None:
    env, envfile, ambient = current.stage.env, current.envfile, current.ambient
    current.step("restart")
    if envfile.restart is not None:
        post = {"post": ambient.post} if ambient.post is not None else {}
        summary = run_restart_hook(
            envfile.restart,
            env=env,
            cwd=current.workspace.root,
            environ=ambient.environ,
            secrets=_secrets_in_play(current.workspace, ambient.environ),
            **post,
        )
        current.notes.append(f"{env}: restart hook {summary}")
        current.done.append("restart hook ran")
    current.tenant.restart()
    _wait_ready(current.tenant, envfile, _restart_timeout(envfile), ambient)
    current.done.append("restarted", completes="restart")
    current.secret_states = _check_loaded(current.tenant, current.stage)


def _verify(current: _StageRun) -> None:
    # The email stack (SMTP, Microsoft Graph over httpx) only for a stage that verifies.
    from promote.email.verify import VerifyContext, run_verify

    current.step("verify")
    ctx = VerifyContext(
        env=current.envfile,
        tenant=current.tenant,
        resolved=current.stage.resolved,
        workspace=current.workspace,
    )
    if current.ambient.transports is not None:
        ctx = replace(ctx, transports=current.ambient.transports)
    summary_line = run_verify(ctx)
    if summary_line:
        current.notes.append(summary_line)


def _record(current: _StageRun, earlier: Journal | None, fingerprints: Fingerprints) -> None:
    """The record of what was applied (drift is measured from it), then the history entry:
    if either cannot be written the stage fails, its record is dropped and the history gets
    the one entry of a failed stage."""
    stage, tenant, store = current.stage, current.tenant, current.journal.store
    current.step("record")
    after = _config_after(tenant, stage)
    applied = _applied(tenant, stage, current.envfile, after, fingerprints, current.secret_states)
    write_applied(store, stage.env, applied)
    entry = _stage_record(
        stage, current.run_id, current.report_id, config_digest(after), current.ambient, earlier
    )
    append_history(store, entry)


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
    changes = stage_changes(stage)
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
    digests: dict[str, str] = {}
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
            digests[object_id] = digest_of(config, object_id)
    variables: dict[str, tuple[str, str]] = {}
    secrets: dict[str, int] = {}
    if tenant.capabilities.esvs:
        variables = {key: (v.value, v.type) for key, v in envfile.variables.items()}
        held = secret_states if secret_states is not None else tenant.list_secrets()
        secrets = {key: held[key].version for key in envfile.secrets if key in held}
    return Applied(masked, secret_paths, variables, secrets, digests)


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


def stage_changes(stage: Stage) -> dict[str, Any]:
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
