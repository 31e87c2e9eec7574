"""Config objects known by the digest of their content, each read only when it is needed.

A plan compares 20,000 objects by digest and reads the few that differ: a workspace knows
each unchanged file's digest from a cache of what it read before, a tenant keeps the digest
of each object it stores. :class:`DigestedObjects` is such a set: ids up front, digests and
documents on demand. Whoever supplies the documents checks that each is still what it was
when listed (a file's identity, a tenant object's digest) and raises otherwise, so a set
never mixes two versions of an object silently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from esv.jsonfile import canonical_bytes

if TYPE_CHECKING:
    from esv.refsummary import Summary

__all__ = [
    "DigestMap",
    "DigestedObjects",
    "Loader",
    "content_digest",
    "digest_of",
    "digest_of_set",
]


def content_digest(document: Any) -> str:
    """SHA-256 of ``document``'s canonical JSON (sorted keys, compact): equal exactly when
    the documents are equal as JSON (``true`` is not ``1``), whatever their key order."""
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


def digest_of_set(digests: Mapping[str, str]) -> str:
    """One digest of a set of objects' ids and content digests, whatever their order:
    SHA-256 of the sorted ``[id, digest]`` pairs as canonical JSON (no id or digest can run
    into the next). Equal sets of 20,000 objects are then told equal by one comparison."""
    return hashlib.sha256(canonical_bytes(sorted(digests.items()))).hexdigest()


class DigestMap(dict[str, str]):
    """Object id -> content digest, with ``set_digest``: their :func:`digest_of_set` when
    it was kept beside them (``None``: not known without making it)."""

    def __init__(self, digests: Mapping[str, str], set_digest: str | None = None) -> None:
        super().__init__(digests)
        self.set_digest = set_digest


Loader = Callable[[list[str]], Mapping[str, Any]]
"""Reads the documents of the given ids, every one of them, or raises saying which could
not be read or changed since it was listed."""


class _Store:
    """What the views of one set share: what is known and what was read."""

    def __init__(
        self,
        load: Loader,
        digests: dict[str, str],
        loaded: dict[str, Any],
        summaries: dict[str, Summary],
    ) -> None:
        self.load = load
        self.digests = digests
        self.loaded = loaded
        self.summaries = summaries


class DigestedObjects(Mapping[str, Any]):
    """Object id -> document (parsed JSON), with each object's :func:`content_digest`.

    Iterating, ``len`` and ``in`` read nothing; :meth:`digest` reads nothing when the digest
    was given (else it reads the document once). Reading a document loads it once through
    ``load``; :meth:`prefetch` loads many in one call, and ``items()`` / ``values()`` load
    all at once. ``summaries``: each object's reference summary
    (:func:`esv.references.summarise`) where known without reading it; ``set_digest``:
    the :meth:`set_digest` of ``ids`` with ``digests`` (every one of them), when kept.
    """

    def __init__(
        self,
        ids: Iterable[str],
        load: Loader,
        *,
        digests: Mapping[str, str] | None = None,
        loaded: Mapping[str, Any] | None = None,
        summaries: Mapping[str, Summary] | None = None,
        set_digest: str | None = None,
    ) -> None:
        self._ids = dict.fromkeys(ids)
        self._all_digested = False
        self._set_digest = set_digest
        self._store = _Store(
            load,
            dict(digests or {}),
            dict(loaded or {}),
            dict(summaries or {}),
        )

    def restrict(self, ids: Collection[str]) -> DigestedObjects:
        """The objects among ``ids``, in this set's order; what either reads, both have."""
        view = DigestedObjects((), self._store.load)
        view._ids = {key: None for key in self._ids if key in ids}
        view._store = self._store
        return view

    def set_digest(self) -> str:
        """:func:`digest_of_set` of every object's id and digest: given with the digests
        (``set_digest``, when whoever kept them kept it too), else made once."""
        if self._set_digest is None:
            self._set_digest = digest_of_set(self.digest_map())
        return self._set_digest

    def digest(self, object_id: str) -> str:
        """The digest of the object's content (``KeyError`` when there is no such object)."""
        if object_id not in self._ids:
            raise KeyError(object_id)
        digests = self._store.digests
        found = digests.get(object_id)
        if found is None:
            found = digests[object_id] = content_digest(self[object_id])
        return found

    def digest_map(self) -> Mapping[str, str]:
        """Object id -> digest for every object of the set (read-only; documents are read
        only for digests not known)."""
        digests = self._store.digests
        if not self._all_digested:
            missing = [key for key in self._ids if key not in digests]
            self.prefetch(missing)
            for key in missing:
                digests[key] = content_digest(self._store.loaded[key])
            self._all_digested = True
        if len(digests) == len(self._ids):
            return MappingProxyType(digests)  # every digest known is one of ours
        return {key: digests[key] for key in self._ids}

    def summary(self, object_id: str) -> Summary:
        """The object's reference summary (read from the document when not known: with its
        digest, whose canonical JSON tells most summaries without a walk)."""
        from esv.refsummary import summarise

        store = self._store
        found = store.summaries.get(object_id)
        if found is None:
            document = self[object_id]
            text = canonical_bytes(document)
            store.digests.setdefault(object_id, hashlib.sha256(text).hexdigest())
            found = store.summaries[object_id] = summarise(document, text)
        return found

    def known(self, object_id: str) -> tuple[str | None, Summary | None]:
        """The digest and the summary of the object, each when known without reading it."""
        store = self._store
        return store.digests.get(object_id), store.summaries.get(object_id)

    def known_summaries(self) -> Mapping[str, Summary]:
        """Object id -> summary, for the objects (of this set, or of a set it was restricted
        from) whose summary is known without reading them (read-only)."""
        return MappingProxyType(self._store.summaries)

    def prefetch(self, ids: Iterable[str]) -> None:
        """Load the documents of ``ids`` (of this set) not read yet, in one call."""
        loaded = self._store.loaded
        wanted = [key for key in ids if key in self._ids and key not in loaded]
        if wanted:
            found = self._store.load(wanted)
            for key in wanted:
                loaded[key] = found[key]

    def __getitem__(self, object_id: str) -> Any:
        try:
            return self._store.loaded[object_id]
        except KeyError:
            if object_id not in self._ids:
                raise
        self.prefetch([object_id])
        return self._store.loaded[object_id]

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def items(self) -> Any:
        self.prefetch(self._ids)
        return super().items()

    def values(self) -> Any:
        self.prefetch(self._ids)
        return super().values()

    def __repr__(self) -> str:
        return f"<DigestedObjects: {len(self)} objects>"


def digest_of(objects: Mapping[str, Any], object_id: str) -> str:
    """The digest of one object of ``objects``: known for :class:`DigestedObjects`,
    computed otherwise."""
    if isinstance(objects, DigestedObjects):
        return objects.digest(object_id)
    return content_digest(objects[object_id])
