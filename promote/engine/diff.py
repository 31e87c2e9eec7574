"""Structural differences between config objects, per JSON path (the only deepdiff user).

Objects are compared with a cheap equality check first; only objects that differ are walked,
key by key, down to what differs; arrays that differ are given to DeepDiff (order-aware item
matching). So the cost of a diff grows with the changed objects, not with the total.
"""

from __future__ import annotations

import marshal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from esv.jsonfile import canonical_bytes
from esv.objects import DigestedObjects
from esv.resolver import json_path

__all__ = [
    "ABSENT",
    "Action",
    "ObjectDiff",
    "PathChange",
    "SecretShown",
    "diff_object",
    "diff_objects",
    "differing",
]

JSON = Any
Action = Literal["add", "modify", "delete"]
SecretShown = Literal["set", "changed"] | None


class _Absent:
    """The marker for a side of a change that does not exist (``before`` of an add)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Any = _Absent()
"""``before`` of an added path, ``after`` of a deleted one."""


@dataclass(frozen=True)
class PathChange:
    """One changed JSON path inside an object. ``path`` is dotted with ``[i]`` for items;
    ``""`` means the whole object."""

    path: str
    before: JSON = ABSENT
    after: JSON = ABSENT
    parts: tuple[str | int, ...] = field(default=(), repr=False, compare=False)
    """The path as keys and indexes (``path`` is its text)."""
    secret: SecretShown = None
    """Set when ``after`` derives from a secret (and is masked): ``"set"`` when nothing was
    known before (absent, or a write-only field the tenant never returns), ``"changed"``
    otherwise. Text and Markdown plans then show ``will be set`` / ``changed (value not
    shown)`` instead of the masked value."""
    before_unknown: bool = False
    """The value before cannot be told (the tenant's config does not resolve with the values
    it holds); ``before`` is then ``ABSENT``. JSON says ``"before_unknown": true``."""


@dataclass(frozen=True)
class ObjectDiff:
    """How one config object changes: added, modified (with its paths) or deleted."""

    object: str
    action: Action
    changes: tuple[PathChange, ...]

    @property
    def before_unknown(self) -> bool:
        """Whether the object's value before cannot be told (see ``PathChange``)."""
        return any(change.before_unknown for change in self.changes)


def _same(before: JSON, after: JSON) -> bool:
    # ``==`` alone treats true as 1 (and 1 as 1.0); marshal's bytes tell the types apart and
    # cost a fraction of ``json.dumps``. Version 2 writes no back-references, so equal values
    # give equal bytes whatever object identity they have. When key order differs between
    # reads (a record written with sorted keys, a tenant's own order), canonical JSON decides.
    if not before == after:
        return False
    if marshal.dumps(before, 2) == marshal.dumps(after, 2):
        return True
    return canonical_bytes(before) == canonical_bytes(after)


def _top_level(value: JSON, *, side: Literal["before", "after"]) -> tuple[PathChange, ...]:
    if isinstance(value, dict) and value:
        return tuple(
            PathChange(path=json_path([key]), parts=(key,), **{side: value[key]}) for key in value
        )
    return (PathChange(path="", **{side: value}),)


def diff_object(object_id: str, before: JSON, after: JSON) -> ObjectDiff | None:
    """The difference of one object (``ABSENT`` for a side that does not exist), or
    ``None`` when both sides are equal. An added or deleted object lists its top-level keys."""
    if before is ABSENT and after is ABSENT:
        return None
    if before is ABSENT:
        return ObjectDiff(object_id, "add", _top_level(after, side="after"))
    if after is ABSENT:
        return ObjectDiff(object_id, "delete", _top_level(before, side="before"))
    if _same(before, after):
        return None
    changes: list[PathChange] = []
    _changes(before, after, (), changes)
    if not changes:
        return None
    changes.sort(key=lambda change: _sort_key(change.parts))
    return ObjectDiff(object_id, "modify", tuple(changes))


def _changes(
    before: JSON, after: JSON, parts: tuple[str | int, ...], out: list[PathChange]
) -> None:
    """Append the changes between two values at ``parts``: objects are compared key by key
    here (what DeepDiff would report, at a fraction of its cost per object); arrays are
    DeepDiff's (its order-aware item matching); anything else is one change."""
    if _same(before, after):
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before.keys() | after.keys():
            at = (*parts, key)
            if key not in after:
                out.append(PathChange(json_path(at), before[key], ABSENT, at))
            elif key not in before:
                out.append(PathChange(json_path(at), ABSENT, after[key], at))
            else:
                _changes(before[key], after[key], at, out)
        return
    if isinstance(before, list) and isinstance(after, list):
        # Imported here: most plans never diff an array, and deepdiff costs ~80 ms to load.
        from deepdiff import DeepDiff
        from deepdiff.helper import notpresent

        tree = DeepDiff(before, after, view="tree", threshold_to_diff_deeper=0)
        for levels in tree.values():
            for level in levels:
                at = (*parts, *level.path(output_format="list"))
                old = ABSENT if level.t1 is notpresent else level.t1
                new = ABSENT if level.t2 is notpresent else level.t2
                moved = (*parts, *level.path(output_format="list", use_t2=True))
                if old is not ABSENT and new is not ABSENT and moved != at:
                    # DeepDiff paired items at different places (after a removal): no one
                    # path holds both values, so it is shown as what went and what came.
                    out.append(PathChange(json_path(at), old, ABSENT, at))
                    out.append(PathChange(json_path(moved), ABSENT, new, moved))
                    continue
                out.append(PathChange(json_path(at), old, new, at))
        return
    out.append(PathChange(json_path(parts), before, after, parts))


def _sort_key(parts: tuple[str | int, ...]) -> tuple[tuple[int, str, int], ...]:
    # Order paths as they read: keys by name, array items by index ([10] after [9]).
    return tuple((1, "", part) if isinstance(part, int) else (0, part, 0) for part in parts)


def diff_objects(before: Mapping[str, JSON], after: Mapping[str, JSON]) -> list[ObjectDiff]:
    """Differences between two sets of objects (id -> JSON), sorted by object id.

    Ids only in ``after`` are adds, only in ``before`` deletes; equal objects are skipped
    (by digest, without reading them, where both sides are :class:`DigestedObjects`).
    """
    result: list[ObjectDiff] = []
    if isinstance(before, DigestedObjects) and isinstance(after, DigestedObjects):
        ids = differing(before.digest_map(), after.digest_map())
        before.prefetch(ids)
        after.prefetch(ids)
    else:
        ids = sorted(before.keys() | after.keys())
    for object_id in ids:
        found = diff_object(object_id, before.get(object_id, ABSENT), after.get(object_id, ABSENT))
        if found is not None:
            result.append(found)
    return result


def differing(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The ids whose digest differs between two maps of id -> digest (added and deleted
    ones included), sorted."""
    if before == after:  # one comparison in C: stops at the first difference
        return []
    get = before.get
    ids = [key for key, digest in after.items() if get(key) != digest]
    ids += [key for key in before if key not in after]
    ids.sort()
    return ids
