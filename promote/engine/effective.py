"""Effective values: each affected object resolved with the values the tenant holds now and
with the values it will hold, secrets masked; a rotated secret shows as changed without
either value (:func:`effective_changes`, :func:`mask_diff`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from esv import MASK, EsvError
from esv.envfile import EnvironmentFile, esv_values
from esv.references import ReferenceIndex
from esv.resolver import EsvValue, Resolved, json_path, resolve, resolve_objects
from promote.engine.diff import (
    ABSENT,
    ObjectDiff,
    PathChange,
    SecretShown,
    diff_object,
)
from promote.engine.digests import Held
from promote.engine.model import EsvChange
from promote.engine.preflight import Checks
from promote.tenants.base import JSON

__all__ = ["effective_changes", "mask_diff", "rotated_secret_paths"]


def effective_changes(
    held: Held,
    target: Mapping[str, JSON],
    resolved: Mapping[str, Resolved],
    esv_changes: list[EsvChange],
    config_changes: list[ObjectDiff],
    references: ReferenceIndex,
    rotated: Mapping[str, dict[str, tuple[str | int, ...]]] | None = None,
) -> list[ObjectDiff]:
    # ``references``: the reference index of ``target``. ``rotated``: per object, the paths
    # (with their parts) whose value derives from a secret whose value changes: masked on
    # both sides they look equal, yet what the tenant runs there changes.
    rotated = rotated or {}
    changed_esvs = {change.id for change in esv_changes}
    candidates = {d.object for d in config_changes}
    candidates |= references.referencing(changed_esvs)
    if not candidates:
        return []
    # What the tenant runs now: its config with its own values; secrets are masked anyway.
    values: dict[str, EsvValue] = {
        key: EsvValue(key, state.value, state.type) for key, state in held.variables.items()
    }
    values.update({key: EsvValue(key, MASK, "string", secret=True) for key in held.secrets})
    running = _resolve_held(
        {key: held.config[key] for key in candidates & held.config.keys()}, values
    )
    result = []
    for object_id in sorted(candidates):
        after = resolved[object_id].masked if object_id in target else ABSENT
        before = running.get(object_id, ABSENT)
        found = (
            _before_unknown(object_id, after)
            if before is _UNRESOLVABLE
            else diff_object(object_id, before, after)
        )
        if object_id in target and object_id in rotated and before is not _UNRESOLVABLE:
            found = _with_rotated(object_id, found, rotated[object_id], before, resolved)
        if found is not None:
            secret_paths = resolved[object_id].secret_paths if object_id in target else None
            result.append(_mark_secrets(found, secret_paths or frozenset()))
    return result


def rotated_secret_paths(
    envfile: EnvironmentFile,
    checks: Checks,
    target: Mapping[str, JSON],
    esv_changes: Sequence[EsvChange],
    references: ReferenceIndex,
) -> dict[str, dict[str, tuple[str | int, ...]]]:
    """Per object of ``target`` using a secret whose value changes (a rotation), the JSON
    paths (with their parts) whose value derives from such a secret.

    The objects are resolved again with only those secrets marked secret: the result's
    ``secret_paths`` are the paths that derive from them (values are not kept)."""
    changed = {c.id for c in esv_changes if c.kind == "secret" and c.action == "modify"}
    users = references.referencing(changed) & target.keys() if changed else set()
    if not users or not checks.secrets_ok:
        return {}
    values = {
        key: replace(value, secret=key in changed)
        for key, value in esv_values(envfile, checks.secrets).items()
    }
    found: dict[str, dict[str, tuple[str | int, ...]]] = {}
    for object_id in sorted(users):
        try:
            paths = resolve(target[object_id], values, object_id=object_id).secret_paths
        except EsvError:
            continue  # reported by the checks already
        if paths:
            found[object_id] = _parts_of(target[object_id], paths)
    return found


def _parts_of(document: JSON, paths: frozenset[str]) -> dict[str, tuple[str | int, ...]]:
    """``paths`` (JSON paths of ``document``'s values; a typed wrapper's path is its own)
    with their keys and indexes."""
    found: dict[str, tuple[str | int, ...]] = {}
    stack: list[tuple[JSON, tuple[str | int, ...]]] = [(document, ())]
    while stack:
        node, parts = stack.pop()
        path = json_path(parts)
        if path in paths:
            found[path] = parts
            continue
        if isinstance(node, dict):
            stack.extend((value, (*parts, key)) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, (*parts, index)) for index, value in enumerate(node))
    return found


def _with_rotated(
    object_id: str,
    found: ObjectDiff | None,
    paths: Mapping[str, tuple[str | int, ...]],
    before: JSON,
    resolved: Mapping[str, Resolved],
) -> ObjectDiff | None:
    """``found`` with a change at each rotated path it does not show yet (masked both sides:
    ``changed (value not shown)``); ``None`` when there is none either way."""
    shown = [change.path for change in found.changes] if found is not None else []
    after_tree = resolved[object_id].masked
    extra = [
        PathChange(
            path,
            _lookup(before, parts, MASK) if before is not ABSENT else ABSENT,
            _lookup(after_tree, parts, MASK),
            parts,
            secret="changed",
        )
        for path, parts in sorted(paths.items())
        if before is not ABSENT and not any(_covers(held, path) for held in shown)
    ]
    if not extra:
        return found
    if found is None:
        return ObjectDiff(object_id, "modify", tuple(extra))
    return replace(found, changes=(*found.changes, *extra))


def _covers(shown: str, path: str) -> bool:
    # A change shown at ``shown`` includes ``path`` (the same path, or a parent of it).
    return shown in ("", path) or path.startswith((shown + ".", shown + "["))


_UNRESOLVABLE = object()
"""An object the tenant holds that does not resolve with the values it holds."""


def _resolve_held(config: Mapping[str, JSON], values: Mapping[str, EsvValue]) -> dict[str, JSON]:
    """Masked values the tenant runs for ``config``; :data:`_UNRESOLVABLE` for those that do
    not resolve. All at once (the resolver shares repeated placeholders), one by one only
    when some fail."""
    try:
        return {key: item.masked for key, item in resolve_objects(config, values).items()}
    except EsvError:
        pass
    running: dict[str, JSON] = {}
    for key, value in config.items():
        try:
            running[key] = resolve(value, values, object_id=key).masked
        except EsvError:
            running[key] = _UNRESOLVABLE
    return running


def _before_unknown(object_id: str, after: JSON) -> ObjectDiff:
    # The tenant's config does not resolve with the values it holds: what it runs now cannot
    # be told. A flag says so (never a sentence posing as a value).
    if after is ABSENT:
        return ObjectDiff(object_id, "delete", (PathChange("", before_unknown=True),))
    added = diff_object(object_id, ABSENT, after)
    assert added is not None
    changes = tuple(replace(change, before_unknown=True) for change in added.changes)
    return ObjectDiff(object_id, "modify", changes)


def _mark_secrets(diff: ObjectDiff, secret_paths: frozenset[str]) -> ObjectDiff:
    # Effective values are masked already; say "will be set" / "changed" where they are, and
    # list a container holding secret-derived values leaf by leaf.
    if not secret_paths:
        return diff
    changes: list[PathChange] = []
    for change in diff.changes:
        if change.after is not ABSENT and _within(change.path, secret_paths):
            shown: SecretShown = (
                "set" if change.before is ABSENT or change.before is None else "changed"
            )
            changes.append(replace(change, secret=shown))
        else:
            changes.extend(_by_leaf(change, change.after, secret_paths))
    return ObjectDiff(diff.object, diff.action, tuple(changes))


def _by_leaf(
    change: PathChange, after_masked: JSON, secret_paths: frozenset[str]
) -> list[PathChange]:
    """``change`` as plans show it: when its (masked) ``after`` is a container holding
    secret-derived values, one change per leaf, the secret ones reading ``will be set`` /
    ``changed`` (a masked value never stands for a value); otherwise ``change`` itself."""
    path, before = change.path, change.before
    below = [
        secret
        for secret in secret_paths
        if path == "" or secret.startswith((path + ".", path + "["))
    ]
    if change.after is ABSENT or not below or not isinstance(after_masked, dict | list):
        return [change]
    result: list[PathChange] = []
    nested = isinstance(before, dict | list)
    if before is not ABSENT and not nested:
        # A value replaced by a container (a type change): the old value goes away.
        result.append(PathChange(path, before, ABSENT, change.parts))
    depth = len(change.parts)
    for parts, value in _leaves(after_masked, change.parts):
        leaf = json_path(parts)
        old = _lookup(before, parts[depth:], ABSENT) if nested else ABSENT
        if _within(leaf, secret_paths):
            shown: SecretShown = "set" if old is ABSENT or old is None else "changed"
            old = old if old is ABSENT else MASK
            result.append(
                PathChange(
                    leaf, old, value, parts, secret=shown, before_unknown=change.before_unknown
                )
            )
        elif old is ABSENT or diff_object("", old, value) is not None:
            result.append(PathChange(leaf, old, value, parts, before_unknown=change.before_unknown))
    return result


def _leaves(tree: JSON, parts: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], JSON]]:
    # Scalars and empty containers of ``tree``, with their paths, in document order.
    if isinstance(tree, dict) and tree:
        return [leaf for key, value in tree.items() for leaf in _leaves(value, (*parts, key))]
    if isinstance(tree, list) and tree:
        return [leaf for i, value in enumerate(tree) for leaf in _leaves(value, (*parts, i))]
    return [(parts, tree)]


def mask_diff(diff: ObjectDiff, resolved: Mapping[str, Resolved]) -> ObjectDiff:
    # A resolved object's diff compares real values; show masked ones wherever a secret is.
    item = resolved.get(diff.object)
    masked_tree = item.masked if item is not None else None
    secret_paths = item.secret_paths if item is not None else frozenset()
    changes: list[PathChange] = []
    for change in diff.changes:
        before, after = change.before, change.after
        shown: SecretShown = None
        if _touches(change.path, secret_paths):
            if after is not ABSENT and _within(change.path, secret_paths):
                # A write-only field the tenant never returns is absent or null before.
                shown = "set" if before is ABSENT or before is None else "changed"
            elif after is not ABSENT:
                # A container holding secret-derived values: listed leaf by leaf.
                masked = _lookup(masked_tree, change.parts, MASK)
                if before is not ABSENT and not isinstance(before, dict | list):
                    change = replace(change, before=MASK)  # held, maybe secret-derived
                expanded = _by_leaf(change, masked, secret_paths)
                if expanded != [change]:
                    changes.extend(expanded)
                    continue
            before = before if before is ABSENT else MASK
            after = after if after is ABSENT else _lookup(masked_tree, change.parts, MASK)
        changes.append(PathChange(change.path, before, after, change.parts, secret=shown))
    return ObjectDiff(diff.object, diff.action, tuple(changes))


def _within(path: str, secret_paths: frozenset[str]) -> bool:
    # The value at ``path`` derives from a secret as a whole (not a parent holding one).
    return any(
        path == secret or path.startswith((secret + ".", secret + "[")) for secret in secret_paths
    )


def _touches(path: str, secret_paths: frozenset[str]) -> bool:
    for secret in secret_paths:
        if path == "" or secret == path or secret.startswith((path + ".", path + "[")):
            return True
        if path.startswith((secret + ".", secret + "[")):
            return True
    return False


def _lookup(tree: JSON, parts: tuple[str | int, ...], default: JSON) -> JSON:
    if tree is None:
        return default
    node = tree
    for part in parts:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return default
    return node
