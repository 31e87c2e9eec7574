"""The plan: what a run up to one environment would change, stage by stage.

Building a plan reads the workspace and each tenant and changes nothing. The first stage of
the walk receives ``config/`` (source ``"config"``); every later stage receives what the stage
below will hold once the earlier stages are applied. For each stage: preflight (references,
types, email provider, mutability), config diff per JSON path, ESV diff (secrets compared by
the tenant, never revealed), effective values (resolved before vs after, secrets masked),
whether a restart is needed, and a fingerprint of the tenant's state for ``run --plan``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from esv import MASK, EnvironmentFileError, EsvError, Problem, SecretValue
from esv.envfile import EnvironmentFile, esv_values, read_secrets
from esv.errors import MISSING_ESV
from esv.ids import id_to_token
from esv.jsonfile import canonical_bytes
from esv.references import ReferenceIndex, build_index, check_environment
from esv.resolver import EsvValue, Resolved, json_path, resolve, resolve_objects
from promote.email.checks import EMAIL_OBJECT, TEMPLATE_PREFIX, email_problems
from promote.engine.diff import (
    ABSENT,
    Action,
    ObjectDiff,
    PathChange,
    SecretShown,
    diff_object,
    diff_objects,
)
from promote.engine.drift import Drift, find_drift
from promote.errors import BlockedError, LockedError, PromoteError, TenantError
from promote.state.applied import Applied, read_applied
from promote.state.base import StateStore
from promote.state.fingerprints import Fingerprints
from promote.tenants.base import JSON, Capabilities, EsvWrite, SecretState, Tenant, VariableState
from promote.workspace import Workspace

__all__ = [
    "SECRET_WORKERS",
    "EsvChange",
    "Plan",
    "Stage",
    "Status",
    "Texts",
    "build_plan",
    "build_stage",
    "compare_secrets",
]

Status = Literal["in-sync", "changes", "blocked"]

SECRET_WORKERS = 4
"""Secrets compared with the tenant at once while planning (see :func:`compare_secrets`)."""

EsvKind = Literal["variable", "secret"]


@dataclass(frozen=True)
class EsvChange:
    """One ESV to add, modify or delete. ``before``/``after`` are shown for variables only;
    a secret's value is never held here."""

    id: str
    kind: EsvKind
    action: Action
    type: str = "string"
    before: str | None = None
    after: str | None = None
    reason: str | None = None
    """Why a secret is rewritten when it is not known to differ (its fingerprint cannot be
    compared; it changed outside promote)."""


@dataclass(frozen=True)
class Stage:
    """One environment of the walk: what it receives and what applying would change."""

    env: str
    source: str
    """``"config"`` for the first stage, else the environment below."""
    status: Status
    mutable: bool
    protected: bool
    via: Literal["direct", "promotion"]
    """How config arrives: written directly (mutable) or by promotion from ``source``."""
    missing_esvs: tuple[str, ...]
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    config_changes: tuple[ObjectDiff, ...]
    effective_changes: tuple[ObjectDiff, ...]
    esv_changes: tuple[EsvChange, ...]
    restart: bool
    unloaded: tuple[str, ...]
    """ESVs the tenant holds but has not loaded yet (a restart loads them)."""
    tenant_fingerprint: str
    """Hash of the tenant's managed config and ESV states (ids, values, versions, loaded)."""
    inputs_fingerprint: str
    """Hash of what the workspace asks this stage to hold (secrets by keyed fingerprint)."""
    drift: tuple[Drift, ...] = ()
    """What changed in the tenant outside promote since it last applied there (SPEC 4.5)."""
    config_writes: Mapping[str, JSON] = field(default_factory=dict, repr=False, compare=False)
    """Object id -> value to put (resolved for tenants without placeholders)."""
    config_deletes: tuple[str, ...] = ()
    esv_writes: tuple[EsvWrite, ...] = field(default=(), repr=False, compare=False)
    resolved: Mapping[str, Resolved] = field(default_factory=dict, repr=False, compare=False)
    """The config as this environment will run it (for verify gates)."""
    config_after: Mapping[str, JSON] = field(default_factory=dict, repr=False, compare=False)
    """The config the tenant holds once the stage is applied, placeholders kept (the history
    hashes it); empty for tenants without placeholders (theirs is resolved)."""

    @property
    def changed(self) -> bool:
        """Whether applying this stage would change anything."""
        return self.status == "changes"


