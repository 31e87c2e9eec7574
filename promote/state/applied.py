"""What promote last applied to each environment (``applied/<env>.json`` in the state store),
the baseline that drift is measured against (SPEC 4.5).

One record per environment, replaced after every stage promote applies (and after a
rollback): the config the tenant held right after, per object as the tenant holds it
(placeholders kept; for a tenant that holds resolved values, every secret-derived value
replaced by ``********`` and its keyed fingerprint kept beside it), the variables' values and
types, and each secret's version number. Never a secret value, never an unkeyed hash of one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from esv.jsonfile import loads
from esv.objects import digest_of_set
from promote.errors import PromoteError
from promote.state.base import StateStore

__all__ = ["APPLIED_FORMAT", "Applied", "delete_applied", "read_applied", "write_applied"]

APPLIED_FORMAT = "promote.applied/3"
"""3: the digests last but the objects, with their digest of all; 2 (still read): each
object as its own JSON text beside its digest (read only when it may have drifted); 1
(still read): the objects themselves."""
_FORMATS = ("promote.applied/1", "promote.applied/2", APPLIED_FORMAT)


@dataclass(frozen=True)
class Applied:
    """The record of one environment."""

    config: Mapping[str, Any] = field(default_factory=dict)
    """Object id -> the object as the tenant held it right after (secret-derived values of a
    resolved tenant masked)."""
    secret_paths: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Object id -> JSON path -> keyed fingerprint of the value there (resolved tenants)."""
    variables: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Variable id -> (value, type)."""
    secrets: Mapping[str, int] = field(default_factory=dict)
    """Secret id -> the version the tenant showed once promote had written it."""
    digests: Mapping[str, str] = field(default_factory=dict)
    """Object id -> content digest (:func:`esv.objects.content_digest`) of ``config``'s
    object, for those without masked values: drift compares these first, and reads only the
    objects whose digest differs. Never of a secret-derived value."""
    set_digest: str | None = field(default=None, compare=False)
    """:func:`esv.objects.digest_of_set` of ``digests`` as the record keeps it, when every
    object of ``config`` has its digest (``None``: not kept, or some has none). Drift
    compares it with the tenant's first: equal, nothing can have drifted."""

    def to_bytes(self) -> bytes:
        """The record as stable JSON text, its digests then its objects last (see
        :func:`read_applied`); the digest of all made anew from ``digests``."""
        if isinstance(self.config, _Texts):
            objects = dict(self.config.texts())
        else:
            objects = {key: _text(value) for key, value in self.config.items()}
        digests = dict(self.digests)
        undigested = [key for key in objects if key not in digests]
        data = {
            "format": APPLIED_FORMAT,
            "secret_paths": {k: dict(v) for k, v in self.secret_paths.items()},
            "variables": {k: list(v) for k, v in self.variables.items()},
            "secrets": dict(self.secrets),
            "undigested": undigested,
            "set_digest": None if undigested else digest_of_set(digests),
            "digests": digests,
            # Objects keep their key order (the tenant's), so comparing them later is cheap.
            "config": objects,
        }
        return (json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _damaged(record: str, what: str) -> PromoteError:
    return PromoteError(
        f"{record} in the state store is damaged: its {what} cannot be read. Remove it; "
        "drift is then unknown there until promote next applies"
    )


class _Digests(Mapping[str, str]):
    """Object id -> digest, parsed from the record's JSON text when first read (a plan
    that finds the tenant's digest of all equal to the record's never reads them)."""

    def __init__(self, source: memoryview, record: str) -> None:
        self._source = source
        self._record = record
        self._found: dict[str, str] | None = None

    def _digests(self) -> dict[str, str]:
        if self._found is None:
            try:
                self._found = _texts(loads(self._source))
            except (ValueError, TypeError):
                raise _damaged(self._record, "digests") from None
        return self._found

    def __getitem__(self, key: str) -> str:
        return self._digests()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._digests())

    def __len__(self) -> int:
        return len(self._digests())


class _Texts(Mapping[str, Any]):
    """Object id -> object, each parsed from its JSON text when first read; the texts
    themselves parsed from ``source`` (the record's objects as JSON text) when first
    needed, their ids (``ids()``) known before."""

    def __init__(
        self,
        source: dict[str, str] | memoryview,
        ids: Callable[[], Iterable[str]],
        record: str,
    ) -> None:
        self._source = source
        self._list_ids = ids
        self._listed: dict[str, None] | None = None
        self._record = record
        self._parsed: dict[str, Any] = {}

    @property
    def _ids(self) -> dict[str, None]:
        if self._listed is None:
            self._listed = dict.fromkeys(self._list_ids())
        return self._listed

    def texts(self) -> dict[str, str]:
        """Object id -> its JSON text (``PromoteError`` when the record is damaged)."""
        if isinstance(self._source, memoryview):
            try:
                texts: dict[str, str] | None = _texts(loads(self._source))
            except (ValueError, TypeError):
                texts = None
            if texts is None or texts.keys() != self._ids.keys():
                raise _damaged(self._record, "objects")
            self._source = texts
        return self._source

    def __getitem__(self, key: str) -> Any:
        found = self._parsed.get(key, _UNREAD)
        if found is _UNREAD:
            found = self._parsed[key] = loads(self.texts()[key])
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._ids


