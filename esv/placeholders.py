"""The placeholder grammar: ``&{token}``, ``&{token|default}``, and the ``&<esv.x>`` alias.

A string is parsed into segments: literal text and :class:`Placeholder` records. Grammar::

    placeholder := "&{" token ( "|" default )? "}"
    alias       := "&<" esv-token ( "|" default )? ">"      (read only; written as &{...})
    token       := [A-Za-z0-9_.]+
    default     := text with balanced braces; may hold placeholders; only the first "|" splits

Only tokens starting with ``esv.`` refer to ESVs; other tokens belong to the platform and are
kept verbatim. Text after ``&{`` that is not a valid token (``&{esv.my-var}``,
``&{${installDir}}``) is not a placeholder: it stays as it is and is reported by
:func:`invalid_tokens` so ``validate`` can warn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from esv.ids import is_valid_id, token_to_id

__all__ = [
    "Placeholder",
    "Segment",
    "invalid_tokens",
    "normalise",
    "normalise_document",
    "PLAIN",
    "parse",
    "parse_uncached",
    "plain_token_id",
]

_TOKEN = re.compile(r"[A-Za-z0-9_.]+")
_SNIPPET = 60
_SIMPLE: dict[str, Placeholder] = {}
"""``&{token}`` placeholders without default, by token: the same few hundred ESVs are
referenced again and again (a bounded cache: cleared when it grows past _SIMPLE_MAX)."""
_SIMPLE_MAX = 100_000


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One ``&{token|default}``. ``default`` is parsed; ``None`` when there is no ``|``.

    ``raw`` is the placeholder as written back (``&{...}`` form, aliases inside normalised).
    ``esv_id`` is the referenced ESV id, or ``None`` for a platform token (not ``esv.``).
    """

    token: str
    default: tuple[Segment, ...] | None
    raw: str
    esv_id: str | None


Segment = str | Placeholder


def _scan_close(text: str, start: int, open_char: str, close_char: str) -> int:
    """Index of the ``close_char`` ending a balanced run from ``start``, or -1."""
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        if char == open_char:
            depth += 1
        elif char == close_char:
            if depth == 0:
                return index
            depth -= 1
    return -1


def _parse_at(text: str, start: int, close_char: str) -> tuple[Placeholder, int] | None:
    """Parse a placeholder whose token starts at ``start``; ``(placeholder, end)`` or None."""
    found = _TOKEN.match(text, start)
    if found is None:
        return None
    index = found.end()
    if index >= len(text):
        return None
    token = found.group()
    default: tuple[Segment, ...] | None = None
    if text[index] == close_char:
        return _simple(token), index + 1
    open_char = "{" if close_char == "}" else "<"
    if text[index] == "|":
        close = _scan_close(text, index + 1, open_char, close_char)
        if close < 0:
            return None
        default = parse(text[index + 1 : close])
    else:
        return None
    esv_id = token_to_id(token) if token.startswith("esv.") else None
    end = close + 1
    raw = "&{" + token
    if default is not None:
        raw += "|" + "".join(s if isinstance(s, str) else s.raw for s in default)
    raw += "}"
    return Placeholder(token, default, raw, esv_id), end


_CACHE_LIMIT = 1024
"""Strings up to this length are cached (short placeholder strings repeat; long text rarely)."""


def parse(text: str) -> tuple[Segment, ...]:
    """Split ``text`` into literal strings and placeholders (adjacent literals joined)."""
    if len(text) <= _CACHE_LIMIT:
        return _parse_cached(text)
    return _parse(text)


@lru_cache(maxsize=65536)
def _parse_cached(text: str) -> tuple[Segment, ...]:
    return _parse(text)


def parse_uncached(text: str) -> tuple[Segment, ...]:
    """:func:`parse` for a caller that caches what it makes of the segments itself."""
    return _parse(text)