@dataclass(frozen=True)
class Plan:
    """Every stage of the walk to ``to``, in chain order, in-sync ones included."""

    to: str
    chain: tuple[str, ...]
    stages: tuple[Stage, ...]

    @property
    def blocked(self) -> bool:
        """Whether any stage is blocked by checks."""
        return any(stage.status == "blocked" for stage in self.stages)

    @property
    def pending(self) -> bool:
        """Whether any stage has changes to apply."""
        return any(stage.status == "changes" for stage in self.stages)

    def problems(self) -> list[Problem]:
        """Every error of every blocked stage, in walk order."""
        return [problem for stage in self.stages for problem in stage.errors]

    def stage(self, env: str) -> Stage:
        """The stage of ``env`` (``KeyError`` when not in the walk)."""
        for stage in self.stages:
            if stage.env == env:
                return stage
        raise KeyError(env)


def build_plan(
    workspace: Workspace,
    to: str,
    tenants: Mapping[str, Tenant],
    *,
    environ: Mapping[str, str] = os.environ,
    store: StateStore | None = None,
    fingerprints: Fingerprints | None = None,
    accept_drift: Collection[str] = (),
) -> Plan:
    """Plan the walk from the first stage up to ``to``; changes nothing. The same workspace,
    values and tenant state give the same plan (no salt, no time).

    ``tenants`` holds an open tenant for every environment of the walk. ``store``: where the
    records of what was applied are (drift is compared with them; none: no drift is told);
    ``fingerprints``: the workspace's keyed secret fingerprints (default: the store's);
    ``accept_drift``: environments whose ``on_drift: block`` is overridden. Raises
    ``BlockedError`` for an unknown ``to`` and ``LockedError`` when another promotion holds
    an environment's lock; problems of one stage — its environment file, a tenant that cannot
    be opened or read — block that stage (status ``blocked``), the others are still planned.
    """
    walk = workspace.walk(to)
    if fingerprints is None:
        fingerprints = getattr(tenants, "fingerprints", None) or Fingerprints.ephemeral()
    texts = Texts()
    references = build_index(workspace.config)  # what every stage's reference check reads
    stages = tuple(
        _plan_stage(
            workspace,
            env,
            walk[index - 1] if index else None,
            tenants,
            environ=environ,
            fingerprints=fingerprints,
            texts=texts,
            references=references,
            applied=_applied(store, env),
            accept_drift=env in accept_drift,
        )
        for index, env in enumerate(walk)
    )
    return Plan(to=to, chain=tuple(workspace.chain), stages=stages)


def _applied(store: StateStore | None, env: str) -> Applied | None:
    return None if store is None else read_applied(store, env)


def _plan_stage(
    workspace: Workspace, env: str, lower: str | None, tenants: Mapping[str, Tenant], **kw: Any
) -> Stage:
    """:func:`build_stage`, or a blocked stage naming why it could not be planned."""
    if env in workspace.broken:
        return _blocked(workspace, env, lower, list(workspace.broken[env]))
    try:
        return build_stage(workspace, env, lower, tenants, **kw)
    except (BlockedError, TenantError, EsvError) as error:
        # The environment's own problems (its file, its tenant kind, its tenant unreachable);
        # a store that cannot be written or a lock held elsewhere stop the whole plan.
        problems = list(getattr(error, "problems", ()) or ())
        if not problems:
            envfile = workspace.environments[env]
            problems = [
                Problem(
                    envfile.relpath,
                    "tenant",
                    f"its tenant cannot be opened or read: {_one_line(error)}",
                    hint="fix its tenant settings, or plan again once it can be reached",
                )
            ]
        return _blocked(workspace, env, lower, problems)


def _one_line(error: Exception) -> str:
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _blocked(workspace: Workspace, env: str, lower: str | None, problems: list[Problem]) -> Stage:
    envfile = workspace.environments.get(env)
    mutable = workspace.is_mutable(env) if envfile is not None else lower is None
    return Stage(
        env=env,
        source=lower if lower is not None else "config",
        status="blocked",
        mutable=mutable,
        protected=bool(envfile.protected) if envfile is not None else False,
        via="direct" if mutable else "promotion",
        missing_esvs=(),
        errors=tuple(problems),
        warnings=(),
        config_changes=(),
        effective_changes=(),
        esv_changes=(),
        restart=False,
        unloaded=(),
        tenant_fingerprint="",
        inputs_fingerprint="",
    )


class Texts:
    """Each config object's canonical JSON text (sorted keys), made once per plan and shared by
    its stages (they all want the same objects): the content hash of fingerprints, and the
    text searched for ESV tokens to find which objects may reference an ESV."""

    def __init__(self) -> None:
        self._texts: dict[str, tuple[JSON, str]] = {}

    def __call__(self, object_id: str, value: JSON) -> str:
        """The text of ``value`` (cached while ``object_id`` maps to this same value)."""
        hit = self._texts.get(object_id)
        if hit is not None and hit[0] is value:
            return hit[1]
        text = canonical_bytes(value).decode()
        self._texts[object_id] = (value, text)
        return text


