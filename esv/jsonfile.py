"""Config files: JSON read with clear errors, bounded nesting, aliases normalised.

:func:`read_text` is also how the YAML loader reads workspace files.
"""

from __future__ import annotations

import json
import os
from typing import Any

import orjson

from esv.errors import EsvError, Problem, WorkspaceFileError
from esv.placeholders import normalise_document
from esv.resolver import MAX_DEPTH, json_path

__all__ = [
    "SURROGATE_MESSAGE",
    "canonical_bytes",
    "compact_bytes",
    "depth_exceeds",
    "dump_pretty",
    "loads",
    "is_encodable",
    "may_hold_surrogates",
    "load_json",
    "parse_json",
    "read_text",
    "unencodable_text",
]

SURROGATE_MESSAGE = (
    "holds a lone surrogate (an unpaired \\ud800-\\udfff escape): not Unicode text, "
    "no tenant can store it"
)
"""What is wrong with such text, shared by the JSON and YAML loaders (the text is never shown)."""

_JSON_SURROGATE_HINT = "write the character itself, or a complete pair such as \\ud83d\\ude00"


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def depth_exceeds(document: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether objects and arrays in ``document`` nest deeper than ``limit`` (iterative)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False


def is_encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (it holds no lone surrogate ``\\ud800``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def may_hold_surrogates(text: str) -> bool:
    """Whether what ``text`` parses to may hold a lone surrogate: only an escape (JSON's and
    YAML's ``\\u``, YAML's ``\\U``) makes one from text that encodes, so text without one
    needs no walk of what it parsed to."""
    return "\\u" in text or "\\U" in text or not is_encodable(text)


def unencodable_text(document: Any) -> list[tuple[tuple[str | int, ...], bool]]:
    """Where ``document`` holds text that is not UTF-8-encodable (lone surrogates).

    Returns ``(path, is_key)`` pairs in document order: the path of the string, or of the key
    itself when ``is_key``. Iterative, so any depth is fine.
    """
    found: list[tuple[tuple[str | int, ...], bool]] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while stack:
        node, parts = stack.pop()
        if parts and isinstance(parts[-1], str) and not is_encodable(parts[-1]):
            found.append((parts, True))
        if isinstance(node, str):
            if not is_encodable(node):
                found.append((parts, False))
        elif isinstance(node, dict):
            stack.extend((v, (*parts, k)) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((node[i], (*parts, i)) for i in range(len(node) - 1, -1, -1))
    return found


def _unencodable_problems(document: Any, relpath: str) -> list[Problem]:
    return [
        Problem(
            relpath,
            json_path(parts),
            f"{'the key' if is_key else 'the text'} {SURROGATE_MESSAGE}",
            hint=_JSON_SURROGATE_HINT,
        )
        for parts, is_key in unencodable_text(document)
    ]


def parse_json(text: str, *, relpath: str) -> Any:
    """Parse config JSON; ``&<esv.x>`` aliases come back as ``&{esv.x}``.

    Raises :class:`~esv.errors.WorkspaceFileError` naming line and column for malformed JSON,
    and for nesting deeper than :data:`~esv.resolver.MAX_DEPTH`; an :class:`~esv.errors.EsvError`
    naming the JSON path of every string or key holding a lone surrogate (``"\\ud800"``), which
    no tenant can store. The text itself is never shown: it may derive from a secret.
    """
    try:
        # orjson parses the same documents several times faster; anything it refuses
        # (malformed text, lone surrogates, integers beyond 64 bits) goes through json,
        # which accepts or reports it as it always has.
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        document = _NOT_PARSED
    try:
        if document is _NOT_PARSED:
            document = json.loads(text, parse_constant=_constant)
    except json.JSONDecodeError as error:
        raise WorkspaceFileError(
            relpath, f"invalid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except ValueError as error:
        raise WorkspaceFileError(relpath, f"invalid JSON: {error}") from None
    except RecursionError:
        document = None
        too_deep = True
    else:
        # Fewer brackets in all than the limit: nothing can nest that deep (no walk needed).
        brackets = text.count("{") + text.count("[")
        too_deep = brackets > MAX_DEPTH and depth_exceeds(document)
    if too_deep:
        raise WorkspaceFileError(
            relpath,
            f"objects and arrays nest deeper than {MAX_DEPTH} levels; "
            "config objects are never this deep, check the file",
        )
    if may_hold_surrogates(text):
        problems = _unencodable_problems(document, relpath)
        if problems:
            count = len(problems)
            noun = "string is" if count == 1 else "strings are"
            raise EsvError(f"{relpath}: {count} {noun} not valid Unicode text", problems)
    if "&<" in text:
        document = normalise_document(document)
    return document


_NOT_PARSED = object()


def dump_pretty(document: Any) -> str:
    """``json.dumps(document, indent=2, ensure_ascii=False)``, byte for byte, made by orjson
    when that gives the same text (several times faster): json writes numbers below 1e-4 with
    an exponent where orjson does not, and orjson refuses integers beyond 64 bits; for those
    documents json itself writes the text."""
    try:
        text = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    except TypeError:
        return json.dumps(document, indent=2, ensure_ascii=False)
    if b"0.0000" in text:
        return json.dumps(document, indent=2, ensure_ascii=False)
    return text.decode()


def canonical_bytes(document: Any) -> bytes:
    """``document`` as compact JSON with sorted keys: equal exactly when the documents are
    equal as JSON (``true`` is not ``1``, ``1`` is not ``1.0``), whatever their key order."""
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode()


def compact_bytes(document: Any) -> bytes:
    """``document`` as compact JSON, keys in their order: the same document (same order)
    always gives the same bytes."""
    try:
        return orjson.dumps(document)
    except TypeError:
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def loads(text: str | bytes | memoryview) -> Any:
    """JSON text promote wrote itself (a tenant's stored config): orjson, json for what it
    refuses (integers beyond 64 bits). A ``memoryview`` (part of a larger text) is not
    copied unless json is needed."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(bytes(text) if isinstance(text, memoryview) else text)


def load_json(path: str | os.PathLike[str], *, relpath: str) -> Any:
    """Read and parse one config file (see :func:`parse_json`)."""
    return parse_json(read_text(path, relpath=relpath), relpath=relpath)


def read_text(path: str | os.PathLike[str], *, relpath: str) -> str:
    """One workspace file's text (config JSON, environment YAML), read as UTF-8, its line
    ends as a text-mode file reads them (``\\r\\n`` and ``\\r`` are ``\\n``).

    Raises :class:`~esv.errors.WorkspaceFileError` naming ``relpath`` when the file cannot be
    read or is not UTF-8 text.
    """
    try:
        data = _read_bytes(path)
    except OSError as error:
        raise WorkspaceFileError(relpath, f"cannot be read: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise WorkspaceFileError(relpath, "is not UTF-8 text") from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


_CHUNK = 1 << 16


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    # A descriptor and its reads: a third of what a text-mode file object costs for the
    # small files config is made of (20,000 files: 45 ms against 135 ms).
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        chunks = []
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)
