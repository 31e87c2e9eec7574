"""Workspaces on disk for engine tests: env files, config objects, a known secret."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SECRET = "Zq9-known-SECRET-value-7731"
"""The password every test environment gets (by environment variable); must never leak."""

ENVIRON = {
    "DEV_SMTP_PASSWORD": SECRET,
    "STAGING_SMTP_PASSWORD": SECRET + "-staging",
    "PROD_SMTP_PASSWORD": SECRET + "-prod",
}

EMAIL: dict[str, Any] = {
    "host": "&{esv.email.provider.host}",
    "port": {"$int": "&{esv.email.provider.port}"},
    "from": '"Acme" <&{esv.email.provider.from}>',
    "auth": {
        "enable": True,
        "username": "&{esv.email.provider.username}",
        "password": "&{esv.email.provider.password}",
    },
    "ssl": {"enable": {"$bool": "&{esv.email.provider.use.ssl}"}},
    "starttls": {"enable": False},
    "smtpProperties": [],
}

WELCOME: dict[str, Any] = {
    "enabled": True,
    "defaultLocale": "en",
    "from": '"Acme" <&{esv.email.provider.from}>',
    "subject": {"en": "Welcome to &{esv.brand|Acme}"},
    "message": {"en": "<p>Hello from &{esv.brand|Acme}</p>"},
}


def env_yaml(
    name: str,
    *,
    host: str | None = None,
    port: str = "587",
    ssl: str = "false",
    mutable: bool | None = None,
    protected: bool = False,
    restart: str = "",
    extra_variables: Mapping[str, str] | None = None,
    password: str | None = None,
) -> str:
    """An environment file for ``name`` whose password comes from ``<NAME>_SMTP_PASSWORD``."""
    lines = [f"description: {name} tenant", "tenant:", "  kind: local"]
    if mutable is not None:
        lines.append(f"mutable: {'true' if mutable else 'false'}")
    lines.append(f"protected: {'true' if protected else 'false'}")
    if restart:
        lines.append(restart.rstrip())
    lines += [
        "variables:",
        f"  esv-email-provider-host: {host or f'smtp.{name}.example.com'}",
        f'  esv-email-provider-port: {{value: "{port}", type: int}}',
        f'  esv-email-provider-use-ssl: {{value: "{ssl}", type: bool}}',
        f"  esv-email-provider-username: {name}-mailer",
        f"  esv-email-provider-from: noreply@{name}.example.com",
    ]
    for key, value in (extra_variables or {}).items():
        lines.append(f"  {key}: {json.dumps(value)}")
    source = password or f"{{env: {name.upper()}_SMTP_PASSWORD}}"
    lines += ["secrets:", f"  esv-email-provider-password: {source}"]
    return "\n".join(lines) + "\n"


def write_workspace(
    root: Path,
    *,
    envs: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    chain: list[str] | None = None,
) -> Path:
    """Write a workspace (default: dev -> staging -> prod, email provider + a template)."""
    envs = envs if envs is not None else default_envs()
    config = config if config is not None else {"external.email": EMAIL}
    (root / "environments").mkdir(parents=True, exist_ok=True)
    for name, text in envs.items():
        (root / "environments" / f"{name}.yaml").write_text(text)
    for object_id, value in config.items():
        path = root / "config" / f"{object_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=2))
    if chain is not None:
        (root / "promote.yaml").write_text(f"chain: [{', '.join(chain)}]\n")
    return root


def default_envs(**overrides: str) -> dict[str, str]:
    """dev, staging, prod (prod protected) env files; ``overrides`` replace one by name."""
    envs = {
        "dev": env_yaml("dev"),
        "staging": env_yaml("staging", port="465", ssl="true"),
        "prod": env_yaml("prod", port="465", ssl="true", protected=True),
    }
    envs.update(overrides)
    return envs


def set_config(root: Path, object_id: str, value: Any) -> None:
    """Replace (or add) one config object."""
    path = root / "config" / f"{object_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


class FaultyTenant:
    """A real tenant whose ``method`` raises ``error`` (a bug or an OSError, as a tenant
    implementation might); every other attribute is the wrapped tenant's."""

    def __init__(self, tenant: Any, method: str, error: BaseException) -> None:
        self._tenant = tenant
        self._method = method
        self._error = error

    def __getattr__(self, name: str) -> Any:
        if name == self._method:

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise self._error

            return fail
        return getattr(self._tenant, name)


def faulty_opener(env: str, method: str, error: BaseException) -> Any:
    """A ``Tenants`` opener: real tenants, ``env``'s made faulty (see :class:`FaultyTenant`)."""
    from promote.tenants.factory import open_tenant

    def opener(workspace: Any, name: str, environ: Mapping[str, str]) -> Any:
        tenant = open_tenant(workspace.environments[name], workspace=workspace, environ=environ)
        return FaultyTenant(tenant, method, error) if name == env else tenant

    return opener