@dataclass
class _Checks:
    """Preflight of one stage: problems, and what was read and resolved on the way."""

    errors: list[Problem]
    warnings: list[Problem]
    missing: list[str]
    secrets: dict[str, SecretValue] = field(repr=False)
    secrets_ok: bool
    resolved: dict[str, Resolved] = field(default_factory=dict, repr=False)
    resolved_ok: bool = False
    """Resolution succeeded (``resolved`` may be empty and fine: nothing to resolve)."""


@dataclass(frozen=True)
class _Held:
    """What the tenant holds now."""

    config: dict[str, JSON]
    variables: dict[str, VariableState]
    secrets: dict[str, SecretState]


def build_stage(
    workspace: Workspace,
    env: str,
    lower: str | None,
    tenants: Mapping[str, Tenant],
    *,
    environ: Mapping[str, str] = os.environ,
    fingerprints: Fingerprints | None = None,
    texts: Texts | None = None,
    references: ReferenceIndex | None = None,
    applied: Applied | None = None,
    accept_drift: bool = False,
) -> Stage:
    """Plan one stage: ``env`` receiving ``config/`` (``lower`` is None) or what ``lower``
    will hold. ``texts``: shared by the stages of one plan (see :class:`Texts`);
    ``references``: the reference index of ``config/``, shared likewise (only objects that
    differ from it are indexed again); ``applied``: the record of what promote last applied
    to ``env`` (drift is measured against it); ``accept_drift``: ``on_drift: block`` does
    not block.

    Every object's references are checked; objects are resolved only where the result can
    differ from what the tenant runs or where only resolving can find a problem: objects
    that change, that may reference an ESV that changes or a secret, the email objects
    (their checks read each other), and every object of a tenant without placeholders."""
    texts = texts if texts is not None else Texts()
    fingerprints = fingerprints or Fingerprints.ephemeral()
    envfile = workspace.environments[env]
    tenant = tenants[env]
    caps = tenant.capabilities
    lock = tenant.lock_state()
    if lock.locked:
        raise LockedError(env, lock.holder)
    # A tenant without promotions (Okta) receives config directly wherever it stands.
    mutable = workspace.is_mutable(env) or not caps.promotion
    desired = _desired_config(workspace, env, lower, tenants)
    references = build_index(desired, reuse=references)
    checks = _preflight(workspace, envfile, desired, lower, tenant, mutable, environ, references)
    held = _held(tenant, desired)
    drift = find_drift(
        applied, held.config, held.variables, held.secrets, matches=fingerprints.matches
    )
    if drift and envfile.on_drift == "block" and not accept_drift:
        checks.errors.append(_drift_problem(envfile, len(drift)))

    esv_changes: list[EsvChange] = []
    esv_writes: list[EsvWrite] = []
    if caps.esvs and checks.secrets_ok:
        rotated_outside = {d.id for d in drift if d.kind == "esv" and d.secret}
        esv_changes, esv_writes = _esv_changes(
            envfile, checks.secrets, held.variables, held.secrets, tenant, rotated_outside
        )
    if caps.placeholders:
        config = _placeholder_config(
            envfile, desired, held, checks, esv_changes, mutable, caps, texts, references
        )
    else:
        config = _resolved_config(envfile, desired, held, checks, mutable, caps, tenant)
    target, config_changes = config.target, config.changes

    unloaded = sorted(
        [key for key, v in held.variables.items() if not v.loaded]
        + [key for key, s in held.secrets.items() if not s.loaded]
    )
    restart = caps.restart and caps.esvs and bool(esv_changes or unloaded)
    # The tenant's fingerprint: an object equal to the one wanted has the same text.
    same = {key: target[key] for key in config.same}
    tenant_fingerprint = _tenant_fingerprint(held, same, texts)

    if checks.errors:
        status: Status = "blocked"
    elif config_changes or esv_changes or restart or drift:
        status = "changes"
    else:
        status = "in-sync"
    return Stage(
        env=env,
        source=lower if lower is not None else "config",
        status=status,
        mutable=mutable,
        protected=bool(envfile.protected),
        via="direct" if mutable else "promotion",
        missing_esvs=tuple(checks.missing),
        errors=tuple(checks.errors),
        warnings=tuple(checks.warnings),
        config_changes=tuple(config_changes),
        effective_changes=tuple(config.effective),
        esv_changes=tuple(esv_changes),
        restart=restart,
        unloaded=tuple(unloaded),
        tenant_fingerprint=tenant_fingerprint,
        inputs_fingerprint=_inputs_fingerprint(
            envfile, config.inputs, esv_writes, mutable, fingerprints
        ),
        drift=tuple(drift),
        config_writes={d.object: target[d.object] for d in config_changes if d.action != "delete"},
        config_deletes=tuple(d.object for d in config_changes if d.action == "delete"),
        esv_writes=tuple(esv_writes),
        resolved=config.resolved,
        config_after=target if caps.placeholders else {},
    )


