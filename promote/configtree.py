"""Reading ``config/``: every object's id at once, its document when it is read, and — for a
file unchanged since promote last read it — its digest and reference summary from a cache,
so that a plan of 20,000 objects reads only the files that changed.

A file is unchanged when its modification and change times (to the nanosecond), size and
inode are what they were (git's index works the same way). A file modified within the last
two seconds before it was read is never cached: a file system's clock may not tell two
writes in the same tick apart. The cache lives outside the workspace (``PROMOTE_CACHE_DIR``,
else ``$XDG_CACHE_HOME/promote``, else ``~/.cache/promote``), one file per workspace, holds
no config value a check cannot rebuild, and is only ever a shortcut: unreadable, stale or
from another version, it is ignored; unwritable, it is not written.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from esv.errors import EsvError, Problem, WorkspaceFileError
from esv.jsonfile import load_json
from esv.objects import DigestedObjects
from esv.refsummary import Summary
from promote import __version__
from promote.files import StateFileError, atomic_write

__all__ = ["ConfigTree", "cache_path", "read_config_tree"]

_FORMAT = "promote.config-cache/1"
_RACY_NS = 2_000_000_000
"""Files modified this close to when they were read are not cached."""

_Signature = tuple[int, int, int, int]
"""(mtime_ns, ctime_ns, size, inode)."""
_Entry = tuple[_Signature, str, tuple[Any, ...]]
"""(signature, digest, summary fields)."""


def cache_path(root: Path, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the cache of the workspace at ``root`` is; ``None`` when there is no place
    for it (no ``PROMOTE_CACHE_DIR``, ``XDG_CACHE_HOME`` or ``HOME``)."""
    base: Path | None = None
    if environ.get("PROMOTE_CACHE_DIR"):
        base = Path(environ["PROMOTE_CACHE_DIR"])
    elif environ.get("XDG_CACHE_HOME", "").startswith("/"):
        base = Path(environ["XDG_CACHE_HOME"]) / "promote"
    elif environ.get("HOME"):
        base = Path(environ["HOME"]) / ".cache" / "promote"
    if base is None:
        return None
    name = hashlib.sha256(os.fsencode(root)).hexdigest()[:32]
    return base / "config" / f"{name}.cache"


