"""Environment status (``promote status``): is each environment in sync with the one below,
which ESVs wait for a restart, what was promoted last, and has anything drifted since."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from esv import EsvError
from promote.engine.diff import diff_objects
from promote.engine.drift import Drift, find_drift
from promote.engine.session import tenant_fingerprints
from promote.errors import PromoteError, one_line
from promote.state.applied import read_applied
from promote.state.base import StateStore
from promote.state.fingerprints import Fingerprints
from promote.state.history import HistoryRecord, config_digest, read_history
from promote.tenants.base import JSON, SecretState, Tenant, VariableState
from promote.workspace import Workspace

__all__ = ["EnvironmentStatus", "environment_status"]


@dataclass(frozen=True)
class EnvironmentStatus:
    """What ``promote status`` says about one environment."""

    env: str
    lower: str
    """The stage below (``config`` for the first)."""
    in_sync: bool | None
    """Config equals the stage below's; ``None`` when it cannot be compared (see ``note``)."""
    differing: tuple[str, ...]
    """Config object ids that differ from the stage below."""
    pending_esvs: tuple[str, ...]
    last: HistoryRecord | None
    drift: bool | None
    """Something changed outside promote since it last applied here; ``None`` when that
    cannot be told (never applied, or no record of what was applied)."""
    note: str | None = None
    """Why something could not be told (the tenant could not be read, resolved config)."""
    readable: bool = True
    """False when the tenant (its config or its ESVs) could not be read; ``note`` says why."""
    lower_in_sync: bool | None = None
    """When ``in_sync``: whether the stage below is itself in sync all the way down to
    ``config`` (``None``: that cannot be told). Only then is this stage "in sync with" the
    one below; otherwise it is merely the "same as" it."""
    drifted: tuple[Drift, ...] = ()
    """What changed outside promote (SPEC 4.5), when a record of what was applied exists."""


def environment_status(
    workspace: Workspace,
    tenants: Mapping[str, Tenant],
    store: StateStore,
    *,
    envs: Sequence[str] | None = None,
    notes: list[str] | None = None,
) -> list[EnvironmentStatus]:
    """Status of every environment of the chain (or ``envs``), in chain order.

    A tenant that cannot be read (no token here, unreachable) does not stop the others: its
    entry says why (``readable`` false), and the stage above it cannot be compared (its note
    refers to the lower's entry, ``cannot compare: dev cannot be read (above)``). History
    lines that cannot be read are skipped with a line in ``notes`` (see :func:`read_history`).
    """
    records = read_history(store, notes=notes)
    held: dict[str, dict[str, JSON] | str] = {}
    matches = (tenant_fingerprints(tenants) or Fingerprints.ephemeral()).matches

    def config_of(env: str) -> dict[str, JSON] | str:
        if env not in held:
            try:
                tenant = tenants[env]
                held[env] = tenant.read_config(sorted(tenant.list_config_ids()))
            except (PromoteError, EsvError) as error:
                held[env] = one_line(error)
        return held[env]

    found: dict[str, EnvironmentStatus] = {}

    def status_of(env: str) -> EnvironmentStatus:
        if env not in found:
            status = _status_of(workspace, tenants, env, config_of, records, listed, store, matches)
            if status.in_sync:
                lower = workspace.lower(env)
                below = None if lower is None else status_of(lower)
                status = replace(status, lower_in_sync=_settled(below))
            found[env] = status
        return found[env]

    listed = tuple(envs or workspace.chain)
    return [status_of(env) for env in listed]


def _settled(status: EnvironmentStatus | None) -> bool | None:
    """Whether ``status``'s environment is in sync all the way down (``None``: the first
    stage's lower, ``config``, which is in sync by definition)."""
    if status is None:
        return True
    if status.in_sync is False or status.lower_in_sync is False:
        return False
    if status.in_sync is None or status.lower_in_sync is None:
        return None
    return True


def _compared(
    workspace: Workspace,
    tenant: Tenant,
    env: str,
    current: dict[str, JSON],
    config_of: Callable[[str], dict[str, JSON] | str],
    listed: Sequence[str],
) -> tuple[bool | None, tuple[str, ...], str | None]:
    """Whether ``env`` holds what the stage below holds: in sync (None: cannot tell), the
    objects that differ, and why it cannot tell."""
    lower = workspace.lower(env)
    below = dict(workspace.config) if lower is None else config_of(lower)
    if isinstance(below, str):
        # The lower's own entry (listed before this one) carries the whole error.
        why = "(above)" if lower in listed else f"({below})"
        return None, (), f"cannot compare: {lower} cannot be read {why}"
    if not tenant.capabilities.placeholders:
        return None, (), "holds resolved config; 'promote plan' compares it"
    allowed = tenant.capabilities.config_ids
    if allowed is not None:
        below = {key: value for key, value in below.items() if key in allowed}
    differing = tuple(d.object for d in diff_objects(current, below))
    return not differing, differing, None


def _esvs(
    tenant: Tenant,
) -> tuple[dict[str, VariableState], dict[str, SecretState], list[str], bool, str | None]:
    """The tenant's variables and secrets, those not loaded yet, whether they could be read,
    and why not."""
    if not tenant.capabilities.esvs:
        return {}, {}, [], True, None
    try:
        variables, secrets = tenant.list_variables(), tenant.list_secrets()
    except (PromoteError, EsvError) as error:
        return {}, {}, [], False, f"its ESVs cannot be read: {one_line(error)}"
    pending = [k for k, v in variables.items() if not v.loaded]
    pending += [k for k, s in secrets.items() if not s.loaded]
    return variables, secrets, pending, True, None


def _status_of(
    workspace: Workspace,
    tenants: Mapping[str, Tenant],
    env: str,
    config_of: Callable[[str], dict[str, JSON] | str],
    records: Sequence[HistoryRecord],
    listed: Sequence[str],
    store: StateStore,
    matches: Callable[[str, str], bool | None],
) -> EnvironmentStatus:
    lower = workspace.lower(env)
    last = next((r for r in reversed(records) if r.env == env), None)
    current = config_of(env)
    if isinstance(current, str):
        unreadable = f"cannot be read: {current}"
        return EnvironmentStatus(
            env, lower or "config", None, (), (), last, None, unreadable, readable=False
        )
    tenant = tenants[env]
    in_sync, differing, note = _compared(workspace, tenant, env, current, config_of, listed)
    variables, secrets, pending, readable, unreadable_esvs = _esvs(tenant)
    if unreadable_esvs is not None:
        note = unreadable_esvs if note is None else f"{note}; {unreadable_esvs}"
    applied = read_applied(store, env)
    drifted: list[Drift] = []
    if applied is not None and readable:
        drifted = find_drift(applied, current, variables, secrets, matches=matches)
        drift: bool | None = bool(drifted)
    else:
        # Without a record, the history's digest of the config the last run left.
        drift = None if last is None else config_digest(current) != last.config_digest
    return EnvironmentStatus(
        env,
        lower or "config",
        in_sync,
        differing,
        tuple(sorted(pending)),
        last,
        drift,
        note,
        readable=readable,
        drifted=tuple(drifted),
    )