@dataclass(frozen=True)
class _Config:
    """What a stage's config becomes, from one of the two paths below."""

    target: dict[str, JSON]
    """What the tenant will hold: placeholders kept, or resolved values."""
    changes: list[ObjectDiff]
    resolved: dict[str, Resolved]
    effective: list[ObjectDiff]
    same: set[str]
    """Held objects equal to the target's (their canonical text is shared)."""
    inputs: JSON
    """What of the target enters the inputs fingerprint."""


def _placeholder_config(
    envfile: EnvironmentFile,
    desired: dict[str, JSON],
    held: _Held,
    checks: _Checks,
    esv_changes: list[EsvChange],
    mutable: bool,
    caps: Capabilities,
    texts: Texts,
    references: ReferenceIndex,
) -> _Config:
    """A tenant that stores placeholders receives ``desired`` as it is; only the objects
    whose result can differ (or be wrong) are resolved (see :func:`build_stage`)."""
    target = dict(desired)
    changes = diff_objects(held.config, target)
    changed = {d.object for d in changes if d.action != "delete"}
    referencing = _may_reference(target, {c.id for c in esv_changes}, texts)
    needed = changed | referencing | _may_reference(target, set(envfile.secrets), texts)
    needed |= {key for key in target if _is_email_object(key)}
    _resolve(checks, envfile, {key: target[key] for key in sorted(needed)}, mutable, caps)
    effective: list[ObjectDiff] = []
    if checks.resolved_ok:
        rotated = _rotated_secret_paths(envfile, checks, target, esv_changes, references)
        effective = _effective_changes(
            held, target, checks.resolved, esv_changes, changes, references, rotated
        )
    same = (held.config.keys() & target.keys()) - {d.object for d in changes}
    return _Config(target, changes, checks.resolved, effective, same, _config_digest(target, texts))


def _resolved_config(
    envfile: EnvironmentFile,
    desired: dict[str, JSON],
    held: _Held,
    checks: _Checks,
    mutable: bool,
    caps: Capabilities,
    tenant: Tenant,
) -> _Config:
    """A tenant without placeholders (Okta) holds resolved values: everything is resolved and
    compared with secrets masked; write-only fields it never returns are filled in where the
    tenant knows them unchanged."""
    _resolve(checks, envfile, desired, mutable, caps)
    resolved = checks.resolved
    target = {key: item.value for key, item in resolved.items()}
    compared = {
        key: tenant.reconcile_write_only(key, target[key], value) if key in target else value
        for key, value in held.config.items()
    }
    diffs = diff_objects(compared, target) if checks.resolved_ok else []
    changes = [_mask_diff(d, resolved) for d in diffs]
    return _Config(target, changes, resolved, [], set(), sorted(target))


def _preflight(
    workspace: Workspace,
    envfile: EnvironmentFile,
    desired: Mapping[str, JSON],
    lower: str | None,
    tenant: Tenant,
    mutable: bool,
    environ: Mapping[str, str],
    references: ReferenceIndex,
) -> _Checks:
    """Every problem of the stage at once: mutability, secrets, references, types, email."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    if not tenant.capabilities.promotion and envfile.mutable is False:
        errors.append(_immutable_problem(envfile, promotion=False))
    elif not mutable and lower is None:
        errors.append(_immutable_problem(envfile, promotion=True))
    secrets, secret_problems = _read_secrets(envfile, workspace, environ)
    errors.extend(secret_problems)
    missing: set[str] = set()
    for problem in check_environment(desired, envfile, index=references):
        (errors if problem.severity == "error" else warnings).append(problem)
        if problem.code == MISSING_ESV and problem.esv_id:
            missing.add(problem.esv_id)
    return _Checks(
        errors=errors,
        warnings=warnings,
        missing=sorted(missing),
        secrets=secrets,
        secrets_ok=not secret_problems,
    )


def _resolve(
    checks: _Checks,
    envfile: EnvironmentFile,
    objects: Mapping[str, JSON],
    mutable: bool,
    capabilities: Capabilities,
) -> None:
    """Resolve ``objects`` with the stage's values and check the email objects among them;
    problems and results go into ``checks`` (nothing is resolved without the secrets)."""
    errors, warnings = checks.errors, checks.warnings
    if checks.secrets_ok:
        try:
            resolved = resolve_objects(objects, esv_values(envfile, checks.secrets))
        except EsvError as error:
            # The resolver finds again what the reference check reported (in other words).
            seen = {(p.location, p.path, p.esv_id) for p in errors}
            errors.extend(p for p in error.problems if (p.location, p.path, p.esv_id) not in seen)
        else:
            checks.resolved, checks.resolved_ok = resolved, True
            found = email_problems(
                resolved, env=envfile, mutable=mutable, capabilities=capabilities
            )
            for problem in found:
                (errors if problem.severity == "error" else warnings).append(problem)
    checks.errors, checks.warnings = _unique(errors), _unique(warnings)


def _is_email_object(object_id: str) -> bool:
    # The email checks read the provider and every template together.
    return object_id == EMAIL_OBJECT or object_id.startswith(TEMPLATE_PREFIX)


def _may_reference(objects: Mapping[str, JSON], esv_ids: set[str], texts: Texts) -> set[str]:
    """Ids of the objects whose text holds the token of one of ``esv_ids`` (``esv.a.b``): a
    superset of those referencing them (a placeholder always holds its token as written)."""
    if not esv_ids:
        return set()
    tokens = [id_to_token(esv_id) for esv_id in sorted(esv_ids)]
    return {
        key for key, value in objects.items() if any(token in texts(key, value) for token in tokens)
    }


def _held(tenant: Tenant, desired: Mapping[str, JSON]) -> _Held:
    """Read what the tenant holds (managed config and the desired ids, ESV states)."""
    wanted = tenant.list_config_ids() | desired.keys()
    config = {
        key: value for key, value in tenant.read_config(sorted(wanted)).items() if key in wanted
    }
    esvs = tenant.capabilities.esvs
    variables = tenant.list_variables() if esvs else {}
    secrets = tenant.list_secrets() if esvs else {}
    return _Held(config, variables, secrets)


def _tenant_fingerprint(held: _Held, same: Mapping[str, JSON], texts: Texts) -> str:
    """Hash of the tenant's config and ESV states; ``same``: objects equal to the held ones
    (by value and type), whose text is shared with the plan's."""
    config = {
        key: texts(key, same[key]) if key in same else _text(value)
        for key, value in held.config.items()
    }
    return _digest(
        {
            "config": _hash_texts(config),
            "variables": {
                k: [v.value, v.type, v.loaded, v.managed] for k, v in held.variables.items()
            },
            "secrets": {k: [s.version, s.loaded, s.managed] for k, s in held.secrets.items()},
        }
    )


