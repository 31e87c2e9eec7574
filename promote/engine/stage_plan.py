"""Plan one stage (:func:`build_stage`): what it receives, its checks, its ESV and config
changes, effective values, drift, whether it restarts, and its digests."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from esv import EsvError
from esv.envfile import EnvironmentFile
from esv.objects import DigestedObjects, DigestMap, content_digest
from esv.references import ReferenceIndex, build_index
from esv.resolver import Resolved
from promote.engine.diff import (
    ObjectDiff,
    diff_objects,
)
from promote.engine.digests import (
    Digests,
    Held,
    config_digest,
    inputs_fingerprint,
    tenant_fingerprint,
)
from promote.engine.drift import Drift, find_drift
from promote.engine.effective import effective_changes, mask_diff, rotated_secret_paths
from promote.engine.esv_changes import esv_changes
from promote.engine.model import EsvChange, Stage, Status
from promote.engine.preflight import (
    Checks,
    drift_problem,
    email_objects,
    preflight,
    resolve_checked,
)
from promote.errors import LockedError, PromoteError, TenantError
from promote.state.applied import Applied
from promote.state.fingerprints import Fingerprints
from promote.tenants.base import (
    JSON,
    Capabilities,
    EsvWrite,
    LockState,
    Tenant,
    config_digests,
)
from promote.workspace import Workspace

__all__ = ["build_stage", "desired_config"]


@dataclass(frozen=True)
class StageConfig:
    """What a stage's config becomes, from one of the two paths below."""

    target: Mapping[str, JSON]
    """What the tenant will hold: placeholders kept, or resolved values."""
    changes: list[ObjectDiff]
    resolved: dict[str, Resolved]
    effective: list[ObjectDiff]
    differ: Collection[str] | None
    """The held objects that differ from the target's: every other one the target also has
    is equal to it (its digest is the target's); ``None``: none is known to be."""
    inputs: JSON
    """What of the target enters the inputs fingerprint."""


def build_stage(
    workspace: Workspace,
    env: str,
    lower: str | None,
    tenants: Mapping[str, Tenant],
    *,
    environ: Mapping[str, str] = os.environ,
    fingerprints: Fingerprints | None = None,
    digests: Digests | None = None,
    references: ReferenceIndex | None = None,
    applied: Applied | None = None,
    accept_drift: bool = False,
) -> Stage:
    """Plan one stage: ``env`` receiving ``config/`` (``lower`` is None) or what ``lower``
    will hold. ``digests``: shared by the stages of one plan (see :class:`Digests`);
    ``references``: the reference index of ``config/``, shared likewise (only objects that
    differ from it are indexed again); ``applied``: the record of what promote last applied
    to ``env`` (drift is measured against it); ``accept_drift``: ``on_drift: block`` does
    not block.

    Every object's references are checked; objects are resolved only where the result can
    differ from what the tenant runs or where only resolving can find a problem: objects
    that change, that may reference an ESV that changes or a secret, the email objects
    (their checks read each other), and every object of a tenant without placeholders."""
    at = _Stage(
        workspace,
        env,
        lower,
        tenants,
        environ,
        fingerprints or Fingerprints.ephemeral(),
        digests if digests is not None else Digests(),
    )
    desired = desired_config(workspace, env, lower, tenants)
    references = build_index(desired, reuse=references)
    checks = preflight(
        workspace, at.envfile, desired, lower, at.tenant, at.mutable, environ, references
    )
    held = read_held(at.tenant, desired, env=env)
    drift = _drift(at, applied, held, checks, accept_drift)
    changes, writes = _esvs(at, checks, held, drift)
    if at.caps.placeholders:
        config = placeholder_config(
            at.envfile, desired, held, checks, changes, at.mutable, at.caps, at.digests, references
        )
    else:
        config = resolved_config(at.envfile, desired, held, checks, at.mutable, at.caps, at.tenant)
    return _stage(at, checks, held, drift, changes, writes, config)


@dataclass(frozen=True)
class _Stage:
    """The stage being planned, and what every step reads."""

    workspace: Workspace
    env: str
    lower: str | None
    tenants: Mapping[str, Tenant]
    environ: Mapping[str, str]
    fingerprints: Fingerprints
    digests: Digests

    @property
    def envfile(self) -> EnvironmentFile:
        return self.workspace.environments[self.env]

    @property
    def tenant(self) -> Tenant:
        return self.tenants[self.env]

    @property
    def caps(self) -> Capabilities:
        return self.tenant.capabilities

    @property
    def mutable(self) -> bool:
        # A tenant without promotions (Okta) receives config directly wherever it stands.
        return self.workspace.is_mutable(self.env) or not self.caps.promotion


