"""The ``state:`` block of ``promote.yaml``: which state store a workspace uses.

Read by :mod:`promote.workspace` (every problem reported with the file and key); the store
itself is opened by :func:`promote.state.factory.open_store`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from esv.errors import Problem

__all__ = ["STATE_KINDS", "StateSettings", "parse_state"]

STATE_KINDS = ("local", "s3")
_KEYS = {
    "local": ("kind",),
    "s3": ("kind", "bucket", "prefix", "endpoint_url", "region"),
}
_CREDENTIAL_WORDS = ("access_key", "secret", "token", "password", "credential")


@dataclass(frozen=True)
class StateSettings:
    """Where the state store is: ``local`` (``.promote/``) or an S3-compatible bucket."""

    kind: str = "local"
    bucket: str = ""
    prefix: str = ""
    """Keys are ``<prefix><name>``: ``email/`` keeps one chain's state apart from another's."""
    endpoint_url: str | None = None
    region: str | None = None


def parse_state(value: Any, *, file: str, problems: list[Problem]) -> StateSettings:
    """``state:`` as written in ``file``; problems are appended (the default when any)."""
    if value is None:
        return StateSettings()
    if not isinstance(value, dict):
        problems.append(Problem(file, "state", "must be a mapping with kind: local or s3"))
        return StateSettings()
    kind = value.get("kind", "local")
    if kind not in STATE_KINDS:
        problems.append(
            Problem(
                file,
                "state.kind",
                f"{kind!r} is not a state store kind",
                hint=f"use one of: {', '.join(STATE_KINDS)}",
            )
        )
        return StateSettings()
    found = len(problems)
    problems += _unknown_keys(value, kind, file)
    texts: dict[str, str | None] = {}
    for key in _KEYS[kind][1:]:
        item = value.get(key)
        if item is not None and (not isinstance(item, str) or not item.strip()):
            problems.append(Problem(file, f"state.{key}", "must be non-empty text"))
            item = None
        texts[key] = item
    if kind == "s3" and not texts.get("bucket"):
        problems.append(
            Problem(
                file,
                "state.bucket",
                "an s3 state store needs a bucket",
                hint="for example bucket: acme-promote-state",
            )
        )
    prefix = texts.get("prefix") or ""
    if prefix.startswith("/"):
        problems.append(Problem(file, "state.prefix", "must not start with '/'"))
    if len(problems) > found:
        return StateSettings()
    return StateSettings(
        kind=kind,
        bucket=texts.get("bucket") or "",
        prefix=prefix,
        endpoint_url=texts.get("endpoint_url"),
        region=texts.get("region"),
    )


def _unknown_keys(value: dict[Any, Any], kind: str, file: str) -> list[Problem]:
    """A problem for each key ``kind`` does not know; credentials are never read from here."""
    problems: list[Problem] = []
    for key in value:
        if key in _KEYS[kind]:
            continue
        if any(word in str(key).lower() for word in _CREDENTIAL_WORDS):
            problems.append(
                Problem(
                    file,
                    f"state.{key}",
                    "credentials are never read from promote.yaml",
                    hint="remove it; use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, "
                    "AWS_PROFILE or an instance role",
                )
            )
            continue
        close = difflib.get_close_matches(str(key), _KEYS[kind], n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(_KEYS[kind])}"
        problems.append(Problem(file, f"state.{key}", "unknown key", hint=hint))
    return problems