def _text(value: JSON) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _hash_texts(texts: Mapping[str, str]) -> str:
    # Length-prefixed, so no id or text can run into the next.
    parts = [f"{len(key)}:{key}{len(texts[key])}:{texts[key]}" for key in sorted(texts)]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def _config_digest(config: Mapping[str, JSON], texts: Texts) -> str:
    return _hash_texts({key: texts(key, value) for key, value in config.items()})


def _drift_problem(envfile: EnvironmentFile, count: int) -> Problem:
    return Problem(
        envfile.relpath,
        "on_drift",
        f"{count} change{'s' if count != 1 else ''} made outside promote (listed under "
        "drift); on_drift: block stops the stage",
        hint=f"review them; to put them back run: promote run --accept-drift {envfile.name} "
        "(or copy them into the workspace first)",
    )


def _inputs_fingerprint(
    envfile: EnvironmentFile,
    config: JSON,
    writes: Sequence[EsvWrite],
    mutable: bool,
    fingerprints: Fingerprints,
) -> str:
    # Secrets enter only as keyed fingerprints, and only those being written (so a saved
    # plan is refused when one of their values changed). The first such plan of a workspace
    # creates the key: without one, a value cannot be pinned without exposing it.
    written = {w.id: fingerprints.of(w.value) for w in writes if isinstance(w.value, SecretValue)}
    return _digest(
        {
            "config": config,
            "variables": {k: [v.value, v.type] for k, v in envfile.variables.items()},
            "secrets": sorted(envfile.secrets),
            "written": written,
            "mutable": mutable,
        }
    )


def _desired_config(
    workspace: Workspace, env: str, lower: str | None, tenants: Mapping[str, Tenant]
) -> dict[str, JSON]:
    # Every stage of a walk ends up holding config/ (restricted to what each tenant on the way
    # can hold): the first by direct writes, each later one by promotion of the one below.
    config = dict(workspace.config)
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
            config = {key: value for key, value in config.items() if key in allowed}
    return config


def _immutable_problem(envfile: EnvironmentFile, *, promotion: bool) -> Problem:
    if promotion:
        return Problem(
            envfile.relpath,
            "mutable",
            "the first stage of the chain receives config/ directly, so it must be mutable",
            hint="remove 'mutable: false' from this file",
        )
    return Problem(
        envfile.relpath,
        "mutable",
        "this tenant cannot receive promotions, "
        "so config reaches it only by direct writes; it cannot be immutable",
        hint="remove 'mutable: false' from this file",
    )


def _read_secrets(
    envfile: EnvironmentFile, workspace: Workspace, environ: Mapping[str, str]
) -> tuple[dict[str, SecretValue], list[Problem]]:
    try:
        return read_secrets(envfile, workspace=workspace.root, environ=environ), []
    except EnvironmentFileError as error:
        return {}, list(error.problems)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str, str]] = set()
    result = []
    for problem in problems:
        key = (problem.location, problem.path, problem.message)
        if key not in seen:
            seen.add(key)
            result.append(problem)
    return result


