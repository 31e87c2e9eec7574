"""The plan: what a run up to one environment would change, stage by stage.

Building a plan reads the workspace and each tenant and changes nothing. The first stage of
the walk receives ``config/`` (source ``"config"``); every later stage receives what the stage
below will hold once the earlier stages are applied. For each stage: preflight (references,
types, email provider, mutability), config diff per JSON path, ESV diff (secrets compared by
the tenant, never revealed), effective values (resolved before vs after, secrets masked),
whether a restart is needed, and a fingerprint of the tenant's state for ``run --plan``.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from esv import EsvError, Problem
from esv.references import build_index
from promote.engine.digests import Digests
from promote.engine.esv_changes import SECRET_WORKERS, compare_secrets
from promote.engine.model import EsvChange, Plan, Stage, Status
from promote.engine.session import tenant_fingerprints
from promote.engine.stage_plan import build_stage
from promote.errors import BlockedError, TenantError, one_line
from promote.state.applied import Applied, read_applied
from promote.state.base import StateStore
from promote.state.fingerprints import Fingerprints
from promote.tenants.base import Tenant
from promote.workspace import Workspace

__all__ = [
    "SECRET_WORKERS",
    "EsvChange",
    "Plan",
    "Stage",
    "Digests",
    "Status",
    "build_plan",
    "build_stage",
    "compare_secrets",
]


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
        fingerprints = tenant_fingerprints(tenants) or Fingerprints.ephemeral()
    digests = Digests()
    references = build_index(workspace.config)  # what every stage's reference check reads
    stages = tuple(
        _plan_stage(
            workspace,
            env,
            walk[index - 1] if index else None,
            tenants,
            environ=environ,
            fingerprints=fingerprints,
            digests=digests,
            references=references,
            applied=_applied(store, env),
            accept_drift=env in accept_drift,
        )
        for index, env in enumerate(walk)
    )
    workspace.remember_config()  # each file's digest, for the next plan
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
                    f"its tenant cannot be opened or read: {one_line(error)}",
                    hint="fix its tenant settings, or plan again once it can be reached",
                )
            ]
        return _blocked(workspace, env, lower, problems)


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
