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
import functools
import hashlib
import marshal
import os
import sys
import time
from array import array
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from esv.errors import EsvError, Problem, WorkspaceFileError
from esv.jsonfile import compact_bytes, load_json, loads
from esv.objects import DigestedObjects, digest_of_set
from esv.refsummary import Summary
from promote import __version__
from promote.files import StateFileError, atomic_write

__all__ = ["ConfigTree", "cache_path", "read_config_tree"]

_FORMAT = "promote.config-cache/4"
_RACY_NS = 2_000_000_000
"""Files modified this close to when they were read are not cached."""

_Signature = tuple[int, int, int, int]
"""(mtime_ns, ctime_ns, size, inode)."""
_ROW = array("I")
"""How summary rows are kept: unsigned ints, packed."""


def cache_path(
    root: Path, environ: Mapping[str, str] = os.environ, *, kind: str = "config"
) -> Path | None:
    """Where the cache of the workspace at ``root`` is (``kind``: ``config``, this module's;
    ``yaml``, :mod:`promote.yamlcache`'s); ``None`` when there is no place for it (no
    ``PROMOTE_CACHE_DIR``, ``XDG_CACHE_HOME`` or ``HOME``)."""
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
    return base / kind / f"{name}.cache"


class _Cache:
    """What the cache file holds: per file, in the order the walk lists them (``keys``), its
    signature, digest and summary (a row of ``table``, which holds each distinct summary
    once); and the digest of all of them (:func:`~esv.objects.digest_of_set`).

    The signatures are kept as the walk's JSON text (``signature_text``): an unchanged tree
    is told by comparing it with the text of the walk now, whole; they are parsed only to
    find which files changed. The maps are made when first used, each in a step or two in C.
    """

    def __init__(
        self,
        keys: list[str],
        signature_text: bytes,
        digests: list[str],
        rows: Sequence[int],
        table: list[tuple[Any, ...]],
        set_digest: str,
    ) -> None:
        self.keys = keys
        self.signature_text = signature_text
        self._digests = digests
        self._rows = rows
        self.table = table
        self.set_digest = set_digest

    @functools.cached_property
    def digests(self) -> dict[str, str]:
        return dict(zip(self.keys, self._digests, strict=True))

    @functools.cached_property
    def rows(self) -> dict[str, int]:
        return dict(zip(self.keys, self._rows, strict=True))

    @functools.cached_property
    def signatures(self) -> dict[str, _Signature]:
        """Each file's signature (none when the text is not what this version writes)."""
        try:
            parsed = loads(self.signature_text)
            found = {key: tuple(value) for key, value in parsed.items()}
        except (ValueError, TypeError, AttributeError):
            return {}
        return found if list(found) == self.keys else {}

    def to_bytes(self, top: str) -> bytes:
        rows = array(_ROW.typecode, self._rows).tobytes()
        joined = "\0".join(self.keys), "\0".join(self._digests)
        fields = (joined[0], self.signature_text, joined[1], rows, self.table, self.set_digest)
        return marshal.dumps((_header(top), *fields))


_EMPTY = _Cache([], compact_bytes({}), [], [], [], digest_of_set({}))


