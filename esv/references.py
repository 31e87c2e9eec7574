"""Which ESVs each config object references, where, and whether an environment has them.

:func:`index_references` answers *where is each ESV used* (``esv usage``, the engine's
preflight); :func:`check_environment` answers *can this environment run this config*
(``esv check``, ``validate``) without reading any secret value. :func:`build_index` does the
part of the check that depends only on the config, once for any number of environments: it
keeps each object's :mod:`~esv.refsummary` and checks, per environment, only the objects a
problem can be in, each walked by :class:`~esv.refwalk.ObjectCheck`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import compress
from typing import Any, cast

from esv.envfile import EnvironmentFile
from esv.errors import Problem
from esv.objects import DigestedObjects
from esv.placeholders import parse
from esv.refsummary import Summary, WrapperKey, summarise
from esv.refwalk import ObjectCheck, nested_placeholders, walk_nodes

__all__ = [
    "Reference",
    "ReferenceIndex",
    "Summary",
    "build_index",
    "check_environment",
    "index_references",
    "summarise",
]


@dataclass(frozen=True)
class Reference:
    """One ``&{esv.x}`` in one config object.

    ``path`` is the JSON path of the string (of the wrapper object when wrapped);
    ``defaulted`` is true when the placeholder has a ``|default``; ``wrapper`` is the
    innermost typed wrapper around it (``$int``) or ``None``. Placeholders inside a default
    are listed too, with their own ``defaulted``.
    """

    object_id: str
    path: str
    esv_id: str
    defaulted: bool
    wrapper: str | None


def index_references(objects: Mapping[str, Any]) -> list[Reference]:
    """Every ESV reference of every object, in object then document order."""
    found: list[Reference] = []
    for object_id, document in objects.items():
        for node, path, wrapper in walk_nodes(document):
            if not isinstance(node, str):
                continue
            for placeholder in nested_placeholders(parse(node)):
                if placeholder.esv_id is not None:
                    found.append(
                        Reference(
                            object_id,
                            path,
                            placeholder.esv_id,
                            placeholder.default is not None,
                            wrapper,
                        )
                    )
    return found


# -- the index: what the check reads, whatever the environment ------------------------------


@dataclass(frozen=True, eq=False)
class ReferenceIndex:
    """What :func:`check_environment` reads of a set of config objects, whatever the
    environment: which ESV ids each object references, and how (see :func:`build_index`).

    With it, checking one environment costs a step per distinct ESV id and per distinct
    wrapper text, then a walk of only the objects that have a problem there, instead of a
    walk of every string of every object. Objects sharing a summary share one instance;
    the maps below name those instances (by ``id``), and the objects of some of them are
    found in one pass in C over the list of each object's instance.
    """

    esv_ids: frozenset[str]
    """Every ESV id some object references (placeholders inside defaults included)."""
    _documents: Mapping[str, Any] = field(repr=False)
    """The objects (a :class:`~esv.objects.DigestedObjects` is kept as it is, unread)."""
    _ids: list[str] = field(repr=False)
    _sums: list[Summary] = field(repr=False)
    """Each object's summary, in the order of ``_ids``."""
    _keys: list[int] = field(repr=False)
    """``id`` of each object's summary, in the order of ``_ids``."""
    _by_esv: dict[str, list[int]] = field(repr=False)
    """ESV id -> the summaries (``id``) referencing it; likewise below."""
    _required: dict[str, list[int]] = field(repr=False)
    _bare: dict[str, list[int]] = field(repr=False)
    _wrappers: dict[WrapperKey, tuple[dict[str, Any], list[int]]] = field(repr=False)
    _fixed: list[int] = field(repr=False)

    def __len__(self) -> int:
        return len(self._documents)

    @functools.cached_property
    def _summaries(self) -> dict[str, Summary]:
        return dict(zip(self._ids, self._sums, strict=True))

    def positions(self, summaries: Iterable[int]) -> list[int]:
        """Positions (in object order) of the objects whose summary is one of
        ``summaries`` (``id`` of each)."""
        wanted = set(summaries)
        if not wanted:
            return []
        return list(compress(range(len(self._keys)), map(wanted.__contains__, self._keys)))

    def referencing(self, esv_ids: Iterable[str]) -> set[str]:
        """Ids of the objects that reference one of ``esv_ids`` (in a default too)."""
        ids = self._ids
        by_esv = self._by_esv
        return {ids[p] for p in self.positions(k for e in esv_ids for k in by_esv.get(e, ()))}


