"""Which ESVs each config object references, where, and whether an environment has them.

:func:`index_references` answers *where is each ESV used* (``esv usage``, the engine's
preflight); :func:`check_environment` answers *can this environment run this config*
(``esv check``, ``validate``) without reading any secret value. :func:`build_index` does the
part of the check that depends only on the config, once for any number of environments.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from esv.conversions import (
    WRAPPER_FOR_TYPE,
    ConversionError,
    as_text,
    convert,
    innermost_text,
    wrapper_of,
)
from esv.envfile import EnvironmentFile, Variable
from esv.errors import MISSING_ESV, Problem
from esv.ids import is_valid_id
from esv.objects import DigestedObjects
from esv.placeholders import Placeholder, Segment, invalid_tokens, parse
from esv.resolver import json_path

__all__ = [
    "Reference",
    "ReferenceIndex",
    "Summary",
    "build_index",
    "check_environment",
    "index_references",
    "summarise",
]

_TYPED_WRAPPERS = frozenset({"$string", "$int", "$number", "$bool", "$list", "$array", "$object"})


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


_Node = tuple[Any, str, str | None]


def _nodes(document: Any) -> Iterator[_Node]:
    """``(node, path, wrapper)`` in document order for the nodes a check reads: strings
    holding ``&`` (others hold no placeholder and no invalid token) and typed wrapper objects.

    ``path`` is the node's JSON path (:func:`esv.resolver.json_path`); ``wrapper`` is the key
    of the wrapper directly around the node, or ``None``. Iterative, so any depth is fine.
    """
    stack: list[_Node] = [(document, "", None)]
    while stack:
        node, path, wrapper = stack.pop()
        if isinstance(node, str):
            if "&" in node:
                yield node, path, wrapper
        elif isinstance(node, dict):
            typed = wrapper_of(node)
            if typed is not None:
                yield node, path, wrapper
                stack.append((typed[1], path, typed[0]))
                continue
            for key, value in reversed(node.items()):
                if isinstance(value, str) and "&" not in value:
                    continue
                if isinstance(value, str | dict | list):
                    step = _key_step(key)
                    if not path and step[0] == ".":
                        step = step[1:]
                    stack.append((value, path + step, None))
        elif isinstance(node, list):
            for index in range(len(node) - 1, -1, -1):
                value = node[index]
                if isinstance(value, str) and "&" not in value:
                    continue
                if isinstance(value, str | dict | list):
                    stack.append((value, f"{path}[{index}]", None))


@lru_cache(maxsize=65536)
def _key_step(key: str) -> str:
    """What ``key`` adds to a JSON path: ``.key``, or ``["a.b"]`` when not a plain word."""
    step = json_path((key,))
    return step if step.startswith("[") else "." + step


def _placeholders(segments: Sequence[Segment]) -> Iterator[Placeholder]:
    for segment in segments:
        if isinstance(segment, Placeholder):
            yield segment
            if segment.default is not None:
                yield from _placeholders(segment.default)


def index_references(objects: Mapping[str, Any]) -> list[Reference]:
    """Every ESV reference of every object, in object then document order."""
    found: list[Reference] = []
    for object_id, document in objects.items():
        for node, path, wrapper in _nodes(document):
            if not isinstance(node, str):
                continue
            for placeholder in _placeholders(parse(node)):
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

_CACHE_LIMIT = 1024
"""Strings up to this length are remembered across indexes (short strings repeat)."""


@dataclass(frozen=True, slots=True)
class _Text:
    """What a string holds in any environment: the ESV ids it references (defaults'
    included), those of them in a placeholder without a default (where an undefined ESV is
    an error), the id of its lone placeholder when the placeholder is the whole string, and
    whether it holds a ``&{`` that is not a placeholder."""

    ids: tuple[str, ...]
    required: tuple[str, ...]
    lone: str | None
    invalid: bool


def _text(text: str) -> _Text:
    return _text_cached(text) if len(text) <= _CACHE_LIMIT else _read_text(text)


@lru_cache(maxsize=65536)
def _text_cached(text: str) -> _Text:
    return _read_text(text)


def _read_text(text: str) -> _Text:
    segments = parse(text)
    found = [p for p in _placeholders(segments) if p.esv_id is not None]
    ids = tuple(dict.fromkeys(p.esv_id for p in found if p.esv_id is not None))
    required = tuple(dict.fromkeys(p.esv_id for p in found if p.esv_id and p.default is None))
    lone = None
    if len(segments) == 1 and isinstance(segments[0], Placeholder):
        lone = segments[0].esv_id
    return _Text(ids, required, lone, bool(invalid_tokens(text)))


_WrapperKey = tuple[tuple[tuple[str, str | None], ...], str]
"""All a wrapper's check reads: ``((wrapper, charset), ...)`` from the outside in, and the
text at the bottom."""


def _wrapper_key(node: dict[str, Any]) -> tuple[_WrapperKey | None, Any]:
    """The key of a wrapper (``None`` when no text is at its bottom: nothing to convert) and
    what is at its bottom."""
    chain: list[tuple[str, str | None]] = []
    inner: Any = node
    while isinstance(inner, dict):
        typed = wrapper_of(inner)
        if typed is None:
            break
        chain.append((typed[0], typed[2]))
        inner = typed[1]
    return ((tuple(chain), inner) if isinstance(inner, str) else None), inner


@dataclass(frozen=True, slots=True)
class Summary:
    """What one object holds that a check can find a problem in (:func:`summarise`); objects
    sharing a summary share one instance within an index. Plain data (tuples, text, JSON),
    so a cache can keep it beside the object's digest.

    ``ids``: every ESV id referenced; ``bare``: ids that are a whole string outside any
    wrapper; ``wrappers``: the keys of its outermost wrappers that hold ESV placeholders;
    ``fixed``: it holds an invalid token or a wrapper without ESVs that cannot convert (a
    problem in every environment); ``required``: the ids in a placeholder without a default
    (only those can be missing); ``nodes``: a wrapper object of the document for each of
    ``wrappers``, in the same order (what the check converts).
    """

    ids: tuple[str, ...]
    bare: tuple[str, ...]
    wrappers: tuple[_WrapperKey, ...]
    fixed: bool
    required: tuple[str, ...]
    nodes: tuple[dict[str, Any], ...] = field(default=(), compare=False)


def summarise(document: Any) -> Summary:
    """What ``document`` holds that a reference check reads (see :class:`Summary`)."""
    ids: set[str] = set()
    required: set[str] = set()
    bare: set[str] = set()
    nodes: dict[_WrapperKey, dict[str, Any]] = {}
    fixed = False
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "&" in node:
                read = _text(node)
                ids.update(read.ids)
                required.update(read.required)
                fixed = fixed or read.invalid
                if read.lone is not None:
                    bare.add(read.lone)
        elif isinstance(node, dict):
            if wrapper_of(node) is None:
                stack.extend(node.values())
                continue
            key, inner = _wrapper_key(node)
            if key is None:
                stack.append(inner)  # its strings are checked as any other string's
            elif "&" in key[1]:
                read = _text(key[1])
                ids.update(read.ids)
                required.update(read.required)
                fixed = fixed or read.invalid
                if read.ids:
                    nodes.setdefault(key, node)
                else:
                    fixed = fixed or _fails(key, node)
            else:
                fixed = fixed or _fails(key, node)
        elif isinstance(node, list):
            stack.extend(node)
    keys = sorted(nodes)
    return Summary(
        tuple(sorted(ids)),
        tuple(sorted(bare)),
        tuple(keys),
        fixed,
        tuple(sorted(required)),
        tuple(nodes[k] for k in keys),
    )


_FAILS: dict[_WrapperKey, bool] = {}
_FAILS_MAX = 65536


def _fails(key: _WrapperKey, node: dict[str, Any]) -> bool:
    """Whether a wrapper without ESVs fails its check (the same in every environment)."""
    failed = _FAILS.get(key)
    if failed is None:
        check = _Check({}, {}, "")
        check.wrapped(node, "", "")
        failed = bool(check.problems)
        if len(_FAILS) >= _FAILS_MAX:
            _FAILS.clear()
        _FAILS[key] = failed
    return failed


@dataclass(frozen=True, eq=False)
class ReferenceIndex:
    """What :func:`check_environment` reads of a set of config objects, whatever the
    environment: which ESV ids each object references, and how (see :func:`build_index`).

    With it, checking one environment costs a step per distinct ESV id and per distinct
    wrapper text, then a walk of only the objects that have a problem there, instead of a
    walk of every string of every object.
    """

    esv_ids: frozenset[str]
    """Every ESV id some object references (placeholders inside defaults included)."""
    _documents: Mapping[str, Any] = field(repr=False)
    """The objects (a :class:`~esv.objects.DigestedObjects` is kept as it is, unread)."""
    _summaries: dict[str, Summary] = field(repr=False)
    _by_esv: dict[str, list[int]] = field(repr=False)
    """ESV id -> positions of the objects referencing it; likewise below."""
    _required: dict[str, list[int]] = field(repr=False)
    _bare: dict[str, list[int]] = field(repr=False)
    _wrappers: dict[_WrapperKey, tuple[dict[str, Any], list[int]]] = field(repr=False)
    _fixed: list[int] = field(repr=False)

    def __len__(self) -> int:
        return len(self._documents)

    def referencing(self, esv_ids: Iterable[str]) -> set[str]:
        """Ids of the objects that reference one of ``esv_ids`` (in a default too)."""
        ids = list(self._documents)
        return {ids[position] for esv_id in esv_ids for position in self._by_esv.get(esv_id, ())}


def build_index(
    objects: Mapping[str, Any], *, reuse: ReferenceIndex | None = None
) -> ReferenceIndex:
    """Read ``objects`` (object id -> parsed JSON) once for checks against any number of
    environments (``check_environment(objects, env, index=...)``).

    ``reuse``: an index built before; an object whose id maps to the very same document
    there is not read again, and when all are (same ids, same order) ``reuse`` itself is
    returned. Documents are read, not copied: a document changed afterwards must be indexed
    again (give the changed document as a new object).
    """
    if reuse is not None and _same_objects(reuse, objects):
        return reuse
    documents = objects if isinstance(objects, DigestedObjects) else dict(objects)
    known = objects if isinstance(objects, DigestedObjects) else None
    summaries: dict[str, Summary] = {}
    shared: dict[Summary, Summary] = {}
    # Objects by summary (most objects share theirs with many): each summary is read once.
    groups: dict[int, tuple[Summary, list[int]]] = {}
    for position, object_id in enumerate(documents):
        summary = _reused(reuse, documents, object_id)
        if summary is None:
            summary = (
                known.summary(object_id) if known is not None else summarise(documents[object_id])
            )
        group = groups.get(id(summary))
        if group is None:
            summary = shared.setdefault(summary, summary)
            group = groups.setdefault(id(summary), (summary, []))
        group[1].append(position)
        summaries[object_id] = group[0]
    by_esv: dict[str, list[int]] = {}
    required: dict[str, list[int]] = {}
    bare: dict[str, list[int]] = {}
    wrappers: dict[_WrapperKey, tuple[dict[str, Any], list[int]]] = {}
    fixed: list[int] = []
    for summary, positions in groups.values():
        for esv_id in summary.ids:
            by_esv.setdefault(esv_id, []).extend(positions)
        for esv_id in summary.required:
            required.setdefault(esv_id, []).extend(positions)
        for esv_id in summary.bare:
            bare.setdefault(esv_id, []).extend(positions)
        for key, node in zip(summary.wrappers, summary.nodes, strict=True):
            wrappers.setdefault(key, (node, []))[1].extend(positions)
        if summary.fixed:
            fixed.extend(positions)
    return ReferenceIndex(
        esv_ids=frozenset(by_esv),
        _documents=documents,
        _summaries=summaries,
        _by_esv=by_esv,
        _required=required,
        _bare=bare,
        _wrappers=wrappers,
        _fixed=fixed,
    )


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


class _Unknown:
    """A value that cannot be known statically (it derives from a secret, or is missing)."""


_UNKNOWN = _Unknown()


class _Check:
    """One environment's check over all objects."""

    def __init__(
        self, variables: Mapping[str, Variable], secrets: Mapping[str, object], relpath: str
    ) -> None:
        self.variables = variables
        self.secrets = secrets
        self.relpath = relpath
        self.problems: list[Problem] = []
        self.used: set[str] = set()

    @classmethod
    def of(cls, env: EnvironmentFile) -> _Check:
        return cls(env.variables, env.secrets, env.relpath)

    def check(self, object_id: str, document: Any) -> None:
        """Every problem of one object, in document order (unused ESVs aside)."""
        for node, path, wrapper in _nodes(document):
            if not isinstance(node, str):
                if wrapper is None:
                    self.wrapped(node, object_id, path)
                continue
            segments = parse(node)
            self.invalid(node, object_id, path)
            self.missing(segments, object_id, path)
            if wrapper is None:
                self.bare(segments, object_id, path)

    def missing(self, segments: Sequence[Segment], object_id: str, path: str) -> None:
        """Errors for undefined ESVs without default; defaults are checked only when used."""
        for segment in segments:
            if not isinstance(segment, Placeholder) or segment.esv_id is None:
                continue
            esv_id = segment.esv_id
            self.used.add(esv_id)
            if esv_id in self.variables or esv_id in self.secrets:
                if segment.default is not None:
                    self.used.update(p.esv_id for p in _placeholders(segment.default) if p.esv_id)
                continue
            if segment.default is not None:
                self.missing(segment.default, object_id, path)
                continue
            hint = f"add it under variables: or secrets: in {self.relpath}, or give a default"
            if not is_valid_id(esv_id):
                hint = f"{esv_id} is not a valid ESV id; ESV tokens are lower case: esv.a.b"
            self.problems.append(
                Problem(
                    object_id,
                    path,
                    f"{segment.raw}: ESV {esv_id} is not defined in {self.relpath}",
                    esv_id=esv_id,
                    hint=hint,
                    code=MISSING_ESV,
                )
            )

    def text(self, segments: Sequence[Segment]) -> str | _Unknown:
        """The resolved text when it needs no secret and nothing is missing."""
        parts: list[str] = []
        for segment in segments:
            if isinstance(segment, str):
                parts.append(segment)
            elif segment.esv_id is None:
                parts.append(segment.raw)
            elif segment.esv_id in self.variables:
                parts.append(self.variables[segment.esv_id].value)
            elif segment.esv_id in self.secrets:
                return _UNKNOWN
            elif segment.default is not None:
                inner = self.text(segment.default)
                if isinstance(inner, _Unknown):
                    return inner
                parts.append(inner)
            else:
                return _UNKNOWN
        return "".join(parts)

    def wrapped(self, node: dict[str, Any], object_id: str, path: str) -> Any:
        """The wrapper's value when statically known; conversion errors and type warnings."""
        typed = wrapper_of(node)
        assert typed is not None
        key, inner, charset = typed
        text: Any
        if isinstance(inner, str):
            segments = parse(inner)
            self.mismatch(key, segments, object_id, path)
            text = self.text(segments)
        elif isinstance(inner, dict) and wrapper_of(inner) is not None:
            text = self.wrapped(inner, object_id, path)
            if not isinstance(text, _Unknown):
                text = as_text(text)
        else:
            return _UNKNOWN
        if isinstance(text, _Unknown):
            return text
        try:
            return convert(key, text, charset)
        except ConversionError as error:
            ids = [p.esv_id for p in _placeholders(parse(innermost_text(inner)))]
            source = f" (from {', '.join(i for i in ids if i)})" if any(ids) else ""
            self.problems.append(
                Problem(
                    object_id,
                    path,
                    f"{key} of {json.dumps(text)}{source}: {error}",
                    esv_id=next((i for i in ids if i), None),
                    hint=f"fix the value in {self.relpath} or the wrapper",
                )
            )
            return _UNKNOWN

    def mismatch(
        self, wrapper: str, segments: Sequence[Segment], object_id: str, path: str
    ) -> None:
        """Warn when a lone placeholder's declared type does not match its wrapper."""
        if wrapper not in _TYPED_WRAPPERS or len(segments) != 1:
            return
        segment = segments[0]
        if not isinstance(segment, Placeholder) or segment.esv_id is None:
            return
        variable = self.variables.get(segment.esv_id)
        if variable is None or wrapper in WRAPPER_FOR_TYPE.get(variable.type, frozenset()):
            return
        self.problems.append(
            Problem(
                object_id,
                path,
                f"{wrapper} over {variable.id}, which {self.relpath} declares {variable.type}",
                severity="warning",
                esv_id=variable.id,
                hint="make the wrapper and the ESV's type agree",
            )
        )

    def bare(self, segments: Sequence[Segment], object_id: str, path: str) -> None:
        """Warn when a non-string ESV is the whole value of a string without a wrapper."""
        if len(segments) != 1 or not isinstance(segments[0], Placeholder):
            return
        segment = segments[0]
        variable = self.variables.get(segment.esv_id or "")
        if variable is None or variable.type == "string":
            return
        wrapper = sorted(WRAPPER_FOR_TYPE[variable.type])[0]
        self.problems.append(
            Problem(
                object_id,
                path,
                f"{variable.id} is declared {variable.type} but used as text",
                severity="warning",
                esv_id=variable.id,
                hint=f'wrap it: {{"{wrapper}": "{segment.raw}"}}',
            )
        )

    def invalid(self, text: str, object_id: str, path: str) -> None:
        for token in invalid_tokens(text):
            self.problems.append(
                Problem(
                    object_id,
                    path,
                    f"{token} is not a placeholder and is left as written",
                    severity="warning",
                    hint="placeholder tokens use only letters, digits, _ and . (&{esv.a.b})",
                )
            )


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
    check = _Check.of(env)
    # The objects that can have a problem here: all others have none (see Summary).
    walk: set[int] = set(index._fixed)
    for esv_id, positions in index._required.items():
        if esv_id not in env.variables and esv_id not in env.secrets:
            walk.update(positions)
    for esv_id, variable in env.variables.items():
        if variable.type != "string" and esv_id in index._bare:
            walk.update(index._bare[esv_id])
    for node, positions in index._wrappers.values():
        check.wrapped(node, "", "")
        if check.problems:
            check.problems = []
            walk.update(positions)
    if walk:
        ids = list(index._documents)
        for position in sorted(walk):
            check.check(ids[position], index._documents[ids[position]])
    check.problems += _label_secrets_in_config(env, index)
    check.problems += _unused(env, index)
    return check.problems


def _label_secrets_in_config(env: EnvironmentFile, index: ReferenceIndex) -> list[Problem]:
    """An error for each ``useInPlaceholders: false`` secret that config references: the
    platform resolves such a secret only through secret labels, never in config."""
    documents = list(index._documents)
    problems = []
    for esv_id, secret in env.secrets.items():
        if secret.use_in_placeholders or esv_id not in index.esv_ids:
            continue
        users = sorted({documents[position] for position in index._by_esv[esv_id]})
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
