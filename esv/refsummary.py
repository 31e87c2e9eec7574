"""What one config object holds that a reference check can find a problem in, whatever the
environment (:func:`summarise`): plain data, kept by :class:`~esv.references.ReferenceIndex`
for each object and by the workspace's cache of digests for each file."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from esv.conversions import wrapper_of
from esv.placeholders import Placeholder, invalid_tokens, parse
from esv.refwalk import ObjectCheck, nested_placeholders

__all__ = ["Summary", "WrapperKey", "summarise"]

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
    found = [p for p in nested_placeholders(segments) if p.esv_id is not None]
    ids = tuple(dict.fromkeys(p.esv_id for p in found if p.esv_id is not None))
    required = tuple(dict.fromkeys(p.esv_id for p in found if p.esv_id and p.default is None))
    lone = None
    if len(segments) == 1 and isinstance(segments[0], Placeholder):
        lone = segments[0].esv_id
    return _Text(ids, required, lone, bool(invalid_tokens(text)))


WrapperKey = tuple[tuple[tuple[str, str | None], ...], str]
"""All a wrapper's check reads: ``((wrapper, charset), ...)`` from the outside in, and the
text at the bottom."""


def _wrapper_key(node: dict[str, Any]) -> tuple[WrapperKey | None, Any]:
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
    wrappers: tuple[WrapperKey, ...]
    fixed: bool
    required: tuple[str, ...]
    nodes: tuple[dict[str, Any], ...] = field(default=(), compare=False)


_NOTHING = Summary((), (), (), False, ())


def summarise(document: Any, text: bytes | None = None) -> Summary:
    """What ``document`` holds that a reference check reads (see :class:`Summary`).

    ``text``: ``document`` as a JSON encoder wrote it (its canonical JSON, made for its
    digest anyway), where ``&`` and ``$`` are never escaped: without an ``&`` no string
    holds a placeholder or an invalid token, and without a string that starts with ``$``
    no object is a wrapper, so there is nothing to find and no walk (most config objects).
    Never a file's own text, which may spell them ``\\u0026`` and ``\\u0024``.
    """
    if text is not None and b"&" not in text and b'"$' not in text:
        return _NOTHING
    ids: set[str] = set()
    required: set[str] = set()
    bare: set[str] = set()
    nodes: dict[WrapperKey, dict[str, Any]] = {}
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


_FAILS: dict[WrapperKey, bool] = {}
_FAILS_MAX = 65536


def _fails(key: WrapperKey, node: dict[str, Any]) -> bool:
    """Whether a wrapper without ESVs fails its check (the same in every environment)."""
    failed = _FAILS.get(key)
    if failed is None:
        check = ObjectCheck({}, {}, "")
        check.wrapped(node, "", "")
        failed = bool(check.problems)
        if len(_FAILS) >= _FAILS_MAX:
            _FAILS.clear()
        _FAILS[key] = failed
    return failed