def build_index(
    objects: Mapping[str, Any], *, reuse: ReferenceIndex | None = None
) -> ReferenceIndex:
    """Read ``objects`` (object id -> parsed JSON) once for checks against any number of
    environments (``check_environment(objects, env, index=...)``).

    ``reuse``: an index built before; an object whose id maps to the very same document
    there is not read again, and when all are (same ids, same order) ``reuse`` itself is
    returned. Documents are read, not copied: a document changed afterwards must be indexed
    again (give the changed document as a new object). A :class:`~esv.objects.DigestedObjects`
    is kept as it is: the summaries it knows are used without reading its documents, and
    ``reuse`` is compared by digest.
    """
    if reuse is not None and _same_objects(reuse, objects):
        return reuse
    documents = objects if isinstance(objects, DigestedObjects) else dict(objects)
    ids = list(documents)
    sums = _summaries(documents, ids, reuse)
    keys = list(map(id, sums))
    by_esv: dict[str, list[int]] = {}
    required: dict[str, list[int]] = {}
    bare: dict[str, list[int]] = {}
    wrappers: dict[WrapperKey, tuple[dict[str, Any], list[int]]] = {}
    fixed: list[int] = []
    for key, summary in dict(zip(keys, sums, strict=True)).items():  # each distinct instance once
        for esv_id in summary.ids:
            by_esv.setdefault(esv_id, []).append(key)
        for esv_id in summary.required:
            required.setdefault(esv_id, []).append(key)
        for esv_id in summary.bare:
            bare.setdefault(esv_id, []).append(key)
        for wrapper, node in zip(summary.wrappers, summary.nodes, strict=True):
            wrappers.setdefault(wrapper, (node, []))[1].append(key)
        if summary.fixed:
            fixed.append(key)
    return ReferenceIndex(
        esv_ids=frozenset(by_esv),
        _documents=documents,
        _ids=ids,
        _sums=sums,
        _keys=keys,
        _by_esv=by_esv,
        _required=required,
        _bare=bare,
        _wrappers=wrappers,
        _fixed=fixed,
    )


def _summaries(
    documents: Mapping[str, Any], ids: list[str], reuse: ReferenceIndex | None
) -> list[Summary]:
    """Each object's summary, in the order of ``ids``: known by a digested set, from
    ``reuse``, or read now. Equal summaries made here share one instance with each other
    and with a known one (most objects share theirs with many: each is then checked once).
    """
    known = documents if isinstance(documents, DigestedObjects) else None
    given = known.known_summaries() if known is not None else {}
    sums: list[Summary | None] = list(map(given.get, ids))  # in C: 20,000 ids
    missing = [position for position, summary in enumerate(sums) if summary is None]
    if missing:
        distinct = dict(zip(map(id, sums), sums, strict=True)).values()
        shared = {summary: summary for summary in distinct if summary is not None}
        for position in missing:
            object_id = ids[position]
            summary = _reused(reuse, documents, object_id)
            if summary is None:
                summary = (
                    known.summary(object_id)
                    if known is not None
                    else summarise(documents[object_id])
                )
            sums[position] = shared.setdefault(summary, summary)
    return cast(list[Summary], sums)


_ABSENT = object()


def _reused(
    reuse: ReferenceIndex | None, documents: Mapping[str, Any], object_id: str
) -> Summary | None:
    """The summary ``reuse`` holds for the same document: the very same object, or (both
    known by digest) the same content."""
    if reuse is None or object_id not in reuse._summaries:
        return None
    old = reuse._documents
    if isinstance(old, DigestedObjects) and isinstance(documents, DigestedObjects):
        same = old.digest(object_id) == documents.digest(object_id)
    elif isinstance(old, DigestedObjects) or isinstance(documents, DigestedObjects):
        return None
    else:
        same = old.get(object_id, _ABSENT) is documents[object_id]
    return reuse._summaries[object_id] if same else None


