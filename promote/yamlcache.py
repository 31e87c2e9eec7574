"""The parsed YAML of a workspace's files (environment files, ``promote.yaml``), kept from
one command to the next: they rarely change, and loading a YAML parser and running it costs
a plan about 15 ms of its 0.25 s. With every text found here, a command never imports
``yaml``.

Each entry is the data of one text, keyed by the SHA-256 of that text, so a file is parsed
again as soon as a character of it changes. Only mappings are kept, and never an environment
file that holds an inline secret value (:func:`esv.envfile.parse_environment` does not offer
it). The cache lives beside the config cache (:func:`promote.configtree.cache_path`), is
tied to this version of promote, of Python and of the installed PyYAML, holds only the texts
the last command read, and is only ever a shortcut: unreadable or from another version, it
is ignored; unwritable, it is not written.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

from promote import __version__
from promote.files import StateFileError, atomic_write, read_bytes

__all__ = ["YamlCache"]

_FORMAT = "promote.yaml-cache/1"


class YamlCache:
    """A :class:`esv.envfile.YamlMemo` kept in the file at ``path`` (``None``: nowhere, so
    every text is parsed)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._header = _header()
        self._kept = _read(path, self._header) if path is not None else {}
        self._used: dict[str, dict[str, Any]] = {}

    def get(self, text: str) -> dict[str, Any] | None:
        key = _key(text)
        found = self._kept.get(key)
        if found is not None:
            self._used[key] = found
        return found

    def put(self, text: str, data: dict[str, Any]) -> None:
        self._used[_key(text)] = data

    def save(self) -> None:
        """Keep the texts used since this cache was read (nothing when they are the very
        ones it held)."""
        if self._path is None or self._header is None or self._used == self._kept:
            return
        with contextlib.suppress(StateFileError, ValueError):  # ValueError: not marshallable
            data = marshal.dumps((self._header, self._used))
            atomic_write(self._path, data, dir_mode=0o700)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _header() -> tuple[str, str, str, tuple[str, int, int]] | None:
    """This version of promote and of Python, and which PyYAML is installed (its files'
    place, modification time and size: an upgrade rewrites them); ``None`` without one."""
    spec = PathFinder.find_spec("yaml")
    if spec is None or spec.origin is None:
        return None
    try:
        st = os.stat(spec.origin)
    except OSError:
        return None
    return (_FORMAT, __version__, sys.version, (spec.origin, st.st_mtime_ns, st.st_size))


def _read(path: Path, header: Any) -> dict[str, dict[str, Any]]:
    if header is None:
        return {}
    try:
        raw = read_bytes(path)
        data = marshal.loads(raw) if raw is not None else None
    except (OSError, StateFileError, EOFError, ValueError, TypeError):
        return {}
    if not (isinstance(data, tuple) and len(data) == 2 and data[0] == header):
        return {}
    kept = data[1]
    if not isinstance(kept, dict) or not all(isinstance(v, dict) for v in kept.values()):
        return {}
    return kept
