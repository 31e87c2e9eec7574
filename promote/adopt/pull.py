"""Read an environment's live tenant into the workspace (``promote pull``, SPEC 6).

Config objects as the tenant holds them (placeholders kept), variables with their values
and types, secrets by id, encoding and ``useInPlaceholders`` only: values are write-only on
every platform and are never fetched. Nothing is written to the tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from esv.envfile import EnvironmentFile, Variable
from promote.adopt.model import Collected, env_secret
from promote.engine.session import Tenants
from promote.errors import BlockedError
from promote.tenants.base import Tenant
from promote.workspace import Workspace

__all__ = ["pull"]


def pull(
    workspace: Workspace, env: str, object_ids: Sequence[str], *, tenants: Tenants
) -> Collected:
    """What ``env``'s tenant holds: every config object promote manages there (or only
    ``object_ids``), every variable, and the secrets the environment file does not name yet
    (a secret already there keeps its source)."""
    if env not in workspace.environments:
        workspace.walk(env)  # names the chain for an unknown environment
        raise BlockedError(f"environments/{env}.yaml has problems; fix them before pulling")
    envfile = workspace.environments[env]
    tenant = tenants[env]
    kind = envfile.tenant.get("kind", "local")
    where = f"{env}'s {kind} tenant"
    found = Collected(env, where, where)
    wanted = set(object_ids) if object_ids else tenant.list_config_ids()
    held = tenant.read_config(sorted(wanted))
    for object_id in sorted(wanted - set(held)):
        found.problem(where, object_id, "the tenant holds no such config object")
    for object_id, value in sorted(held.items()):
        if not tenant.capabilities.esvs:
            value = _password_placeholder(workspace, env, object_id, value, found)
        found.add_config(object_id, value, where)
    if not object_ids:
        for object_id in sorted(set(workspace.config) - set(held)):
            found.skipped.append(f"config/{object_id}.json: not on the tenant, kept as it is")
    if not tenant.capabilities.esvs:
        found.skipped.append(f"{where} holds no ESVs: its values are resolved before sending")
        return found
    _variables_and_secrets(envfile, tenant, where, found)
    return found


def _variables_and_secrets(
    envfile: EnvironmentFile, tenant: Tenant, where: str, found: Collected
) -> None:
    for esv_id, state in sorted(tenant.list_variables().items()):
        found.add_variable(Variable(esv_id, state.value, state.type or "string"), where)
    for esv_id, secret in sorted(tenant.list_secrets().items()):
        if esv_id in envfile.secrets:
            found.skipped.append(
                f"secret {esv_id}: kept from {envfile.relpath} "
                f"({envfile.secrets[esv_id].source.describe()})"
            )
            continue
        found.add_secret(
            env_secret(
                esv_id, encoding=secret.encoding, in_placeholders=secret.use_in_placeholders
            ),
            where,
            note=" (its value is never read back: set it in the environment)",
        )


_PASSWORD_ESV = "esv-email-provider-password"


def _password_placeholder(
    workspace: Workspace, env: str, object_id: str, value: Any, found: Collected
) -> Any:
    """A tenant without ESVs (Okta) holds resolved config and never returns the SMTP
    password (write-only). The pulled ``external.email`` keeps the workspace's own
    ``auth.password`` (a placeholder) when there is one, else references a secret named as
    the platform names it, read from the environment."""
    auth = value.get("auth") if isinstance(value, dict) else None
    if object_id != "external.email" or not isinstance(auth, dict) or "password" in auth:
        return value
    if not auth.get("enable", True):
        return value
    current = workspace.config.get(object_id, {}).get("auth", {}).get("password")
    if not isinstance(current, str):
        current = "&{esv.email.provider.password}"
        if _PASSWORD_ESV not in workspace.environments[env].secrets:
            found.add_secret(
                env_secret(_PASSWORD_ESV),
                f"{env}'s tenant",
                note=" (the SMTP password is write-only: set it in the environment)",
            )
    return {**value, "auth": {**auth, "password": current}}