def _digest(data: JSON) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _esv_changes(
    envfile: EnvironmentFile,
    secrets: Mapping[str, SecretValue],
    variables: Mapping[str, VariableState],
    secret_states: Mapping[str, SecretState],
    tenant: Tenant,
    rotated_outside: Collection[str] = (),
) -> tuple[list[EsvChange], list[EsvWrite]]:
    changes: list[EsvChange] = []
    writes: list[EsvWrite] = []
    # Deletes first: an id that moves from variable to secret (or back) is deleted, then added.
    for key, state in sorted(variables.items()):
        if state.managed and key not in envfile.variables:
            changes.append(EsvChange(key, "variable", "delete", state.type, before=state.value))
            writes.append(EsvWrite(key, "variable", "delete", None, state.type))
    for key, secret_state in sorted(secret_states.items()):
        if secret_state.managed and key not in envfile.secrets:
            changes.append(EsvChange(key, "secret", "delete"))
            writes.append(EsvWrite(key, "secret", "delete"))
    for key, variable in sorted(envfile.variables.items()):
        held = variables.get(key)
        if held is None:
            changes.append(EsvChange(key, "variable", "add", variable.type, after=variable.value))
            writes.append(EsvWrite(key, "variable", "add", variable.value, variable.type))
        elif held.value != variable.value or held.type != variable.type:
            changes.append(
                EsvChange(
                    key,
                    "variable",
                    "modify",
                    variable.type,
                    before=held.value,
                    after=variable.value,
                )
            )
            writes.append(EsvWrite(key, "variable", "modify", variable.value, variable.type))
    # Secrets the tenant holds are compared by the tenant (never read back), a few at once.
    known = {key: secrets[key] for key in sorted(envfile.secrets) if key in secret_states}
    matching = compare_secrets(tenant, known)
    for key in sorted(envfile.secrets):
        value = secrets[key]
        if key not in secret_states:
            changes.append(EsvChange(key, "secret", "add"))
            writes.append(EsvWrite(key, "secret", "add", value))
        elif matching[key] is not True or key in rotated_outside:
            reason = None
            if key in rotated_outside:
                reason = "changed outside promote: written again from the workspace"
            elif matching[key] is None:
                reason = _UNCOMPARABLE
            changes.append(EsvChange(key, "secret", "modify", reason=reason))
            writes.append(EsvWrite(key, "secret", "modify", value))
    return changes, writes


_UNCOMPARABLE = (
    "cannot be compared: the tenant holds no fingerprint promote can check (written outside "
    "promote, before keyed fingerprints, or with another fingerprint key); written once again"
)


def compare_secrets(
    tenant: Tenant, secrets: Mapping[str, SecretValue], *, workers: int = SECRET_WORKERS
) -> dict[str, bool | None]:
    """``tenant.secret_matches`` for each secret (id -> True/False/None, in ``secrets``' order).

    A comparison may read the tenant (a local tenant's database), so up to ``workers`` run at
    once; the first error raised by one is raised here.
    """
    if len(secrets) <= 1 or workers <= 1:
        return {key: tenant.secret_matches(key, value) for key, value in secrets.items()}
    with ThreadPoolExecutor(max_workers=min(workers, len(secrets))) as pool:
        results = pool.map(lambda item: tenant.secret_matches(*item), secrets.items())
        return dict(zip(secrets, results, strict=True))


def _effective_changes(
    held: _Held,
    target: Mapping[str, JSON],
    resolved: Mapping[str, Resolved],
    esv_changes: list[EsvChange],
    config_changes: list[ObjectDiff],
    references: ReferenceIndex,
    rotated: Mapping[str, dict[str, tuple[str | int, ...]]] | None = None,
) -> list[ObjectDiff]:
    # ``references``: the reference index of ``target``. ``rotated``: per object, the paths
    # (with their parts) whose value derives from a secret whose value changes: masked on
    # both sides they look equal, yet what the tenant runs there changes.
    rotated = rotated or {}
    changed_esvs = {change.id for change in esv_changes}
    candidates = {d.object for d in config_changes}
    candidates |= references.referencing(changed_esvs)
    if not candidates:
        return []
    # What the tenant runs now: its config with its own values; secrets are masked anyway.
    values: dict[str, EsvValue] = {
        key: EsvValue(key, state.value, state.type) for key, state in held.variables.items()
    }
    values.update({key: EsvValue(key, MASK, "string", secret=True) for key in held.secrets})
    running = _resolve_held(
        {key: held.config[key] for key in candidates & held.config.keys()}, values
    )
    result = []
    for object_id in sorted(candidates):
        after = resolved[object_id].masked if object_id in target else ABSENT
        before = running.get(object_id, ABSENT)
        found = (
            _before_unknown(object_id, after)
            if before is _UNRESOLVABLE
            else diff_object(object_id, before, after)
        )
        if object_id in target and object_id in rotated and before is not _UNRESOLVABLE:
            found = _with_rotated(object_id, found, rotated[object_id], before, resolved)
        if found is not None:
            secret_paths = resolved[object_id].secret_paths if object_id in target else None
            result.append(_mark_secrets(found, secret_paths or frozenset()))
    return result


