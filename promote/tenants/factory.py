"""Open the tenant an environment file points at, and say what a kind of tenant cannot hold:
the one place that knows tenant kinds."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from esv.envfile import EnvironmentFile
from esv.errors import Problem
from esv.resolver import Resolved
from promote.errors import BlockedError
from promote.state.base import StateStore
from promote.state.fingerprints import Fingerprints
from promote.tenants.base import Capabilities, Tenant
from promote.tenants.local import LOCAL_CAPABILITIES, LocalTenant
from promote.workspace import Workspace

__all__ = [
    "TENANT_KINDS",
    "capabilities_for",
    "config_problems",
    "env_config_problems",
    "local_state_dir",
    "open_tenant",
]

TENANT_KINDS = ("local", "aic", "okta")
"""The ``tenant.kind`` values :func:`open_tenant` knows."""


def open_tenant(
    env: EnvironmentFile,
    *,
    workspace: Workspace,
    environ: Mapping[str, str] = os.environ,
    store: StateStore | None = None,
    fingerprints: Fingerprints | None = None,
) -> Tenant:
    """The tenant of ``env``, by ``tenant.kind`` (``local`` when the file has no tenant).

    ``local``: a :class:`LocalTenant` in :func:`local_state_dir`, mutable as the workspace
    says, ``restart_seconds`` from the file (default 0). ``aic`` / ``okta``: their modules'
    ``open_aic`` / ``open_okta`` (imported only when used), keeping their records in ``store``
    when given (a local tenant is its own state). Unknown kind or a bad local
    setting: ``BlockedError`` naming the file and key; nothing is opened.
    """
    spec = env.tenant
    kind = spec.get("kind", "local")
    if kind == "local":
        return LocalTenant(
            env.name,
            local_state_dir(env, workspace=workspace),
            mutable=workspace.is_mutable(env.name),
            restart_seconds=_restart_seconds(env, spec.get("restart_seconds", 0.0)),
        )
    if kind == "aic":
        from promote.tenants.aic import open_aic

        return open_aic(
            env, workspace=workspace, environ=environ, store=store, fingerprints=fingerprints
        )
    if kind == "okta":
        from promote.tenants.okta import open_okta

        return open_okta(
            env, workspace=workspace, environ=environ, store=store, fingerprints=fingerprints
        )
    raise _unknown_kind(env, kind)


def _unknown_kind(env: EnvironmentFile, kind: Any) -> BlockedError:
    return BlockedError(
        f"{env.relpath}: tenant.kind {kind!r} is not a tenant kind; nothing was opened",
        [
            Problem(
                env.relpath,
                "tenant.kind",
                f"{kind!r} is not a tenant kind",
                hint=f"use one of: {', '.join(TENANT_KINDS)}",
            )
        ],
    )


def capabilities_for(env: EnvironmentFile) -> Capabilities:
    """The capabilities of ``env``'s tenant without opening it (static per kind; nothing is
    read or sent): what ``validate`` and ``email test`` check against. Unknown kind:
    ``BlockedError`` as :func:`open_tenant` raises."""
    kind = env.tenant.get("kind", "local")
    if kind == "local":
        return LOCAL_CAPABILITIES
    if kind == "aic":
        from promote.tenants.aic import AicTenant

        return AicTenant.capabilities
    if kind == "okta":
        from promote.tenants.okta import OKTA_CAPABILITIES

        return OKTA_CAPABILITIES
    raise _unknown_kind(env, kind)


def env_config_problems(
    env: EnvironmentFile, resolved: Mapping[str, Resolved], *, reported: Iterable[Problem] = ()
) -> list[Problem]:
    """:func:`config_problems` for ``env``'s tenant kind, located in ``env``'s file."""
    kind = str(env.tenant.get("kind", "local"))
    return config_problems(kind, resolved, location=env.relpath, reported=reported)


def config_problems(
    kind: str,
    resolved: Mapping[str, Resolved],
    *,
    location: str,
    reported: Iterable[Problem] = (),
) -> list[Problem]:
    """What a tenant of ``kind`` cannot hold of one environment's resolved config, errors and
    warnings (empty for kinds that hold any config).

    ``okta``: :func:`promote.tenants.okta.check_okta_email` on ``external.email`` (imported
    only when used); its problems name the object and JSON path, never a value.
    ``location``: the environment file, for problems about the environment as a whole (the
    same argument as :func:`promote.email.check_email`; Okta's are all about the object).
    ``reported``: problems already found by the email checks; a finding at an object path
    already reported there (an error, or a warning of the same severity) is left out.
    """
    if kind != "okta":
        return []
    from promote.tenants.okta import EMAIL_ID, check_okta_email

    email = resolved.get(EMAIL_ID)
    if email is None:
        return []
    seen = {(p.location, p.path, p.severity) for p in reported}
    return [
        problem
        for problem in check_okta_email(email.value, location=email.object_id)
        if (problem.location, problem.path, problem.severity) not in seen
        and (problem.location, problem.path, "error") not in seen
    ]


def local_state_dir(env: EnvironmentFile, *, workspace: Workspace) -> Path:
    """Where ``env``'s local tenant keeps state: ``tenant.path`` (relative to the workspace
    root) when set, else ``<workspace>/.promote/tenants/<env>``."""
    path = env.tenant.get("path")
    if path:
        return workspace.root / str(path)
    return workspace.state_dir / "tenants" / env.name


def _restart_seconds(env: EnvironmentFile, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if math.isfinite(seconds) and seconds >= 0:
        return seconds
    raise BlockedError(
        f"{env.relpath}: tenant.restart_seconds must be a number of seconds >= 0",
        [
            Problem(
                env.relpath,
                "tenant.restart_seconds",
                f"{value!r} is not a number of seconds >= 0",
                hint="for example restart_seconds: 2",
            )
        ],
    )
