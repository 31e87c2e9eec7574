"""What an environment file says, once checked (:mod:`esv.envfile` reads it,
:mod:`esv.envcheck` checks it): its tenant, its variables, its secrets' sources and settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from esv.errors import Problem
from esv.secrets import SecretValue

__all__ = [
    "ENVIRONMENT_KEYS",
    "ON_DRIFT",
    "SECRET_ENCODINGS",
    "SECRET_KEYS",
    "TENANT_KEYS",
    "EnvironmentFile",
    "RestartHook",
    "Secret",
    "SecretSource",
    "Variable",
]

ENVIRONMENT_KEYS = (
    "description",
    "tenant",
    "mutable",
    "protected",
    "verify",
    "restart",
    "variables",
    "secrets",
    "on_drift",
)
"""Keys allowed at the top of an environment file."""

ON_DRIFT = ("overwrite", "block")
"""What a plan does with changes made outside promote: put them back, or block the stage."""

TENANT_KEYS: dict[str, tuple[str, ...]] = {
    "local": ("kind", "path", "restart_seconds", "restart_timeout"),
    "aic": ("kind", "url", "token", "service_account", "concurrency", "restart_timeout"),
    "okta": ("kind", "url", "token", "token_type", "alias", "token_endpoint_auth_method"),
}
"""Keys allowed under ``tenant:`` for each tenant kind."""


@dataclass(frozen=True)
class Variable:
    """An ESV variable: its text exactly as written, and its ``expressionType``."""

    id: str
    value: str
    type: str = "string"


@dataclass(frozen=True)
class SecretSource:
    """Where a secret's value comes from: an env var name, a file path (relative to the
    workspace), or ``""`` for an inline value (kept privately, never in ``repr``)."""

    kind: Literal["env", "file", "value"]
    ref: str
    _inline: SecretValue | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        """Human name of the source, never the value."""
        if self.kind == "env":
            return f"environment variable {self.ref}"
        if self.kind == "file":
            return f"file {self.ref}"
        return "inline value"


SECRET_ENCODINGS = ("generic", "pem", "base64hmac", "base64aes")
"""A secret's ``encoding`` on the platform (fixed when the secret is created)."""

SECRET_KEYS = ("encoding", "useInPlaceholders", "base64")
"""Keys a secret's mapping may hold beside its source."""


@dataclass(frozen=True)
class Secret:
    """An ESV secret: its id, where its value comes from, and how the platform keeps it.

    ``encoding`` and ``use_in_placeholders`` are the platform's ``encoding`` and
    ``useInPlaceholders``, set when the secret is created. ``base64`` says the source holds
    the value base64-encoded (fr-config-manager's ``${BASE64:NAME}``); it is decoded on read.
    """

    id: str
    source: SecretSource
    encoding: str = "generic"
    use_in_placeholders: bool = True
    base64: bool = False


@dataclass(frozen=True)
class RestartHook:
    """What to run after this environment's ESVs changed: argv (no shell) or an HTTP POST."""

    command: tuple[str, ...] | None
    url: str | None
    timeout: float = 600.0


@dataclass(frozen=True)
class EnvironmentFile:
    """One parsed and checked environment file.

    ``tenant`` holds ``kind`` and that kind's keys; numbers are converted (``restart_seconds``,
    ``concurrency``, ``restart_timeout``), credentials are :class:`SecretSource` objects
    (``token``; ``service_account`` is ``{"id": str, "jwk": SecretSource}``).
    ``mutable`` is ``None`` when the file does not say (the workspace decides).
    """

    name: str
    path: Path
    relpath: str
    description: str
    tenant: Mapping[str, Any]
    mutable: bool | None
    protected: bool
    verify: Mapping[str, Any]
    restart: RestartHook | None
    variables: Mapping[str, Variable]
    secrets: Mapping[str, Secret]
    warnings: tuple[Problem, ...] = ()
    on_drift: str = "overwrite"
    """``overwrite`` (a run puts drift back) or ``block`` (the stage is blocked until
    ``run --accept-drift ENV``)."""