def _rotated_secret_paths(
    envfile: EnvironmentFile,
    checks: _Checks,
    target: Mapping[str, JSON],
    esv_changes: Sequence[EsvChange],
    references: ReferenceIndex,
) -> dict[str, dict[str, tuple[str | int, ...]]]:
    """Per object of ``target`` using a secret whose value changes (a rotation), the JSON
    paths (with their parts) whose value derives from such a secret.

    The objects are resolved again with only those secrets marked secret: the result's
    ``secret_paths`` are the paths that derive from them (values are not kept)."""
    changed = {c.id for c in esv_changes if c.kind == "secret" and c.action == "modify"}
    users = references.referencing(changed) & target.keys() if changed else set()
    if not users or not checks.secrets_ok:
        return {}
    values = {
        key: replace(value, secret=key in changed)
        for key, value in esv_values(envfile, checks.secrets).items()
    }
    found: dict[str, dict[str, tuple[str | int, ...]]] = {}
    for object_id in sorted(users):
        try:
            paths = resolve(target[object_id], values, object_id=object_id).secret_paths
        except EsvError:
            continue  # reported by the checks already
        if paths:
            found[object_id] = _parts_of(target[object_id], paths)
    return found


def _parts_of(document: JSON, paths: frozenset[str]) -> dict[str, tuple[str | int, ...]]:
    """``paths`` (JSON paths of ``document``'s values; a typed wrapper's path is its own)
    with their keys and indexes."""
    found: dict[str, tuple[str | int, ...]] = {}
    stack: list[tuple[JSON, tuple[str | int, ...]]] = [(document, ())]
    while stack:
        node, parts = stack.pop()
        path = json_path(parts)
        if path in paths:
            found[path] = parts
            continue
        if isinstance(node, dict):
            stack.extend((value, (*parts, key)) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, (*parts, index)) for index, value in enumerate(node))
    return found


def _with_rotated(
    object_id: str,
    found: ObjectDiff | None,
    paths: Mapping[str, tuple[str | int, ...]],
    before: JSON,
    resolved: Mapping[str, Resolved],
) -> ObjectDiff | None:
    """``found`` with a change at each rotated path it does not show yet (masked both sides:
    ``changed (value not shown)``); ``None`` when there is none either way."""
    shown = [change.path for change in found.changes] if found is not None else []
    after_tree = resolved[object_id].masked
    extra = [
        PathChange(
            path,
            _lookup(before, parts, MASK) if before is not ABSENT else ABSENT,
            _lookup(after_tree, parts, MASK),
            parts,
            secret="changed",
        )
        for path, parts in sorted(paths.items())
        if before is not ABSENT and not any(_covers(held, path) for held in shown)
    ]
    if not extra:
        return found
    if found is None:
        return ObjectDiff(object_id, "modify", tuple(extra))
    return replace(found, changes=(*found.changes, *extra))


def _covers(shown: str, path: str) -> bool:
    # A change shown at ``shown`` includes ``path`` (the same path, or a parent of it).
    return shown in ("", path) or path.startswith((shown + ".", shown + "["))


_UNRESOLVABLE = object()
"""An object the tenant holds that does not resolve with the values it holds."""


def _resolve_held(config: Mapping[str, JSON], values: Mapping[str, EsvValue]) -> dict[str, JSON]:
    """Masked values the tenant runs for ``config``; :data:`_UNRESOLVABLE` for those that do
    not resolve. All at once (the resolver shares repeated placeholders), one by one only
    when some fail."""
    try:
        return {key: item.masked for key, item in resolve_objects(config, values).items()}
    except EsvError:
        pass
    running: dict[str, JSON] = {}
    for key, value in config.items():
        try:
            running[key] = resolve(value, values, object_id=key).masked
        except EsvError:
            running[key] = _UNRESOLVABLE
    return running


def _before_unknown(object_id: str, after: JSON) -> ObjectDiff:
    # The tenant's config does not resolve with the values it holds: what it runs now cannot
    # be told. A flag says so (never a sentence posing as a value).
    if after is ABSENT:
        return ObjectDiff(object_id, "delete", (PathChange("", before_unknown=True),))
    added = diff_object(object_id, ABSENT, after)
    assert added is not None
    changes = tuple(replace(change, before_unknown=True) for change in added.changes)
    return ObjectDiff(object_id, "modify", changes)


