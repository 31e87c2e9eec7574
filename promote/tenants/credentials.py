"""Tenant credentials: read the secret a tenant key points at, naming that key when it fails."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from esv.envfile import EnvironmentFile, Secret, SecretSource, read_secret
from esv.errors import EnvironmentFileError, Problem
from esv.secrets import SecretValue

__all__ = ["read_credential"]


def read_credential(
    env: EnvironmentFile,
    key_path: str,
    source: SecretSource | Secret,
    *,
    workspace: Path,
    environ: Mapping[str, str],
) -> SecretValue:
    """The secret ``source`` (set at ``tenant.<key_path>`` of ``env``) holds.

    ``workspace``: the workspace root that file sources are relative to. An unreadable source
    raises ``EnvironmentFileError`` with one problem at ``env``'s file and ``tenant.<key_path>``
    (the file and key that point at the source, not only the source), never the value.
    """
    try:
        return read_secret(source, workspace=workspace, environ=environ)
    except EnvironmentFileError as error:
        reason = error.problems[0].message if error.problems else str(error.args[0])
        raise EnvironmentFileError(
            env.relpath,
            [
                Problem(
                    env.relpath,
                    f"tenant.{key_path}",
                    reason,
                    hint=f"set it, or point tenant.{key_path} at another source",
                )
            ],
        ) from None
