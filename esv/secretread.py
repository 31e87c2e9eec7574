"""Reading secret values from their sources (an environment variable, a file, an inline
value in a test), decoded where the source holds them base64-encoded; and the values the
resolver uses. A problem names the source, never a value."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path

from esv.envmodel import EnvironmentFile, Secret, SecretSource
from esv.errors import EnvironmentFileError, Problem
from esv.jsonfile import is_encodable
from esv.resolver import EsvValue
from esv.secrets import SecretValue

__all__ = ["esv_values", "read_secret", "read_secrets"]


def _read(src: SecretSource, workspace: Path, environ: Mapping[str, str]) -> SecretValue | str:
    """The value, or why it cannot be read (never the value)."""
    if src.kind == "value":
        if src._inline is None:
            return "has no inline value"
        return src._inline
    if src.kind == "env":
        value = environ.get(src.ref)
        if value is None:
            return f"{src.describe()} is not set"
        if value == "":
            return f"{src.describe()} is empty"
        if not is_encodable(value):  # bytes that are not UTF-8 arrive as lone surrogates
            return f"{src.describe()} is not UTF-8 text"
        return SecretValue(value)
    try:
        text = (workspace / src.ref).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return f"{src.describe()} is not UTF-8 text"
    except OSError as error:
        return f"{src.describe()} cannot be read: {error.strerror}"
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    if text == "":
        return f"{src.describe()} is empty"
    return SecretValue(text)


def _decoded(secret: Secret, value: SecretValue) -> SecretValue | str:
    """The value itself when the source holds it base64-encoded, else ``value``; or why it
    cannot be decoded (never the value)."""
    if not secret.base64:
        return value
    try:
        raw = base64.b64decode(value.reveal().strip(), validate=True)
        return SecretValue(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        return f"{secret.source.describe()} is not base64 text (base64: true)"
    except UnicodeDecodeError:
        return f"{secret.source.describe()} does not decode to UTF-8 text (base64: true)"


def read_secret(
    source: SecretSource | Secret, *, workspace: Path, environ: Mapping[str, str] = os.environ
) -> SecretValue:
    """The value of one secret source (a file's one trailing newline dropped).

    Raises :class:`EnvironmentFileError` naming the source (never a value) when it is unset,
    empty or unreadable.
    """
    src = source.source if isinstance(source, Secret) else source
    result = _read(src, workspace, environ)
    if isinstance(result, SecretValue) and isinstance(source, Secret):
        result = _decoded(source, result)
    if isinstance(result, SecretValue):
        return result
    where = source.id if isinstance(source, Secret) else src.describe()
    raise EnvironmentFileError(
        where, [Problem(where, "", result, hint="set it, or change the source")]
    )


def read_secrets(
    env: EnvironmentFile, *, workspace: Path, environ: Mapping[str, str] = os.environ
) -> dict[str, SecretValue]:
    """Every secret of ``env``; one :class:`EnvironmentFileError` naming each absent source."""
    out: dict[str, SecretValue] = {}
    problems: list[Problem] = []
    for esv_id, secret in env.secrets.items():
        result = _read(secret.source, workspace, environ)
        if isinstance(result, SecretValue):
            result = _decoded(secret, result)
        if isinstance(result, SecretValue):
            out[esv_id] = result
        else:
            problems.append(
                Problem(
                    env.relpath,
                    f"secrets.{esv_id}",
                    result,
                    esv_id=esv_id,
                    hint="set it, or change the secret's source",
                )
            )
    if problems:
        raise EnvironmentFileError(env.relpath, problems)
    return out


def esv_values(env: EnvironmentFile, secrets: Mapping[str, SecretValue]) -> dict[str, EsvValue]:
    """The values the resolver uses: variables as written, secrets revealed but marked."""
    values = {v.id: EsvValue(v.id, v.value, v.type) for v in env.variables.values()}
    for esv_id, secret in secrets.items():
        values[esv_id] = EsvValue(esv_id, secret.reveal(), "string", secret=True)
    return values