def _mark_secrets(diff: ObjectDiff, secret_paths: frozenset[str]) -> ObjectDiff:
    # Effective values are masked already; say "will be set" / "changed" where they are, and
    # list a container holding secret-derived values leaf by leaf.
    if not secret_paths:
        return diff
    changes: list[PathChange] = []
    for change in diff.changes:
        if change.after is not ABSENT and _within(change.path, secret_paths):
            shown: SecretShown = (
                "set" if change.before is ABSENT or change.before is None else "changed"
            )
            changes.append(replace(change, secret=shown))
        else:
            changes.extend(_by_leaf(change, change.after, secret_paths))
    return ObjectDiff(diff.object, diff.action, tuple(changes))


def _by_leaf(
    change: PathChange, after_masked: JSON, secret_paths: frozenset[str]
) -> list[PathChange]:
    """``change`` as plans show it: when its (masked) ``after`` is a container holding
    secret-derived values, one change per leaf, the secret ones reading ``will be set`` /
    ``changed`` (a masked value never stands for a value); otherwise ``change`` itself."""
    path, before = change.path, change.before
    below = [
        secret
        for secret in secret_paths
        if path == "" or secret.startswith((path + ".", path + "["))
    ]
    if change.after is ABSENT or not below or not isinstance(after_masked, dict | list):
        return [change]
    result: list[PathChange] = []
    nested = isinstance(before, dict | list)
    if before is not ABSENT and not nested:
        # A value replaced by a container (a type change): the old value goes away.
        result.append(PathChange(path, before, ABSENT, change.parts))
    depth = len(change.parts)
    for parts, value in _leaves(after_masked, change.parts):
        leaf = json_path(parts)
        old = _lookup(before, parts[depth:], ABSENT) if nested else ABSENT
        if _within(leaf, secret_paths):
            shown: SecretShown = "set" if old is ABSENT or old is None else "changed"
            old = old if old is ABSENT else MASK
            result.append(
                PathChange(
                    leaf, old, value, parts, secret=shown, before_unknown=change.before_unknown
                )
            )
        elif old is ABSENT or diff_object("", old, value) is not None:
            result.append(PathChange(leaf, old, value, parts, before_unknown=change.before_unknown))
    return result


def _leaves(tree: JSON, parts: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], JSON]]:
    # Scalars and empty containers of ``tree``, with their paths, in document order.
    if isinstance(tree, dict) and tree:
        return [leaf for key, value in tree.items() for leaf in _leaves(value, (*parts, key))]
    if isinstance(tree, list) and tree:
        return [leaf for i, value in enumerate(tree) for leaf in _leaves(value, (*parts, i))]
    return [(parts, tree)]


def _mask_diff(diff: ObjectDiff, resolved: Mapping[str, Resolved]) -> ObjectDiff:
    # A resolved object's diff compares real values; show masked ones wherever a secret is.
    item = resolved.get(diff.object)
    masked_tree = item.masked if item is not None else None
    secret_paths = item.secret_paths if item is not None else frozenset()
    changes: list[PathChange] = []
    for change in diff.changes:
        before, after = change.before, change.after
        shown: SecretShown = None
        if _touches(change.path, secret_paths):
            if after is not ABSENT and _within(change.path, secret_paths):
                # A write-only field the tenant never returns is absent or null before.
                shown = "set" if before is ABSENT or before is None else "changed"
            elif after is not ABSENT:
                # A container holding secret-derived values: listed leaf by leaf.
                masked = _lookup(masked_tree, change.parts, MASK)
                if before is not ABSENT and not isinstance(before, dict | list):
                    change = replace(change, before=MASK)  # held, maybe secret-derived
                expanded = _by_leaf(change, masked, secret_paths)
                if expanded != [change]:
                    changes.extend(expanded)
                    continue
            before = before if before is ABSENT else MASK
            after = after if after is ABSENT else _lookup(masked_tree, change.parts, MASK)
        changes.append(PathChange(change.path, before, after, change.parts, secret=shown))
    return ObjectDiff(diff.object, diff.action, tuple(changes))


def _within(path: str, secret_paths: frozenset[str]) -> bool:
    # The value at ``path`` derives from a secret as a whole (not a parent holding one).
    return any(
        path == secret or path.startswith((secret + ".", secret + "[")) for secret in secret_paths
    )


def _touches(path: str, secret_paths: frozenset[str]) -> bool:
    for secret in secret_paths:
        if path == "" or secret == path or secret.startswith((path + ".", path + "[")):
            return True
        if path.startswith((secret + ".", secret + "[")):
            return True
    return False


def _lookup(tree: JSON, parts: tuple[str | int, ...], default: JSON) -> JSON:
    if tree is None:
        return default
    node = tree
    for part in parts:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return default
    return node
