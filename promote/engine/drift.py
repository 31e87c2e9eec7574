"""Drift: what changed in a tenant since promote last applied to it — a console edit, an API
call from another tool (SPEC 4.5). Pure: compares the record of what was applied
(:mod:`promote.state.applied`) with what the tenant holds now."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from esv import MASK
from esv.objects import DigestedObjects
from esv.resolver import json_path
from promote.engine.diff import ABSENT, diff_object, differing
from promote.state.applied import Applied
from promote.tenants.base import JSON, SecretState, VariableState

__all__ = ["Drift", "drift_json", "find_drift", "mask_secret_paths"]


@dataclass(frozen=True)
class Drift:
    """One difference between what promote applied and what the tenant holds now.

    ``kind`` ``config``: ``object`` and ``path`` (``""``: the whole object), ``applied`` and
    ``live`` values (``ABSENT`` for a side that does not exist; ``********`` where secret).
    ``kind`` ``esv``: ``id``; a variable carries its values (``applied`` / ``live``, each
    ``value (type)``); a secret carries only its versions."""

    kind: Literal["config", "esv"]
    object: str = ""
    path: str = ""
    id: str = ""
    applied: JSON = ABSENT
    live: JSON = ABSENT
    secret: bool = False
    applied_version: int | None = None
    live_version: int | None = None

    def describe(self) -> str:
        """One line for people: ``external.email host: smtp.a -> smtp.b``."""
        if self.kind == "esv" and self.secret:
            if self.live_version is None:
                return f"{self.id} (secret): deleted outside promote"
            return (
                f"{self.id} (secret): a new version ({self.live_version}, promote wrote "
                f"{self.applied_version}) was written outside promote; value not shown"
            )
        where = self.id if self.kind == "esv" else f"{self.object} {self.path or '(whole object)'}"
        return f"{where}: {_shown(self.applied)} -> {_shown(self.live)}"


def _shown(value: JSON) -> str:
    if value is ABSENT:
        return "(absent)"
    if isinstance(value, str):
        return repr(value) if value != MASK else "changed (value not shown)"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def find_drift(
    applied: Applied | None,
    config: Mapping[str, JSON],
    variables: Mapping[str, VariableState],
    secrets: Mapping[str, SecretState],
    *,
    matches: Callable[[str, str], bool | None],
) -> list[Drift]:
    """Every difference between ``applied`` and what the tenant holds (``config`` as it
    reads, ``variables``, ``secrets``), in a stable order; empty without a record.

    ``matches(fingerprint, value)``: the workspace's keyed fingerprint check, for the
    secret-derived values of a tenant that holds resolved config (they are recorded only as
    fingerprints). A write-only value the tenant does not return is not compared.
    """
    if applied is None:
        return []
    found: list[Drift] = []
    for object_id in _may_differ(applied, config):
        found += _config_drift(
            object_id,
            applied.config[object_id],
            config.get(object_id, ABSENT),
            applied.secret_paths.get(object_id, {}),
            matches,
        )
    return found + _variable_drift(applied, variables) + _secret_drift(applied, secrets)


def _variable_drift(applied: Applied, variables: Mapping[str, VariableState]) -> list[Drift]:
    found: list[Drift] = []
    for esv_id, (value, kind) in sorted(applied.variables.items()):
        held = variables.get(esv_id)
        if held is None:
            found.append(Drift("esv", id=esv_id, applied=value, live=ABSENT))
        elif (held.value, held.type) != (value, kind):
            # Types are shown only when they differ: the value is what people recognise.
            typed = held.type != kind
            found.append(
                Drift(
                    "esv",
                    id=esv_id,
                    applied=f"{value} ({kind})" if typed else value,
                    live=f"{held.value} ({held.type})" if typed else held.value,
                )
            )
    return found


def _secret_drift(applied: Applied, secrets: Mapping[str, SecretState]) -> list[Drift]:
    found: list[Drift] = []
    for esv_id, version in sorted(applied.secrets.items()):
        state = secrets.get(esv_id)
        if state is None or state.version != version:
            found.append(
                Drift(
                    "esv",
                    id=esv_id,
                    secret=True,
                    applied_version=version,
                    live_version=None if state is None else state.version,
                )
            )
    return found


def _may_differ(applied: Applied, config: Mapping[str, JSON]) -> list[str]:
    """The ids of ``applied.config`` that may differ from ``config``, sorted: all, but where
    both sides know their digests, only those whose digests differ (which are then read
    together); none when both know the same digest of all."""
    if not isinstance(config, DigestedObjects):
        return sorted(applied.config)
    if applied.set_digest is not None and applied.set_digest == config.set_digest():
        return []  # the same ids, each with the same digest
    if not applied.digests:
        return sorted(applied.config)
    known, recorded = applied.digests, applied.config
    differ = [key for key in differing(known, config.digest_map()) if key in recorded]
    ids = sorted({*differ, *(key for key in recorded if key not in known)})
    config.prefetch(ids)
    return ids


def _config_drift(
    object_id: str,
    applied: JSON,
    live: JSON,
    secret_paths: Mapping[str, str],
    matches: Callable[[str, str], bool | None],
) -> list[Drift]:
    found: list[Drift] = []
    diff = diff_object(object_id, applied, live)
    for change in diff.changes if diff is not None else ():
        secret = _under(change.path, secret_paths)
        if secret is None:
            found.append(
                Drift("config", object_id, change.path, applied=change.before, live=change.after)
            )
            continue
        if change.after is ABSENT:
            continue  # a write-only value the tenant never returns
        fingerprint = secret_paths.get(change.path)
        if fingerprint is not None and matches(fingerprint, _text(change.after)) is True:
            continue
        found.append(Drift("config", object_id, change.path, applied=MASK, live=MASK, secret=True))
    return found


def _text(value: JSON) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def mask_secret_paths(
    value: JSON, paths: Collection[str], fingerprint: Callable[[str], str]
) -> tuple[JSON, dict[str, str]]:
    """``value`` with the value at each of ``paths`` replaced by ``********``, and the keyed
    ``fingerprint`` of each value replaced, by path (what a record of applied config keeps of
    a secret-derived value)."""
    prints: dict[str, str] = {}

    def walk(node: JSON, parts: tuple[str | int, ...]) -> JSON:
        path = json_path(parts)
        if path in paths:
            prints[path] = fingerprint(_text(node))
            return MASK
        if isinstance(node, dict):
            return {key: walk(item, (*parts, key)) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item, (*parts, index)) for index, item in enumerate(node)]
        return node

    return walk(value, ()), prints


def _under(path: str, secret_paths: Mapping[str, str]) -> str | None:
    for secret in secret_paths:
        if path == secret or path.startswith((secret + ".", secret + "[")):
            return secret
    return None


def drift_json(drift: Drift) -> dict[str, Any]:
    """One drift entry as SPEC 4.5 data."""
    data: dict[str, Any] = {"kind": drift.kind}
    if drift.kind == "config":
        data.update(object=drift.object, path=drift.path)
    else:
        data["id"] = drift.id
    if drift.kind == "esv" and drift.secret:
        data.update(
            secret=True, applied_version=drift.applied_version, live_version=drift.live_version
        )
        return data
    if drift.secret:
        data["secret"] = True
    if drift.applied is not ABSENT:
        data["applied"] = drift.applied
    if drift.live is not ABSENT:
        data["live"] = drift.live
    return data