PLAIN = re.compile(r"&\{([A-Za-z0-9_.]+)(?:\|([^{}&]*))?\}")
"""A placeholder whose default (if any) is plain text: no braces, no other placeholder."""


def _parse_plain(text: str) -> tuple[Segment, ...] | None:
    """The segments of ``text`` when every ``&`` in it starts a :data:`PLAIN` placeholder
    (the common case, in one scan of the regex engine); ``None`` otherwise."""
    segments: list[Segment] = []
    start = placeholders = 0
    for found in PLAIN.finditer(text):
        placeholders += 1
        token, default = found.groups()
        if found.start() > start:
            segments.append(text[start : found.start()])
        if default is None:
            placeholder = _simple(token)
        else:
            esv_id = token_to_id(token) if token.startswith("esv.") else None
            placeholder = Placeholder(token, (default,) if default else (), found.group(), esv_id)
        segments.append(placeholder)
        start = found.end()
    if placeholders != text.count("&"):
        return None  # some "&" is not such a placeholder: the full parser decides
    if start < len(text):
        segments.append(text[start:])
    return tuple(segments)


def plain_token_id(token: str) -> str | None:
    """The ESV id of a placeholder token (``None``: not an ``esv.`` token), cached."""
    return _simple(token).esv_id


def _simple(token: str) -> Placeholder:
    simple = _SIMPLE.get(token)
    if simple is None:
        if len(_SIMPLE) >= _SIMPLE_MAX:
            _SIMPLE.clear()
        esv_id = token_to_id(token) if token.startswith("esv.") else None
        simple = _SIMPLE[token] = Placeholder(token, None, "&{" + token + "}", esv_id)
    return simple


def _parse(text: str) -> tuple[Segment, ...]:
    if "&" not in text:
        return (text,) if text else ()
    plain = _parse_plain(text)
    return plain if plain is not None else _parse_full(text)


def _parse_full(text: str) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    literal_start = 0
    index = text.find("&")
    length = len(text)
    while 0 <= index < length - 1:
        nxt = text[index + 1]
        found: tuple[Placeholder, int] | None = None
        if nxt == "{":
            found = _parse_at(text, index + 2, "}")
        elif nxt == "<" and text.startswith("esv.", index + 2):
            found = _parse_at(text, index + 2, ">")
        if found is None:
            index = text.find("&", index + 1)
            continue
        placeholder, end = found
        if index > literal_start:
            segments.append(text[literal_start:index])
        segments.append(placeholder)
        literal_start = end
        index = text.find("&", end)
    if literal_start < length:
        segments.append(text[literal_start:])
    return tuple(segments)


def normalise(text: str) -> str:
    """``text`` with every ``&<esv.x>`` alias written as ``&{esv.x}``."""
    if "&<" not in text:
        return text
    return "".join(s if isinstance(s, str) else s.raw for s in parse(text))


def normalise_document(document: Any) -> Any:
    """A copy of a parsed JSON document with aliases normalised in every string and key."""
    if isinstance(document, str):
        return normalise(document)
    if isinstance(document, list):
        return [normalise_document(item) for item in document]
    if isinstance(document, dict):
        return {normalise(k): normalise_document(v) for k, v in document.items()}
    return document


def invalid_tokens(text: str) -> list[str]:
    """Every ``&{...}`` in ``text`` that is not a placeholder (left verbatim), as written."""
    found: list[str] = []
    index = text.find("&{")
    while index >= 0:
        if _parse_at(text, index + 2, "}") is None:
            close = _scan_close(text, index + 2, "{", "}")
            snippet = text[index : close + 1] if close >= 0 else text[index:]
            if len(snippet) > _SNIPPET:
                snippet = snippet[:_SNIPPET] + "..."
            found.append(snippet)
        index = text.find("&{", index + 2)
    return found


def esv_reference_ok(placeholder: Placeholder) -> bool:
    """Whether an ``esv.`` placeholder names a valid ESV id."""
    return placeholder.esv_id is not None and is_valid_id(placeholder.esv_id)