class ConfigTree(DigestedObjects):
    """The workspace's config objects (see the module): a :class:`DigestedObjects` whose
    documents are read from their files, each checked unchanged since it was listed."""

    def __init__(
        self,
        top: str,
        signatures: dict[str, _Signature | None],
        cached: _Cache,
        made: list[Summary],
        vouched: bool,
        loaded: dict[str, Any],
        *,
        cache: Path | None,
        read_at: int,
    ) -> None:
        digests, summaries = _known(cached, made, signatures, vouched, loaded)
        super().__init__(
            signatures,
            self._read,
            digests=digests,
            loaded=loaded,
            summaries=summaries,
            set_digest=cached.set_digest if vouched else None,
        )
        self._top = top
        self._signatures = signatures
        self._cached = cached
        self._unchanged = vouched
        """Every file is one the cache vouched for, and the cache holds no other."""
        self._cache = cache
        self._read_at = read_at

    def _read(self, ids: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key in ids:
            relpath = f"config/{key}.json"
            path = _path(self._top, key)
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
        if self._cache is None or self._unchanged:
            return
        cached = self._cached
        signatures: dict[str, _Signature] = {}
        digests: dict[str, str] = {}
        rows: list[int] = []
        table: list[tuple[Any, ...]] = []
        kept: dict[int, int] = {}  # a cached row still used -> its row now
        made: dict[Summary, int] = {}  # a summary made now -> its row
        for key, signature in self._signatures.items():
            if signature is None:
                continue
            if cached.signatures.get(key) == signature:
                old = cached.rows[key]
                row = kept.get(old)
                if row is None:
                    row = kept[old] = len(table)
                    table.append(cached.table[old])
                digest = cached.digests[key]
            else:
                digest, summary = self.known(key)  # type: ignore[assignment]
                if digest is None or summary is None:
                    continue
                if self._read_at - max(signature[0], signature[1]) < _RACY_NS:
                    continue
                row = made.get(summary)
                if row is None:
                    row = made[summary] = len(table)
                    table.append(_fields(summary))
            signatures[key], digests[key] = signature, digest
            rows.append(row)
        text = compact_bytes(signatures)
        if text == cached.signature_text:  # what the next read vouches for: already kept
            return
        cache = _Cache(
            list(signatures), text, list(digests.values()), rows, table, digest_of_set(digests)
        )
        _write_cache(self._cache, self._top, cache)


def _known(
    cached: _Cache,
    made: list[Summary],
    signatures: Mapping[str, Any],
    vouched: bool,
    loaded: Mapping[str, Any],
) -> tuple[dict[str, str], dict[str, Summary]]:
    """The digests and summaries the cache vouches for: every file's when ``vouched`` (the
    files are the cached ones, each unchanged), else those of the files not read."""
    rows = cached.rows
    if vouched:  # the common case, without a step per file
        return cached.digests, dict(zip(rows, map(made.__getitem__, rows.values()), strict=True))
    keys = [key for key in signatures if key in cached.signatures and key not in loaded]
    return {key: cached.digests[key] for key in keys}, {key: made[rows[key]] for key in keys}


def _fields(summary: Summary) -> tuple[Any, ...]:
    return (
        summary.ids,
        summary.bare,
        summary.wrappers,
        summary.fixed,
        summary.required,
        summary.nodes,
    )


def _signature(path: str) -> _Signature | None:
    """A file's identity: what changes whenever its content may have (``None``: gone)."""
    try:
        st = os.stat(path)
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
    cached, made = _read_cache(cache, top) if cache is not None else (_EMPTY, [])
    read_at = time.time_ns()
    signatures: dict[str, _Signature | None] = {}
    if config_dir.is_dir():
        _json_files(top, "", signatures)
    # The very same files in the same order, each unchanged: one comparison of two texts.
    vouched = compact_bytes(signatures) == cached.signature_text
    known = {} if vouched else cached.signatures
    stale = [] if vouched else [key for key, sig in signatures.items() if known.get(key) != sig]
    loaded: dict[str, Any] = {}
    for key in stale:
        try:
            loaded[key] = load_json(_path(top, key), relpath=f"config/{key}.json")
        except EsvError as error:
            problems.extend(error.problems)
            del signatures[key]
    return ConfigTree(top, signatures, cached, made, vouched, loaded, cache=cache, read_at=read_at)


def _path(top: str, key: str) -> str:
    return os.path.join(top, *key.split("/")) + ".json"


def _json_files(directory: str, prefix: str, found: dict[str, _Signature | None]) -> None:
    """Add every ``*.json`` file under ``directory`` outside hidden directories: its object
    id (``prefix`` + its path below, without ``.json``) -> its signature; in the order of
    their path parts (each directory's entries sorted by name). One system call per
    directory and one per file."""
    files: list[str] = []
    directories: set[str] = set()
    with os.scandir(directory) as scan:
        for entry in scan:
            name = entry.name
            if name[0] == ".":
                continue
            if name.endswith(".json") and entry.is_file():
                files.append(name)
            elif entry.is_dir():
                directories.add(name)
    base = directory + os.sep
    for name in sorted([*files, *directories]) if directories else sorted(files):
        if name in directories:
            _json_files(base + name, f"{prefix}{name}/", found)
            continue
        # os.stat of the path: a third faster than DirEntry.stat here, for 20,000 files
        try:
            st = os.stat(base + name)
        except OSError:
            found[prefix + name[:-5]] = None  # gone since listed: reading it says so
            continue
        found[prefix + name[:-5]] = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def _header(top: str) -> tuple[str, str, str, str]:
    return (_FORMAT, __version__, sys.version, top)


def _read_cache(path: Path, top: str) -> tuple[_Cache, list[Summary]]:
    """The cache and its distinct summaries made; empty when it is unreadable, from another
    workspace or version, or not what this version writes."""
    empty: tuple[_Cache, list[Summary]] = (_EMPTY, [])
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return empty
    if not (isinstance(data, tuple) and len(data) == 7 and data[0] == _header(top)):
        return empty
    keys, signature_text, digests, packed, table, set_digest = data[1:]
    if not (
        isinstance(keys, str)
        and isinstance(signature_text, bytes)
        and isinstance(digests, str)
        and isinstance(packed, bytes)
        and isinstance(table, list)
        and isinstance(set_digest, str)
        and len(packed) % _ROW.itemsize == 0
    ):
        return empty
    rows = array(_ROW.typecode)
    rows.frombytes(packed)
    ids, digest_list = (keys.split("\0"), digests.split("\0")) if keys else ([], [])
    if not (len(ids) == len(digest_list) == len(rows) and max(rows, default=-1) < len(table)):
        return empty
    try:
        made = [Summary(*fields) for fields in table]
    except TypeError:
        return empty
    return _Cache(ids, signature_text, digest_list, rows, table, set_digest), made


def _write_cache(path: Path, top: str, cache: _Cache) -> None:
    # A cache that cannot be written is no error: the next command reads the files.
    with contextlib.suppress(StateFileError):
        atomic_write(path, cache.to_bytes(top), dir_mode=0o700)