def _check_lock(lock: LockState, env: str) -> None:
    if lock.locked:
        raise LockedError(env, lock.holder)


def _drift(
    at: _Stage, applied: Applied | None, held: Held, checks: Checks, accept: bool
) -> list[Drift]:
    """What changed outside promote; under ``on_drift: block`` (not accepted) a problem."""
    found = find_drift(
        applied, held.config, held.variables, held.secrets, matches=at.fingerprints.matches
    )
    if found and at.envfile.on_drift == "block" and not accept:
        checks.errors.append(drift_problem(at.envfile, len(found)))
    return found


def _esvs(
    at: _Stage, checks: Checks, held: Held, drift: list[Drift]
) -> tuple[list[EsvChange], list[EsvWrite]]:
    """The ESV changes (and writes) of a tenant that holds ESVs and whose secrets were read;
    a secret rotated outside promote is written again."""
    if not (at.caps.esvs and checks.secrets_ok):
        return [], []
    rotated_outside = {d.id for d in drift if d.kind == "esv" and d.secret}
    return esv_changes(
        at.envfile, checks.secrets, held.variables, held.secrets, at.tenant, rotated_outside
    )


def _stage(
    at: _Stage,
    checks: Checks,
    held: Held,
    drift: list[Drift],
    changes: list[EsvChange],
    writes: list[EsvWrite],
    config: StageConfig,
) -> Stage:
    """The stage record: status, restart, digests, and what applying it writes."""
    target, config_changes = config.target, config.changes
    unloaded = sorted(
        [key for key, v in held.variables.items() if not v.loaded]
        + [key for key, s in held.secrets.items() if not s.loaded]
    )
    restart = at.caps.restart and at.caps.esvs and bool(changes or unloaded)
    status: Status = "in-sync"
    if checks.errors:
        status = "blocked"
    elif config_changes or changes or restart or drift:
        status = "changes"
    inputs = inputs_fingerprint(at.envfile, config.inputs, writes, at.mutable, at.fingerprints)
    return Stage(
        env=at.env,
        source=at.lower if at.lower is not None else "config",
        status=status,
        mutable=at.mutable,
        protected=bool(at.envfile.protected),
        via="direct" if at.mutable else "promotion",
        missing_esvs=tuple(checks.missing),
        errors=tuple(checks.errors),
        warnings=tuple(checks.warnings),
        config_changes=tuple(config_changes),
        effective_changes=tuple(config.effective),
        esv_changes=tuple(changes),
        restart=restart,
        unloaded=tuple(unloaded),
        tenant_fingerprint=tenant_fingerprint(held, target, config.differ, at.digests),
        inputs_fingerprint=inputs,
        drift=tuple(drift),
        config_writes={d.object: target[d.object] for d in config_changes if d.action != "delete"},
        config_deletes=tuple(d.object for d in config_changes if d.action == "delete"),
        esv_writes=tuple(writes),
        resolved=config.resolved,
        config_after=target if at.caps.placeholders else {},
    )


def placeholder_config(
    envfile: EnvironmentFile,
    desired: Mapping[str, JSON],
    held: Held,
    checks: Checks,
    esv_changes: list[EsvChange],
    mutable: bool,
    caps: Capabilities,
    digests: Digests,
    references: ReferenceIndex,
) -> StageConfig:
    """A tenant that stores placeholders receives ``desired`` as it is; only the objects
    whose result can differ (or be wrong) are resolved (see :func:`build_stage`)."""
    target = desired
    changes = diff_objects(held.config, target)
    changed = {d.object for d in changes if d.action != "delete"}
    referencing = references.referencing({c.id for c in esv_changes})
    needed = changed | referencing | references.referencing(envfile.secrets)
    needed.update(email_objects(target))
    if isinstance(target, DigestedObjects):
        target.prefetch(sorted(needed))
    resolve_checked(checks, envfile, {key: target[key] for key in sorted(needed)}, mutable, caps)
    effective: list[ObjectDiff] = []
    if checks.resolved_ok:
        rotated = rotated_secret_paths(envfile, checks, target, esv_changes, references)
        effective = effective_changes(
            held, target, checks.resolved, esv_changes, changes, references, rotated
        )
    differ = {d.object for d in changes}
    return StageConfig(
        target, changes, checks.resolved, effective, differ, config_digest(target, digests)
    )


