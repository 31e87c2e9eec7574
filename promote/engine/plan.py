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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from esv import MASK, EnvironmentFileError, EsvError, Problem, SecretValue
from esv.envfile import EnvironmentFile, esv_values, read_secrets
from esv.references import check_environment, index_references
from esv.resolver import EsvValue, Resolved, resolve, resolve_objects
from promote.email import check_email
from promote.engine.diff import ABSENT, Action, ObjectDiff, PathChange, diff_object, diff_objects
from promote.errors import LockedError
from promote.tenants.base import JSON, EsvWrite, SecretState, Tenant, VariableState
from promote.workspace import Workspace

__all__ = [
    "EsvChange",
    "Plan",
    "Stage",
    "Status",
    "build_plan",
    "build_stage",
]

Status = Literal["in-sync", "changes", "blocked"]
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
    """Hash of what the workspace asks this stage to hold (secrets by salted fingerprint)."""
    config_writes: Mapping[str, JSON] = field(default_factory=dict, repr=False, compare=False)
    """Object id -> value to put (resolved for tenants without placeholders)."""
    config_deletes: tuple[str, ...] = ()
    esv_writes: tuple[EsvWrite, ...] = field(default=(), repr=False, compare=False)
    resolved: Mapping[str, Resolved] = field(default_factory=dict, repr=False, compare=False)
    """The config as this environment will run it (for verify gates)."""

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
    salt: str
    """Hex salt of the secret fingerprints in ``inputs_fingerprint``."""
    created: str

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
    salt: bytes | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Plan:
    """Plan the walk from the first stage up to ``to``; changes nothing.

    ``tenants`` holds an open tenant for every environment of the walk. Raises
    ``BlockedError`` for an unknown ``to`` and ``LockedError`` when another promotion holds
    an environment's lock; problems of a stage are recorded in it (status ``blocked``).
    """
    walk = workspace.walk(to)
    salt = salt if salt is not None else os.urandom(16)
    stages = tuple(
        build_stage(
            workspace,
            env,
            walk[index - 1] if index else None,
            tenants,
            environ=environ,
            salt=salt,
        )
        for index, env in enumerate(walk)
    )
    now = clock()
    return Plan(
        to=to,
        chain=tuple(workspace.chain),
        stages=stages,
        salt=salt.hex(),
        created=now.isoformat(timespec="seconds"),
    )


def build_stage(
    workspace: Workspace,
    env: str,
    lower: str | None,
    tenants: Mapping[str, Tenant],
    *,
    environ: Mapping[str, str] = os.environ,
    salt: bytes = b"",
) -> Stage:
    """Plan one stage: ``env`` receiving ``config/`` (``lower`` is None) or what ``lower``
    will hold."""
    envfile = workspace.environments[env]
    tenant = tenants[env]
    caps = tenant.capabilities
    lock = tenant.lock_state()
    if lock.locked:
        raise LockedError(env, lock.holder)

    mutable = workspace.is_mutable(env)
    desired = _desired_config(workspace, env, lower, tenants)
    errors: list[Problem] = []
    warnings: list[Problem] = []
    if not mutable and (lower is None or not caps.promotion):
        errors.append(_immutable_problem(envfile, lower is None))

    secrets, secret_problems = _read_secrets(envfile, workspace, environ)
    errors.extend(secret_problems)
    for problem in check_environment(desired, envfile):
        (errors if problem.severity == "error" else warnings).append(problem)
    missing = _missing_esvs(desired, envfile)
    resolved: dict[str, Resolved] = {}
    resolution_ok = False  # resolved may be empty and fine: nothing desired (Okta: delete)
    if not secret_problems:
        try:
            resolved = resolve_objects(desired, esv_values(envfile, secrets))
        except EsvError as error:
            errors.extend(error.problems)
        else:
            resolution_ok = True
            kind = str(envfile.tenant.get("kind", "local"))
            for problem in check_email(
                resolved,
                env=env,
                location=envfile.relpath,
                mutable=mutable,
                tenant_kind=kind,
                recipients=_recipients(envfile),
            ):
                (errors if problem.severity == "error" else warnings).append(problem)
    errors = _unique(errors)

    current_ids = tenant.list_config_ids()
    wanted = current_ids | desired.keys()
    current = tenant.read_config(sorted(wanted))
    current = {key: value for key, value in current.items() if key in wanted}
    variables = tenant.list_variables() if caps.esvs else {}
    secret_states = tenant.list_secrets() if caps.esvs else {}
    tenant_fingerprint = _digest(
        {
            "config": current,
            "variables": {k: [v.value, v.type, v.loaded, v.managed] for k, v in variables.items()},
            "secrets": {k: [s.version, s.loaded, s.managed] for k, s in secret_states.items()},
        }
    )

    if caps.placeholders:
        target: dict[str, JSON] = dict(desired)
        compared = current
        secret_paths: Mapping[str, frozenset[str]] = {}
    else:
        target = {key: item.value for key, item in resolved.items()}
        compared = {
            key: tenant.reconcile_write_only(key, target[key], value) if key in target else value
            for key, value in current.items()
        }
        secret_paths = {key: item.secret_paths for key, item in resolved.items()}
    config_changes = diff_objects(compared, target) if caps.placeholders or resolution_ok else []
    if not caps.placeholders:
        config_changes = [
            _mask_diff(d, secret_paths.get(d.object, frozenset()), resolved) for d in config_changes
        ]

    esv_changes: list[EsvChange] = []
    esv_writes: list[EsvWrite] = []
    if caps.esvs and not secret_problems:
        esv_changes, esv_writes = _esv_changes(envfile, secrets, variables, secret_states, tenant)
    unloaded = sorted(
        [key for key, v in variables.items() if not v.loaded]
        + [key for key, s in secret_states.items() if not s.loaded]
    )
    restart = caps.restart and caps.esvs and bool(esv_changes or unloaded)

    effective: list[ObjectDiff] = []
    if caps.placeholders and resolved:
        effective = _effective_changes(
            current, target, resolved, esv_changes, variables, secret_states, config_changes
        )

    written_secrets = {
        w.id: w.value.fingerprint(salt) for w in esv_writes if isinstance(w.value, SecretValue)
    }
    inputs_fingerprint = _digest(
        {
            "config": target if caps.placeholders else sorted(target),
            "variables": {k: [v.value, v.type] for k, v in envfile.variables.items()},
            "secrets": sorted(envfile.secrets),
            "written": written_secrets,
            "mutable": mutable,
        }
    )

    if errors:
        status: Status = "blocked"
    elif config_changes or esv_changes or restart:
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
        missing_esvs=tuple(missing),
        errors=tuple(errors),
        warnings=tuple(_unique(warnings)),
        config_changes=tuple(config_changes),
        effective_changes=tuple(effective),
        esv_changes=tuple(esv_changes),
        restart=restart,
        unloaded=tuple(unloaded),
        tenant_fingerprint=tenant_fingerprint,
        inputs_fingerprint=inputs_fingerprint,
        config_writes={d.object: target[d.object] for d in config_changes if d.action != "delete"},
        config_deletes=tuple(d.object for d in config_changes if d.action == "delete"),
        esv_writes=tuple(esv_writes),
        resolved=resolved,
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
        allowed = tenants[name].capabilities.config_ids
        if allowed is not None:
            config = {key: value for key, value in config.items() if key in allowed}
    return config