class ConfigTree(DigestedObjects):
    """The workspace's config objects (see the module): a :class:`DigestedObjects` whose
    documents are read from their files, each checked unchanged since it was listed."""

    def __init__(
        self,
        top: str,
        signatures: dict[str, _Signature | None],
        hits: dict[str, _Entry],
        loaded: dict[str, Any],
        *,
        cache: Path | None,
        cached_count: int,
        read_at: int,
    ) -> None:
        super().__init__(
            signatures,
            self._read,
            digests={key: entry[1] for key, entry in hits.items()},
            loaded=loaded,
            summary_of=self._cached_summary,
        )
        self._made: dict[int, Summary] = {}
        self._top = top
        self._signatures = signatures
        self._hits = hits
        self._cache = cache
        self._cached_count = cached_count
        """How many entries the cache file held when read."""
        self._read_at = read_at

    def _cached_summary(self, object_id: str) -> Summary | None:
        hit = self._hits.get(object_id)
        if hit is None:
            return None
        # Equal summaries are one tuple in the cache (marshal keeps the sharing): one instance.
        fields = hit[2]
        summary = self._made.get(id(fields))
        if summary is None:
            try:
                summary = Summary(*fields)
            except TypeError:
                return None  # not what this version writes: read the file
            self._made[id(fields)] = summary
        return summary

    def _read(self, ids: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key in ids:
            relpath = f"config/{key}.json"
            path = os.path.join(self._top, *key.split("/")) + ".json"
            document = load_json(path, relpath=relpath)
            if _signature(path) != self._signatures[key]:
                raise WorkspaceFileError(
                    relpath, "changed while promote was reading the workspace; run again"
                )
            found[key] = document
        return found

    def remember(self) -> None:
        """Write the cache: the entries still true, and the digest and summary of each file
        read now that were made and that is old enough to trust. Nothing when unchanged."""
        if self._cache is None:
            return
        entries: dict[str, _Entry] = {}
        shared: dict[Summary, tuple[Any, ...]] = {}  # one tuple for equal summaries
        for key in self:
            hit = self._hits.get(key)
            if hit is not None:
                entries[key] = hit
                continue
            signature = self._signatures[key]
            digest, summary = self.known(key)
            if signature is None or digest is None or summary is None:
                continue
            if self._read_at - max(signature[0], signature[1]) < _RACY_NS:
                continue
            entries[key] = (signature, digest, shared.setdefault(summary, _fields(summary)))
        if entries.keys() == self._hits.keys() and len(entries) == self._cached_count:
            return
        _write_cache(self._cache, self._top, entries)


def _fields(summary: Summary) -> tuple[Any, ...]:
    return (
        summary.ids,
        summary.bare,
        summary.wrappers,
        summary.fixed,
        summary.required,
        summary.nodes,
    )


def _signature(path: str | os.DirEntry[str]) -> _Signature | None:
    """A file's identity: what changes whenever its content may have (``None``: gone)."""
    try:
        st = path.stat() if isinstance(path, os.DirEntry) else os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def read_config_tree(
    root: Path, problems: list[Problem], environ: Mapping[str, str] = os.environ
) -> ConfigTree:
    """Every object of ``root/config`` (problems of unreadable or invalid files added to
    ``problems``): files the cache vouches for are not read, the others are read and
    checked now."""
    config_dir = root / "config"
    top = str(config_dir)
    cache = cache_path(root, environ)
    cached = _read_cache(cache, top) if cache is not None else {}
    read_at = time.time_ns()
    signatures: dict[str, _Signature | None] = {}
    hits: dict[str, _Entry] = {}
    loaded: dict[str, Any] = {}
    files: list[tuple[str, str, _Signature | None]] = []
    if config_dir.is_dir():
        _json_files(top, "", files)
    for key, path, signature in files:
        hit = cached.get(key)
        if hit is not None and hit[0] == signature:
            signatures[key] = signature
            hits[key] = hit
            continue
        try:
            loaded[key] = load_json(path, relpath=f"config/{key}.json")
        except EsvError as error:
            problems.extend(error.problems)
            continue
        signatures[key] = signature
    return ConfigTree(
        top, signatures, hits, loaded, cache=cache, cached_count=len(cached), read_at=read_at
    )


def _json_files(
    directory: str, prefix: str, found: list[tuple[str, str, _Signature | None]]
) -> None:
    """Append every ``*.json`` file under ``directory`` outside hidden directories: its
    object id (``prefix`` + its path below, without ``.json``), its path and its signature;
    in the order of their path parts (each directory's entries sorted by name). One system
    call per directory and one per file (``os.scandir``)."""
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        if entry.is_dir():
            _json_files(entry.path, f"{prefix}{name}/", found)
        elif name.endswith(".json") and entry.is_file():
            found.append((prefix + name[:-5], entry.path, _signature(entry)))


def _header(top: str) -> tuple[str, str, str, str]:
    return (_FORMAT, __version__, sys.version, top)


def _read_cache(path: Path, top: str) -> dict[str, _Entry]:
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not (isinstance(data, tuple) and len(data) == 2 and data[0] == _header(top)):
        return {}
    entries = data[1]
    return entries if isinstance(entries, dict) else {}


def _write_cache(path: Path, top: str, entries: dict[str, _Entry]) -> None:
    # A cache that cannot be written is no error: the next command reads the files.
    with contextlib.suppress(StateFileError):
        atomic_write(path, marshal.dumps((_header(top), entries)), dir_mode=0o700)