def resolved_config(
    envfile: EnvironmentFile,
    desired: Mapping[str, JSON],
    held: Held,
    checks: Checks,
    mutable: bool,
    caps: Capabilities,
    tenant: Tenant,
) -> StageConfig:
    """A tenant without placeholders (Okta) holds resolved values: everything is resolved and
    compared with secrets masked; write-only fields it never returns are filled in where the
    tenant knows them unchanged."""
    resolve_checked(checks, envfile, desired, mutable, caps)
    resolved = checks.resolved
    target = {key: item.value for key, item in resolved.items()}
    compared = {
        key: tenant.reconcile_write_only(key, target[key], value) if key in target else value
        for key, value in held.config.items()
    }
    diffs = diff_objects(compared, target) if checks.resolved_ok else []
    changes = [mask_diff(d, resolved) for d in diffs]
    return StageConfig(target, changes, resolved, [], None, sorted(target))


def read_held(tenant: Tenant, desired: Mapping[str, JSON], *, env: str) -> Held:
    """Read what the tenant holds (managed config and the desired ids, ESV states), once
    no other promotion holds its lock (``LockedError`` naming the holder otherwise). A
    tenant that allows ``concurrent_reads`` answers all of these reads at once, so a plan
    waits for one round trip where it would wait for four. A tenant that keeps digests
    lists them instead of its config: objects are read when a step needs them."""
    esvs = tenant.capabilities.esvs
    if not (esvs and tenant.capabilities.concurrent_reads):
        _check_lock(tenant.lock_state(), env)
        config = _held_config(tenant, desired)
        variables = tenant.list_variables() if esvs else {}
        secrets = tenant.list_secrets() if esvs else {}
        return Held(config, variables, secrets)
    from concurrent.futures import ThreadPoolExecutor  # ~4 ms to load: only here

    with ThreadPoolExecutor(max_workers=3) as pool:
        lock = pool.submit(tenant.lock_state)
        listed_variables = pool.submit(tenant.list_variables)
        listed_secrets = pool.submit(tenant.list_secrets)
        config = _held_config(tenant, desired)
        _check_lock(lock.result(), env)
        return Held(config, listed_variables.result(), listed_secrets.result())


def _held_config(tenant: Tenant, desired: Mapping[str, JSON]) -> Mapping[str, JSON]:
    digests = config_digests(tenant)
    if digests is not None:
        kept = digests.set_digest if isinstance(digests, DigestMap) else None
        return DigestedObjects(
            digests, _checked_reader(tenant, digests), digests=digests, set_digest=kept
        )
    wanted = tenant.list_config_ids() | desired.keys()
    return {
        key: value for key, value in tenant.read_config(sorted(wanted)).items() if key in wanted
    }


def _checked_reader(
    tenant: Tenant, digests: Mapping[str, str]
) -> Callable[[list[str]], dict[str, JSON]]:
    """Reads objects of ``tenant``, each as it was when ``digests`` listed it."""

    def read(ids: list[str]) -> dict[str, JSON]:
        found = tenant.read_config(ids)
        for key in ids:
            if key not in found or content_digest(found[key]) != digests[key]:
                raise TenantError(
                    f"config object {key!r} changed while promote was reading the tenant; "
                    "plan again",
                    env=tenant.env,
                )
        return found

    return read


def desired_config(
    workspace: Workspace, env: str, lower: str | None, tenants: Mapping[str, Tenant]
) -> Mapping[str, JSON]:
    # Every stage of a walk ends up holding config/ (restricted to what each tenant on the way
    # can hold): the first by direct writes, each later one by promotion of the one below.
    config: Mapping[str, JSON] = workspace.config
    for name in (lower, env):
        if name is None:
            continue
        try:
            allowed = tenants[name].capabilities.config_ids
        except (KeyError, PromoteError, EsvError):
            if name == env:
                raise
            continue  # the stage below cannot be opened: its own stage says why
        if allowed is not None:
            config = _only(config, allowed)
    return config if isinstance(config, DigestedObjects) else dict(config)


def _only(config: Mapping[str, JSON], ids: Collection[str]) -> Mapping[str, JSON]:
    if isinstance(config, DigestedObjects):
        return config.restrict(ids)
    return {key: value for key, value in config.items() if key in ids}