def _recipients(envfile: EnvironmentFile) -> list[str]:
    gate = (envfile.verify or {}).get("email_test")
    to = gate.get("to") if isinstance(gate, Mapping) else None
    return [to] if isinstance(to, str) else []


def _immutable_problem(envfile: EnvironmentFile, first: bool) -> Problem:
    if first:
        return Problem(
            envfile.relpath,
            "mutable",
            "the first stage of the chain receives config/ directly, so it must be mutable",
            hint="remove 'mutable: false' from this file",
        )
    return Problem(
        envfile.relpath,
        "mutable",
        f"this {envfile.tenant.get('kind', 'local')} tenant cannot receive promotions, "
        "so config can reach it only by direct writes",
        hint="set 'mutable: true' in this file",
    )


def _read_secrets(
    envfile: EnvironmentFile, workspace: Workspace, environ: Mapping[str, str]
) -> tuple[dict[str, SecretValue], list[Problem]]:
    try:
        return read_secrets(envfile, workspace=workspace.root, environ=environ), []
    except EnvironmentFileError as error:
        return {}, list(error.problems)


def _missing_esvs(desired: Mapping[str, JSON], envfile: EnvironmentFile) -> list[str]:
    defined = envfile.variables.keys() | envfile.secrets.keys()
    return sorted(
        {
            ref.esv_id
            for ref in index_references(desired)
            if not ref.defaulted and ref.esv_id not in defined
        }
    )


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
    for key in sorted(envfile.secrets):
        value = secrets[key]
        if key not in secret_states:
            changes.append(EsvChange(key, "secret", "add"))
            writes.append(EsvWrite(key, "secret", "add", value))
        elif tenant.secret_matches(key, value) is not True:
            changes.append(EsvChange(key, "secret", "modify"))
            writes.append(EsvWrite(key, "secret", "modify", value))
    return changes, writes


def _effective_changes(
    current: Mapping[str, JSON],
    target: Mapping[str, JSON],
    resolved: Mapping[str, Resolved],
    esv_changes: list[EsvChange],
    variables: Mapping[str, VariableState],
    secret_states: Mapping[str, SecretState],
    config_changes: list[ObjectDiff],
) -> list[ObjectDiff]:
    changed_esvs = {change.id for change in esv_changes}
    candidates = {d.object for d in config_changes}
    if changed_esvs:
        candidates |= {
            ref.object_id for ref in index_references(target) if ref.esv_id in changed_esvs
        }
    if not candidates:
        return []
    # What the tenant runs now: its config with its own values; secrets are masked anyway.
    values: dict[str, EsvValue] = {
        key: EsvValue(key, state.value, state.type) for key, state in variables.items()
    }
    values.update({key: EsvValue(key, MASK, "string", secret=True) for key in secret_states})
    result = []
    for object_id in sorted(candidates):
        before: JSON = ABSENT
        if object_id in current:
            try:
                before = resolve(current[object_id], values, object_id=object_id).masked
            except EsvError:
                before = "(cannot be resolved with the values the tenant holds)"
        after = resolved[object_id].masked if object_id in resolved else ABSENT
        found = diff_object(object_id, before, after)
        if found is not None:
            result.append(found)
    return result


def _mask_diff(
    diff: ObjectDiff, secret_paths: frozenset[str], resolved: Mapping[str, Resolved]
) -> ObjectDiff:
    # A resolved object's diff compares real values; show masked ones wherever a secret is.
    masked_tree = resolved[diff.object].masked if diff.object in resolved else None
    changes = []
    for change in diff.changes:
        before, after = change.before, change.after
        if _touches(change.path, secret_paths):
            before = before if before is ABSENT else MASK
            after = after if after is ABSENT else _lookup(masked_tree, change.parts, MASK)
        changes.append(PathChange(change.path, before, after))
    return ObjectDiff(diff.object, diff.action, tuple(changes))


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