def _same_objects(index: ReferenceIndex, objects: Mapping[str, Any]) -> bool:
    held = index._documents
    if len(held) != len(objects) or list(held) != list(objects):
        return False
    if isinstance(held, DigestedObjects) and isinstance(objects, DigestedObjects):
        return held is objects or all(held.digest(k) == objects.digest(k) for k in held)
    if isinstance(held, DigestedObjects) or isinstance(objects, DigestedObjects):
        return False
    return all(held[key] is value for key, value in objects.items())


def check_environment(
    objects: Mapping[str, Any], env: EnvironmentFile, *, index: ReferenceIndex | None = None
) -> list[Problem]:
    """Referenced vs defined for one environment, without reading secrets.

    Errors: an ESV referenced without default that ``env`` does not define; a wrapper whose
    statically known text cannot convert (``$int`` of ``abc``). Warnings: a wrapper that differs
    from the ESV's declared type, a non-string ESV used as bare text, text after ``&{`` that
    is not a placeholder, and ESVs ``env`` defines that no object references. In object then
    document order, the unused ESVs last.

    ``index``: ``build_index(objects)``, when built already (one index serves every
    environment). ``ValueError`` when it was built for other object ids.
    """
    if index is None:
        index = build_index(objects)
    elif index._documents is not objects and list(index._documents) != list(objects):
        raise ValueError("the reference index was built for other config objects")
    check = ObjectCheck.of(env)
    # The objects that can have a problem here: all others have none (see Summary).
    walk: set[int] = set(index._fixed)  # summaries (``id``) whose objects are walked
    for esv_id, summaries in index._required.items():
        if esv_id not in env.variables and esv_id not in env.secrets:
            walk.update(summaries)
    for esv_id, variable in env.variables.items():
        if variable.type != "string" and esv_id in index._bare:
            walk.update(index._bare[esv_id])
    for node, summaries in index._wrappers.values():
        check.wrapped(node, "", "")
        if check.problems:
            check.problems = []
            walk.update(summaries)
    if walk:
        ids = index._ids
        for position in index.positions(walk):
            check.check(ids[position], index._documents[ids[position]])
    check.problems += _label_secrets_in_config(env, index)
    check.problems += _unused(env, index)
    return check.problems


def _label_secrets_in_config(env: EnvironmentFile, index: ReferenceIndex) -> list[Problem]:
    """An error for each ``useInPlaceholders: false`` secret that config references: the
    platform resolves such a secret only through secret labels, never in config."""
    problems = []
    for esv_id, secret in env.secrets.items():
        if secret.use_in_placeholders or esv_id not in index.esv_ids:
            continue
        users = sorted(index.referencing([esv_id]))
        problems.append(
            Problem(
                env.relpath,
                f"secrets.{esv_id}",
                f"has useInPlaceholders: false, yet config references it ({', '.join(users)})"
                "; the platform does not resolve such a secret in config",
                esv_id=esv_id,
                hint="remove useInPlaceholders: false (it is fixed when the secret is "
                "created), or stop referencing it",
            )
        )
    return problems


def _unused(env: EnvironmentFile, index: ReferenceIndex) -> list[Problem]:
    """A warning for each ESV ``env`` defines that no object references (secrets kept out
    of placeholders excepted: secret labels use them)."""
    problems = []
    for esv_id in [*env.variables, *env.secrets]:
        declared = env.secrets.get(esv_id)
        if esv_id in index.esv_ids or (declared is not None and not declared.use_in_placeholders):
            continue
        kind = "variables" if esv_id in env.variables else "secrets"
        problems.append(
            Problem(
                env.relpath,
                f"{kind}.{esv_id}",
                "is defined but no config object references it",
                severity="warning",
                esv_id=esv_id,
            )
        )
    return problems
