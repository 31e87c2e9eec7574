"""Config files: JSON read with clear errors, bounded nesting, aliases normalised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from esv.errors import WorkspaceFileError
from esv.placeholders import normalise_document
from esv.resolver import MAX_DEPTH

__all__ = ["depth_exceeds", "load_json", "parse_json"]


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


def parse_json(text: str, *, relpath: str) -> Any:
    """Parse config JSON; ``&<esv.x>`` aliases come back as ``&{esv.x}``.

    Raises :class:`~esv.errors.WorkspaceFileError` naming line and column for malformed JSON,
    and for nesting deeper than :data:`~esv.resolver.MAX_DEPTH`.
    """
    try:
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
        too_deep = depth_exceeds(document)
    if too_deep:
        raise WorkspaceFileError(
            relpath,
            f"objects and arrays nest deeper than {MAX_DEPTH} levels; "
            "config objects are never this deep, check the file",
        )
    if "&<" in text:
        document = normalise_document(document)
    return document


def load_json(path: Path, *, relpath: str) -> Any:
    """Read and parse one config file (see :func:`parse_json`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise WorkspaceFileError(relpath, "is not UTF-8 text") from None
    except OSError as error:
        raise WorkspaceFileError(relpath, f"cannot be read: {error.strerror}") from None
    return parse_json(text, relpath=relpath)
