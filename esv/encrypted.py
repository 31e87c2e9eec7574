"""Values IDM encrypted in config (``{"$crypto": ...}``): encrypted with one tenant's keys,
they cannot be promoted; each is named with the ESV secret placeholder to put there."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from esv.errors import Problem
from esv.resolver import json_path

__all__ = ["encrypted_values", "suggest_esv_id"]


def encrypted_values(objects: Mapping[str, Any]) -> list[Problem]:
    """A warning for each value IDM encrypted (``{"$crypto": ...}``) in ``objects``: it was
    encrypted with one tenant's keys and no other tenant can decrypt it, so it cannot be
    promoted; the warning names the ESV secret placeholder to put there instead."""
    problems = []
    for object_id, document in objects.items():
        for path in _crypto_paths(document, ()):
            esv_id = suggest_esv_id(object_id, path)
            token = "esv." + esv_id[len("esv-") :].replace("-", ".")
            problems.append(
                Problem(
                    object_id,
                    json_path(path),
                    "holds a value IDM encrypted with one tenant's keys ($crypto); no other "
                    "tenant can decrypt it",
                    severity="warning",
                    hint=f'put "&{{{token}}}" there and define secret {esv_id} in each environment',
                    code="encrypted-value",
                )
            )
    return problems


def _crypto_paths(value: Any, path: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
    if isinstance(value, dict):
        if "$crypto" in value:
            return [path]
        return [p for key, item in value.items() for p in _crypto_paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _crypto_paths(item, (*path, i))]
    return []


def suggest_esv_id(object_id: str, path: tuple[str | int, ...]) -> str:
    """An ESV id for the value at ``path`` of ``object_id``: the platform's own names for the
    email provider (``esv-email-provider-password``), else the object's id and the key."""
    prefix = "email-provider" if object_id == "external.email" else object_id
    last = next((str(part) for part in reversed(path) if isinstance(part, str)), "value")
    slug = re.sub(r"[^a-z0-9]+", "-", f"{prefix}-{last}".lower()).strip("-")
    return f"esv-{slug}"[:128]
