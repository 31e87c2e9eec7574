"""Resolve placeholders in parsed JSON: what an environment actually runs.

Resolution walks the parsed tree (never the JSON text), copies only the containers that
change, and collects every unresolved reference and failed conversion before raising one
:class:`~esv.errors.ResolutionError`. It tracks which output values derive from secrets so
that every renderer can print ``Resolved.masked`` instead of ``Resolved.value``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from esv.conversions import (
    WRAPPERS,
    ConversionError,
    as_text,
    convert,
    innermost_text,
    wrapper_of,
)
from esv.errors import MISSING_ESV, Problem, ResolutionError
from esv.ids import is_valid_id
from esv.placeholders import PLAIN, Placeholder, Segment, parse, parse_uncached, plain_token_id
from esv.secrets import MASK
from esv.values import JSON, MAX_DEPTH, EsvValue, Resolved, json_path

__all__ = [
    "JSON",
    "MAX_DEPTH",
    "EsvValue",
    "Resolved",
    "json_path",
    "resolve",
    "resolve_objects",
]

_WRAPPER_KEYS = WRAPPERS | {"$charset"}

_PLANS: dict[str, Placeholder | tuple[Segment, ...]] = {}
_PLANS_MAX = 200_000
_PLAN_TEXT_MAX = 1024


def _plan(text: str) -> Placeholder | tuple[Segment, ...]:
    """How to resolve ``text``: a lone ESV placeholder without default, or its segments.

    Cached: config repeats the same placeholder strings across objects and environments.
    """
    segments = parse_uncached(text)  # cached below, as a plan
    plan: Placeholder | tuple[Segment, ...] = segments
    if len(segments) == 1:
        only = segments[0]
        if type(only) is Placeholder and only.esv_id is not None and only.default is None:
            plan = only
    if len(text) <= _PLAN_TEXT_MAX:
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        _PLANS[text] = plan
    return plan


class _TooDeep(Exception):
    pass


class _NotPlain(Exception):
    pass


def _render_plain(text: str, values: Mapping[str, EsvValue]) -> str | None:
    """``text`` resolved in one scan of the regex engine, when every ``&`` in it starts a
    :data:`~esv.placeholders.PLAIN` placeholder that has a value (not a secret's) or a
    default; ``None`` otherwise: the general path decides, masks and reports."""
    count = 0

    def value_of(found: re.Match[str]) -> str:
        nonlocal count
        count += 1
        token, default = found.groups()
        esv_id = plain_token_id(token)
        if esv_id is None:
            return found.group()
        value = values.get(esv_id)
        if value is None:
            if default is None:
                raise _NotPlain  # undefined: a problem to report
            return default
        if value.secret:
            raise _NotPlain  # to be masked
        return value.text

    try:
        resolved = PLAIN.sub(value_of, text)
    except _NotPlain:
        return None
    return resolved if count == text.count("&") else None


def _esv_ids(segments: Sequence[Segment]) -> list[str]:
    """ESV ids referenced in ``segments``, defaults included, in order, once each."""
    found: list[str] = []
    for segment in segments:
        if isinstance(segment, Placeholder):
            if segment.esv_id is not None and segment.esv_id not in found:
                found.append(segment.esv_id)
            if segment.default is not None:
                found.extend(i for i in _esv_ids(segment.default) if i not in found)
    return found


_IMMUTABLE = frozenset({int, float, bool, str, type(None)})


class _Memo:
    """What each distinct string and wrapper resolved to, with one set of values.

    Shared by the objects of one :func:`resolve_objects` call: config repeats the same
    placeholder strings. Only results without problems and without stand-ins are kept.
    ``plain``: text -> resolved text, when no secret is involved; ``secret`` and ``masked``:
    the resolved and the masked text of the others (plain strings, not tuples, so the memo
    adds nothing for the garbage collector to walk). ``wrappers``: (wrapper key, inner text)
    -> (converted value, secret-derived); ``$list`` results are copied on use.
    """

    __slots__ = ("plain", "secret", "masked", "wrappers")

    def __init__(self) -> None:
        self.plain: dict[str, str] = {}
        self.secret: dict[str, str] = {}
        self.masked: dict[str, str] = {}
        self.wrappers: dict[tuple[str, str], tuple[JSON, bool]] = {}

    def remember(self, text: str, resolved: str, masked: str | None) -> None:
        if masked is None:
            self.plain[text] = resolved
        else:
            self.secret[text] = resolved
            self.masked[text] = masked


class _Walk:
    """One object's resolution: the walk state and what it found."""

    __slots__ = (
        "values",
        "object_id",
        "source",
        "memo",
        "path",
        "problems",
        "secrets",
        "stand_ins",
        "unknown",
    )

    def __init__(
        self,
        values: Mapping[str, EsvValue],
        object_id: str,
        source: str | None = None,
        memo: _Memo | None = None,
    ) -> None:
        self.values = values
        self.object_id = object_id
        self.source = source
        self.memo = memo or _Memo()
        self.path: list[str | int] = []
        self.problems: list[Problem] = []
        self.secrets: list[tuple[tuple[str | int, ...], JSON]] = []
        self.stand_ins = 0
        """How many stand-in values were used so far (a wrapper compares before and after)."""
        self.unknown: list[str] = []

    # -- strings -------------------------------------------------------------------
    def render(self, segments: Sequence[Segment]) -> tuple[str, str | None, bool]:
        """``(text, masked text or None when no secret, complete)`` of parsed segments."""
        values = self.values
        parts: list[str] = []
        masked: list[str] | None = None
        complete = True
        for segment in segments:
            if type(segment) is str:
                parts.append(segment)
                if masked is not None:
                    masked.append(segment)
                continue
            assert isinstance(segment, Placeholder)
            esv_id = segment.esv_id
            if esv_id is None:
                parts.append(segment.raw)
                if masked is not None:
                    masked.append(segment.raw)
                continue
            value = values.get(esv_id)
            if value is not None:
                if value.secret:
                    if value.stand_in:
                        self.stand_ins += 1
                    if masked is None:
                        masked = parts.copy()
                    masked.append(MASK)
                elif masked is not None:
                    masked.append(value.text)
                parts.append(value.text)
            elif segment.default is not None:
                text, inner_masked, inner_complete = self.render(segment.default)
                complete = complete and inner_complete
                if inner_masked is not None and masked is None:
                    masked = parts.copy()
                if masked is not None:
                    masked.append(text if inner_masked is None else inner_masked)
                parts.append(text)
            else:
                complete = False
                self.problems.append(self.undefined(segment, esv_id))
                parts.append(segment.raw)
                if masked is not None:
                    masked.append(segment.raw)
        return "".join(parts), None if masked is None else "".join(masked), complete

    def undefined(self, segment: Placeholder, esv_id: str) -> Problem:
        """The problem of a placeholder without default whose ESV has no value."""
        path = json_path(self.path)
        if not is_valid_id(esv_id):
            return Problem(
                self.object_id,
                path,
                f"{segment.raw}: {esv_id} is not a valid ESV id, so no ESV can define it",
                esv_id=esv_id,
                hint="ESV ids match ^esv-[a-z0-9_-]{1,124}$: write the token in lower case "
                "(&{esv.a.b}), or give a default",
                code=MISSING_ESV,
            )
        where = self.source or "the environment file"
        return Problem(
            self.object_id,
            path,
            f"{segment.raw}: ESV {esv_id} is not defined",
            esv_id=esv_id,
            hint=f"define {esv_id} under variables: or secrets: in {where}, "
            f"or give a default: &{{{segment.token}|value}}",
            code=MISSING_ESV,
        )

    def string(self, text: str, key: str | int | None) -> str:
        """``text`` resolved; ``key`` is its place in the current container (None: root).

        The caller has looked ``text`` up in the memo already.
        """
        plan = _PLANS.get(text)
        if plan is None:
            fast = _render_plain(text, self.values)
            if fast is not None:
                self.memo.plain[text] = fast
                return text if fast == text else fast
            plan = _plan(text)
        if isinstance(plan, Placeholder):
            value = self.values.get(plan.esv_id or "")
            if value is not None:
                if value.secret:
                    here = (*self.path, key) if key is not None else tuple(self.path)
                    self.secrets.append((here, MASK))
                    if value.stand_in:
                        self.stand_ins += 1
                    else:
                        self.memo.remember(text, value.text, MASK)
                else:
                    self.memo.plain[text] = value.text
                return value.text
            segments: tuple[Segment, ...] = (plan,)
        else:
            segments = plan
        if not segments or (len(segments) == 1 and type(segments[0]) is str):
            return text
        if key is not None:
            self.path.append(key)
        problems, stand_ins = len(self.problems), self.stand_ins
        resolved, masked, _ = self.render(segments)
        if masked is not None:
            self.secrets.append((tuple(self.path), masked))
        if key is not None:
            self.path.pop()
        if resolved == text:
            resolved = text
        if len(self.problems) == problems and self.stand_ins == stand_ins:
            self.memo.remember(text, resolved, masked)
        return resolved

    # -- containers ----------------------------------------------------------------
    def container(self, node: JSON, depth: int) -> JSON:
        if depth > MAX_DEPTH:
            raise _TooDeep
        if type(node) is dict:
            if len(node) <= 2 and not _WRAPPER_KEYS.isdisjoint(node):
                wrapper = wrapper_of(node)
                if wrapper is not None:
                    value, secret = self.wrapped(node, wrapper, depth)
                    if secret:
                        self.secrets.append((tuple(self.path), MASK))
                    return value
            out: Any = None
            items: Any = node.items()
        else:
            out = None
            items = enumerate(node)
        path = self.path
        memo = self.memo
        plain = memo.plain
        wrappers = memo.wrappers
        new: JSON
        found: tuple[JSON, bool] | None
        for key, value in items:
            kind = type(value)
            if kind is str:
                if "&" not in value:
                    continue
                new = plain.get(value)
                if new is None:
                    masked = memo.masked.get(value)
                    if masked is None:
                        new = self.string(value, key)
                    else:
                        new = memo.secret[value]
                        self.secrets.append(((*path, key), masked))
            elif kind is dict:
                found = None
                if len(value) == 1 and depth < MAX_DEPTH:
                    for wrapper_key, inner in value.items():
                        if type(inner) is str:
                            found = wrappers.get((wrapper_key, inner))
                if found is None:
                    path.append(key)
                    new = self.container(value, depth + 1)
                    path.pop()
                else:
                    new, secret = found
                    if type(new) is list:
                        new = list(new)
                    if secret:
                        self.secrets.append(((*path, key), MASK))
            elif kind is list:
                path.append(key)
                new = self.container(value, depth + 1)
                path.pop()
            else:
                continue
            if new is not value:
                if out is None:
                    out = dict(node) if type(node) is dict else list(node)
                out[key] = new
        return node if out is None else out

    def wrapped(
        self, node: dict[str, JSON], wrapper: tuple[str, JSON, str | None], depth: int
    ) -> tuple[JSON, bool]:
        """``(converted value, secret-derived)``; on failure the node itself, with a problem."""
        key, inner, charset = wrapper
        stand_ins = self.stand_ins
        if type(inner) is str:
            plan = _PLANS.get(inner)
            if plan is None:
                plan = _plan(inner)
            value = self.values.get(plan.esv_id or "") if isinstance(plan, Placeholder) else None
            if value is not None:
                text, secret, complete = value.text, value.secret, True
                if value.secret and value.stand_in:
                    self.stand_ins += 1
            else:
                segments = parse(inner)
                text, masked, complete = self.render(segments)
                secret = masked is not None
        else:
            if type(inner) is dict and wrapper_of(inner) is not None:
                inner_wrapper = wrapper_of(inner)
                assert inner_wrapper is not None
                problems_before = len(self.problems)
                result, secret = self.wrapped(inner, inner_wrapper, depth + 1)
                complete = len(self.problems) == problems_before
            else:
                mark = len(self.secrets)
                problems_before = len(self.problems)
                result = self.container(inner, depth + 1) if type(inner) in (dict, list) else inner
                secret = len(self.secrets) > mark
                del self.secrets[mark:]
                complete = len(self.problems) == problems_before
            text = as_text(result)
        if not complete:
            return node, secret
        if self.stand_ins != stand_ins:
            # The text derives from a stand-in: whether it converts is not known here.
            self.unknown.append(json_path(self.path))
            return node, secret
        try:
            result = convert(key, text, charset)
        except ConversionError as error:
            ids = _esv_ids(parse(innermost_text(inner)))
            source = f" (from {', '.join(ids)})" if ids else ""
            shown = "a secret value" if secret else json.dumps(text)
            self.problems.append(
                Problem(
                    self.object_id,
                    json_path(self.path),
                    f"{key} of {shown}{source}: {error}",
                    esv_id=ids[0] if ids else None,
                    hint="fix the ESV's value or the wrapper" if ids else "fix the value",
                )
            )
            return node, secret
        if type(inner) is str and len(node) == 1:
            if type(result) in _IMMUTABLE:
                self.memo.wrappers[(key, inner)] = (result, secret)
            elif key == "$list":
                self.memo.wrappers[(key, inner)] = (list(result), secret)
        return result, secret


def _masked(value: JSON, secrets: Sequence[tuple[tuple[str | int, ...], JSON]]) -> JSON:
    """``value`` with each secret path replaced, copying only the containers on those paths."""
    if not secrets:
        return value
    copied: set[int] = set()
    root: Any = None
    for path, mask in secrets:
        if not path:
            return mask
        if root is None:
            root = dict(value) if isinstance(value, dict) else list(value)
            copied.add(id(root))
        node = root
        for part in path[:-1]:
            child = node[part]
            if id(child) not in copied:
                child = dict(child) if isinstance(child, dict) else list(child)
                node[part] = child
                copied.add(id(child))
            node = child
        node[path[-1]] = mask
    return root


_NONE: frozenset[str] = frozenset()
_SECRET_PATHS: dict[tuple[str | int, ...], str] = {}


def _secret_path(path: tuple[str | int, ...]) -> str:
    """:func:`json_path` of a secret's path, cached (objects of one kind share their paths)."""
    found = _SECRET_PATHS.get(path)
    if found is None:
        found = json_path(path)
        if len(_SECRET_PATHS) >= _PLANS_MAX:
            _SECRET_PATHS.clear()
        _SECRET_PATHS[path] = found
    return found


def _resolve(
    document: JSON,
    values: Mapping[str, EsvValue],
    object_id: str,
    source: str | None = None,
    memo: _Memo | None = None,
) -> tuple[Resolved, list[Problem]]:
    walk = _Walk(values, object_id, source, memo)
    try:
        kind = type(document)
        if kind is str:
            value = walk.string(document, None)
        elif kind is dict or kind is list:
            value = walk.container(document, 1)
        else:
            value = document
    except _TooDeep:
        problem = Problem(
            object_id,
            "",
            f"nested deeper than {MAX_DEPTH} levels",
            hint="config objects are never this deep; check the file",
        )
        return Resolved(object_id, document, document), [*walk.problems, problem]
    paths = frozenset([_secret_path(path) for path, _ in walk.secrets]) if walk.secrets else _NONE
    unknown = frozenset(walk.unknown) if walk.unknown else _NONE
    resolved = Resolved(object_id, value, _masked(value, walk.secrets), paths, unknown)
    return resolved, walk.problems


def resolve(
    document: JSON,
    values: Mapping[str, EsvValue],
    *,
    object_id: str,
    source: str | None = None,
) -> Resolved:
    """Resolve every ``&{esv.x}`` in ``document`` with ``values``.

    Raises :class:`~esv.errors.ResolutionError` listing every undefined ESV without a default
    and every failed typed conversion, each with ``object_id`` and JSON path. ``source``
    names where ``values`` come from (``environments/uat.yaml``) in the hints.
    """
    resolved, problems = _resolve(document, values, object_id, source)
    if problems:
        raise ResolutionError(problems)
    return resolved


def resolve_objects(
    objects: Mapping[str, JSON], values: Mapping[str, EsvValue], *, source: str | None = None
) -> dict[str, Resolved]:
    """Resolve every object; one :class:`~esv.errors.ResolutionError` for all their problems.

    ``source`` names where ``values`` come from in the hints (see :func:`resolve`).
    """
    out: dict[str, Resolved] = {}
    problems: list[Problem] = []
    memo = _Memo()
    for object_id, document in objects.items():
        resolved, found = _resolve(document, values, object_id, source, memo)
        out[object_id] = resolved
        problems.extend(found)
    if problems:
        raise ResolutionError(problems)
    return out
