"""Environment files (``environments/<env>.yaml``): where a tenant is and its ESV values.

The only module that imports ``yaml``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from esv.errors import Problem, WorkspaceFileError
from esv.resolver import EsvValue
from esv.secrets import SecretValue

__all__ = [
    "EnvironmentFile",
    "RestartHook",
    "Secret",
    "SecretSource",
    "Variable",
    "esv_values",
    "load_environment",
    "read_secret",
    "read_secrets",
]


@dataclass(frozen=True)
class Variable:
    """An ESV variable: its text exactly as written, and its ``expressionType``."""

    id: str
    value: str
    type: str = "string"


@dataclass(frozen=True)
class SecretSource:
    """Where a secret's value comes from: an env var, a file, or (discouraged) inline."""

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


@dataclass(frozen=True)
class Secret:
    """An ESV secret: its id and where its value comes from."""

    id: str
    source: SecretSource


@dataclass(frozen=True)
class RestartHook:
    """What to run after this environment's ESVs changed: argv (no shell) or an HTTP POST."""

    command: tuple[str, ...] | None
    url: str | None
    timeout: float = 600.0


@dataclass(frozen=True)
class EnvironmentFile:
    """One parsed and checked environment file."""

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


def load_environment(path: Path, *, workspace: Path) -> EnvironmentFile:
    """Load and check one environment file; :class:`EnvironmentFileError` lists every problem."""
    relpath = _relpath(path, workspace)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise WorkspaceFileError(relpath, f"cannot be read: {error}") from None
    data = yaml.load(text, Loader=yaml.BaseLoader)
    variables: dict[str, Variable] = {}
    for esv_id, spec in (data.get("variables") or {}).items():
        if isinstance(spec, dict):
            variables[esv_id] = Variable(esv_id, spec["value"], spec.get("type", "string"))
        else:
            variables[esv_id] = Variable(esv_id, spec)
    secrets: dict[str, Secret] = {}
    for esv_id, spec in (data.get("secrets") or {}).items():
        ((kind, ref),) = spec.items()
        inline = SecretValue(ref) if kind == "value" else None
        secrets[esv_id] = Secret(esv_id, SecretSource(kind, "" if inline else ref, inline))
    return EnvironmentFile(
        name=path.stem,
        path=path,
        relpath=relpath,
        description=data.get("description", ""),
        tenant=data.get("tenant") or {"kind": "local"},
        mutable=None,
        protected=data.get("protected") == "true",
        verify=data.get("verify") or {},
        restart=None,
        variables=variables,
        secrets=secrets,
    )


def _relpath(path: Path, workspace: Path) -> str:
    try:
        return path.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return str(path)


def read_secret(
    source: SecretSource | Secret, *, workspace: Path, environ: Mapping[str, str] = os.environ
) -> SecretValue:
    """The value of one secret source; :class:`EnvironmentFileError` when it is absent."""
    src = source.source if isinstance(source, Secret) else source
    if src.kind == "value":
        assert src._inline is not None
        return src._inline
    if src.kind == "env":
        return SecretValue(environ[src.ref])
    return SecretValue((workspace / src.ref).read_text(encoding="utf-8").rstrip("\n"))


def read_secrets(
    env: EnvironmentFile, *, workspace: Path, environ: Mapping[str, str] = os.environ
) -> dict[str, SecretValue]:
    """Every secret of ``env``; one :class:`EnvironmentFileError` naming each absent source."""
    return {
        esv_id: read_secret(secret, workspace=workspace, environ=environ)
        for esv_id, secret in env.secrets.items()
    }


def esv_values(env: EnvironmentFile, secrets: Mapping[str, SecretValue]) -> dict[str, EsvValue]:
    """The values the resolver uses: variables as written, secrets revealed but marked."""
    values = {v.id: EsvValue(v.id, v.value, v.type) for v in env.variables.values()}
    for esv_id, secret in secrets.items():
        values[esv_id] = EsvValue(esv_id, secret.reveal(), "string", secret=True)
    return values
