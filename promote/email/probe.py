"""``promote email test``: send the test email through one environment's provider.

Two questions, two sources of config:

- default — *will the config a run delivers to ENV send?* The workspace's ``config/``
  (the chain carries it unchanged to every stage) resolved with ENV's values, checked as
  ``plan`` checks it (:func:`~promote.email.checks.email_problems`; errors block with exit
  3), then sent by promote over SMTP or Graph, or into the tenant's built-in outbox (when its
  capabilities say it has one: local tenants);
- ``live`` — *does what ENV's tenant holds now send?* A tenant that can send a test itself
  (``capabilities.sends_test_email``: Okta, AIC) does; otherwise the tenant's
  ``external.email`` resolved with ENV's values is sent by promote.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from esv.envfile import EnvironmentFile, esv_values, read_secrets
from esv.errors import Problem
from esv.resolver import Resolved, resolve
from promote.email.checks import EMAIL_OBJECT, email_problems
from promote.email.dispatch import DEFAULT_TRANSPORTS, Transports, outbox_of, send_test_email
from promote.email.errors import EmailError
from promote.email.model import parse_address
from promote.email.outbox import Outbox
from promote.errors import BlockedError
from promote.tenants.base import Capabilities, email_testable
from promote.tenants.factory import capabilities_for, open_tenant
from promote.workspace import Workspace

__all__ = ["EmailTestResult", "test_environment"]


@dataclass(frozen=True)
class EmailTestResult:
    """What ``email test`` did (one line) and the warnings found on the way."""

    summary: str
    warnings: tuple[Problem, ...] = ()


def test_environment(
    workspace: Workspace,
    env_name: str,
    to: str,
    *,
    live: bool = False,
    sender: str | None = None,
    environ: Mapping[str, str] = os.environ,
    transports: Transports = DEFAULT_TRANSPORTS,
) -> EmailTestResult:
    """Send the test email to ``to`` through ``env_name``'s provider (see module docstring).

    ``sender`` overrides the provider's ``from``. Raises ``BlockedError`` (exit 3) for an
    unknown environment or invalid provider config, and an ``EmailError`` (exit 1) when
    sending fails; neither ever names a secret value.
    """
    env = _environment(workspace, env_name)
    values = esv_values(env, read_secrets(env, workspace=workspace.root, environ=environ))
    if live:
        return _live(workspace, env, to, sender, values, environ, transports)
    capabilities = capabilities_for(env)
    document = workspace.config.get(EMAIL_OBJECT)
    resolved = {} if document is None else {EMAIL_OBJECT: _resolve(document, values)}
    warnings = _checked(resolved, env, workspace, capabilities)
    config = _config(resolved.get(EMAIL_OBJECT))
    outbox = None
    if config is None and capabilities.builtin_email == "outbox":
        tenant = open_tenant(env, workspace=workspace, environ=environ)
        try:
            outbox = outbox_of(tenant, env=env.name, clock=transports.clock)
        finally:
            tenant.close()
    summary = _send(resolved, env.name, to, sender, outbox, transports)
    return EmailTestResult(f"{summary}; config: workspace config/", warnings)


def _send(
    resolved: Mapping[str, Resolved],
    env_name: str,
    to: str,
    sender: str | None,
    outbox: Outbox | None,
    transports: Transports,
) -> str:
    """Send through the resolved ``external.email`` (or ``outbox`` when there is none); a
    failure names the environment."""
    try:
        return send_test_email(
            _config(resolved.get(EMAIL_OBJECT)),
            env=env_name,
            to=to,
            sender=sender,
            masked=_masked(resolved.get(EMAIL_OBJECT)),
            outbox=outbox,
            transports=transports,
        )
    except EmailError as error:
        raise error.for_env(env_name) from error


def _live(
    workspace: Workspace,
    env: EnvironmentFile,
    to: str,
    sender: str | None,
    values: Mapping[str, Any],
    environ: Mapping[str, str],
    transports: Transports,
) -> EmailTestResult:
    from promote.state.factory import open_store

    # The tenant's records (what promote wrote to an Okta server) are in the state store.
    tenant = open_tenant(env, workspace=workspace, environ=environ, store=open_store(workspace))
    try:
        held = tenant.read_config([EMAIL_OBJECT]).get(EMAIL_OBJECT)
        resolved = {} if held is None else {EMAIL_OBJECT: _resolve(held, values)}
        config = _config(resolved.get(EMAIL_OBJECT))
        testable = email_testable(tenant)
        if testable is not None:
            from_text = sender or (config or {}).get("from") or _workspace_from(workspace, values)
            address = parse_address(from_text) if isinstance(from_text, str) else None
            testable.send_test_email(from_address=address.address if address else "", to_address=to)
            shown = env.tenant.get("kind", "local")  # named, never decided on
            return EmailTestResult(f"test email to {to} sent by {env.name}'s tenant ({shown})")
        warnings = _checked(resolved, env, workspace, tenant.capabilities, mutable_builtin=True)
        outbox = outbox_of(tenant, env=env.name, clock=transports.clock)
        summary = _send(resolved, env.name, to, sender, outbox, transports)
        return EmailTestResult(f"{summary}; config: what {env.name}'s tenant holds", warnings)
    finally:
        tenant.close()


def _workspace_from(workspace: Workspace, values: Mapping[str, Any]) -> str:
    """The ``from`` of the workspace's ``external.email`` with this environment's values."""
    document = workspace.config.get(EMAIL_OBJECT)
    if not isinstance(document, Mapping) or "from" not in document:
        return ""
    sender = resolve(document["from"], values, object_id=EMAIL_OBJECT).value
    return sender if isinstance(sender, str) else ""


def _environment(workspace: Workspace, name: str) -> EnvironmentFile:
    env = workspace.environments.get(name)
    if env is None:
        known = ", ".join(workspace.chain) or "none"
        raise BlockedError(f"no environment {name!r} in this workspace (chain: {known})")
    return env


def _resolve(document: Any, values: Mapping[str, Any]) -> Resolved:
    return resolve(document, values, object_id=EMAIL_OBJECT)


def _config(resolved: Resolved | None) -> Mapping[str, Any] | None:
    if resolved is None:
        return None
    if not isinstance(resolved.value, Mapping):
        raise BlockedError(f"{EMAIL_OBJECT} is not a JSON object")
    return resolved.value


def _masked(resolved: Resolved | None) -> Mapping[str, Any] | None:
    if resolved is None or not isinstance(resolved.masked, Mapping):
        return None
    return resolved.masked


def _checked(
    resolved: Mapping[str, Resolved],
    env: EnvironmentFile,
    workspace: Workspace,
    capabilities: Capabilities,
    *,
    mutable_builtin: bool = False,
) -> tuple[Problem, ...]:
    """The provider's warnings (as ``plan`` finds them); its errors raise ``BlockedError``
    (exit 3)."""
    problems = email_problems(
        resolved,
        env=env,
        # a tenant that runs the built-in provider now has it, whatever the rules say
        mutable=mutable_builtin or workspace.is_mutable(env.name),
        capabilities=capabilities,
    )
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise BlockedError(
            f"{env.name}: the email provider is not valid with {env.name}'s values; "
            "nothing was sent",
            errors,
        )
    return tuple(p for p in problems if p.severity == "warning")