_UNREAD = object()


def _texts(data: Any) -> dict[str, str]:
    """``data`` when it maps text to text (else ``ValueError``)."""
    found = dict(data)
    if not _all_text(found.values()):
        raise ValueError("not text")
    return found


def _all_text(values: Iterable[Any]) -> bool:
    return set(map(type, values)) <= {str}  # one pass in C: records hold 20,000 objects


_OBJECTS_LAST = b',"config":{'
"""Where the objects of a record written since format 2 start: they come last, and no text
in them can hold these bytes (each value there is a JSON string: a ``:`` is followed by
``"``)."""
_DIGESTS_NEXT = b',"digests":{'
"""Where the digests of a record of format 3 start, right before its objects: no id or
digest among them can hold these bytes either."""


def _split(raw: bytes) -> tuple[dict[str, Any], memoryview | None, memoryview] | None:
    """The fields of a record written since format 2, and apart as JSON text its digests
    (format 3; ``None``: among the fields) and its objects: a plan reads the fields alone
    when the digests of all agree, and the objects that differ otherwise (each part a view
    of ``raw``, not a copy of megabytes). ``None`` for any other record."""
    end = len(raw)
    while end and raw[end - 1] in b" \t\r\n":  # not raw.rstrip(): a copy of 5 MB
        end -= 1
    at = raw.rfind(_OBJECTS_LAST, 0, end)
    if at < 0 or not raw.endswith(b"}}", 0, end):
        return None
    objects = memoryview(raw)[at + len(_OBJECTS_LAST) - 1 : end - 1]
    digests_at = raw.rfind(_DIGESTS_NEXT, 0, at)
    if digests_at >= 0:
        head = _head(raw[:digests_at] + b"}")
        if head is not None and head.get("format") == APPLIED_FORMAT:
            return head, memoryview(raw)[digests_at + len(_DIGESTS_NEXT) - 1 : at], objects
    head = _head(raw[:at] + b"}")
    return None if head is None else (head, None, objects)


def _head(text: bytes) -> dict[str, Any] | None:
    try:
        head = loads(text)
    except ValueError:
        return None
    if not isinstance(head, dict) or not isinstance(head.get("undigested"), list):
        return None
    return head


def _name(env: str) -> str:
    return f"applied/{env}.json"


def read_applied(store: StateStore, env: str) -> Applied | None:
    """``env``'s record; ``None`` when promote has not applied anything there since records
    exist (drift is then unknown), or the record is unreadable.

    A record this version wrote has its digests, then its objects, last: each part is parsed
    only when read (drift reads no digest when the record's digest of all is the tenant's,
    and only the objects whose digests differ otherwise), so a plan parses a few hundred
    bytes of a record of 20,000 objects. Should they then prove unreadable, reading them
    raises ``PromoteError`` naming the record."""
    name = _name(env)
    raw = store.read_record(name)
    if raw is None:
        return None
    split = _split(raw)
    try:
        data = loads(raw) if split is None else split[0]
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("format") not in _FORMATS:
        return None
    try:
        digests: Mapping[str, str] = (
            _Digests(split[1], name)
            if split is not None and split[1] is not None
            else _texts(data.get("digests") or {})
        )
        config: Mapping[str, Any]
        set_digest = None
        if split is not None:
            undigested = [str(key) for key in data["undigested"]]
            config = _Texts(split[2], lambda: [*digests, *undigested], name)
            found = data.get("set_digest")
            set_digest = found if isinstance(found, str) and not undigested else None
        elif data["format"] == "promote.applied/1":
            config = dict(data.get("config") or {})
        else:
            texts = _texts(data.get("config") or {})
            config = _Texts(texts, lambda: texts, name)
        return Applied(
            config=config,
            secret_paths={str(k): dict(v) for k, v in (data.get("secret_paths") or {}).items()},
            variables={str(k): (str(v[0]), str(v[1])) for k, v in data["variables"].items()},
            secrets={str(k): int(v) for k, v in (data.get("secrets") or {}).items()},
            digests=digests,
            set_digest=set_digest,
        )
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def write_applied(store: StateStore, env: str, applied: Applied) -> None:
    """Replace ``env``'s record."""
    store.write_record(_name(env), applied.to_bytes())


def delete_applied(store: StateStore, env: str) -> None:
    """Forget ``env``'s record (after a stage failed part-way, drift is unknown until the
    next stage promote applies in full)."""
    store.delete_record(_name(env))
