"""The state store interface: where promote keeps the run lock, run journals, history,
records of what it applied, and the fingerprint key.

Two backends implement :class:`StateStore`: :class:`promote.state.local.LocalStore` (files
under ``.promote/``, the default) and :class:`promote.state.s3.S3Store` (an S3-compatible
bucket shared by every machine that runs promote for one chain). The engine talks only to
this protocol; :func:`promote.state.factory.open_store` picks the backend from
``promote.yaml``.

Every method names its failure: :class:`StateStoreError` (exit 1) when the store cannot be
reached or refuses, :class:`ConflictError` when a compare-and-swap lost a race,
:class:`promote.errors.LockedError` (exit 4) when another run holds the lock.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from promote.errors import PromoteError

__all__ = [
    "KEY_BYTES",
    "ConflictError",
    "HistoryEntry",
    "LockInfo",
    "StateStore",
    "StateStoreError",
    "Versioned",
    "new_lock",
]

KEY_BYTES = 32
"""Length of a fingerprint key the store creates (HMAC-SHA256's block-safe key size)."""


class StateStoreError(PromoteError):
    """The state store cannot be read or written (unreachable, no bucket, access denied,
    a file that cannot be written); exit 1. ``store`` names it (never a credential)."""

    def __init__(self, store: str, message: str) -> None:
        super().__init__(f"state store {store}: {message}")
        self.store = store


class ConflictError(StateStoreError):
    """A compare-and-swap write found the object changed by someone else (HTTP 412)."""


@dataclass(frozen=True)
class Versioned:
    """An object's bytes and the version a compare-and-swap write must name."""

    data: bytes
    version: str


@dataclass(frozen=True)
class HistoryEntry:
    """One stored history entry, before it is parsed."""

    where: str
    """Where it is, for a note about it: ``.promote/history.jsonl: line 3``, an object key."""
    data: bytes
    last: bool = False
    """The last line of an append-only file: when it cannot be parsed, a cut-off write."""


@dataclass(frozen=True)
class LockInfo:
    """Who holds (or held) the run lock: enough for a person on another machine to tell
    whether that run is still alive."""

    id: str
    """The lock's own id, which ``promote state unlock`` must be given exactly."""
    host: str
    pid: int
    run_id: str
    """The id of the run (its journal and history entries) that holds it."""
    run: str
    """What took it: ``run to staging``, ``rollback of uat``."""
    started: str
    """UTC, ISO 8601 seconds."""
    version: str = ""
    """The backend's version of the lock object (S3 ETag), for a conditional release."""

    def describe(self) -> str:
        """``promote run to staging 2026…-ab12 (pid 42 on ci-7, since 2026-…, lock 1a2b…)``."""
        return (
            f"promote {self.run} {self.run_id} (pid {self.pid} on {self.host}, "
            f"since {self.started}, lock {self.id})"
        )

    def to_bytes(self) -> bytes:
        """The lock object's content (without the backend version)."""
        data = asdict(self)
        data.pop("version")
        return (json.dumps({"format": "promote.lock/1", **data}, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, version: str = "") -> LockInfo | None:
        """The holder recorded in ``data``; ``None`` when it is not a lock object."""
        try:
            parsed: Any = json.loads(data)
        except ValueError:
            return None
        if not isinstance(parsed, dict) or parsed.get("format") != "promote.lock/1":
            return None
        try:
            return cls(
                id=str(parsed["id"]),
                host=str(parsed["host"]),
                pid=int(parsed["pid"]),
                run_id=str(parsed["run_id"]),
                run=str(parsed["run"]),
                started=str(parsed["started"]),
                version=version,
            )
        except (KeyError, TypeError, ValueError):
            return None


def new_lock(run_id: str, run: str, started: str) -> LockInfo:
    """A lock naming this process (host, pid) and ``run_id`` as its holder, with a fresh id."""
    import socket  # here: most commands take no lock, and socket costs ~3 ms to load

    return LockInfo(uuid.uuid4().hex, socket.gethostname(), os.getpid(), run_id, run, started)


@runtime_checkable
class StateStore(Protocol):
    """Where promote's state lives. One store serves one chain of environments."""

    kind: str
    """``local`` or ``s3``."""

    def describe(self) -> str:
        """Where the store is, for people: ``.promote/`` or ``s3://bucket/prefix``."""
        ...

    def check(self) -> None:
        """Reach the store (the bucket exists, the credentials are accepted) or raise
        :class:`StateStoreError`. Called before any tenant is touched."""
        ...

    # -- the run lock -------------------------------------------------------------------

    def acquire_lock(self, lock: LockInfo, *, env: str) -> LockInfo:
        """Take the run lock for ``lock``'s holder; returns it with its backend version.
        Held by someone else: :class:`~promote.errors.LockedError` naming that holder
        (``env``: what the caller wanted to change). Creation is atomic (one winner)."""
        ...

    def release_lock(self, lock: LockInfo) -> None:
        """Release a lock this process took; a lock since removed or taken by another
        holder is left alone (no error: the run is over either way)."""
        ...

    def read_lock(self) -> LockInfo | None:
        """The current holder, ``None`` when nobody holds the lock."""
        ...

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Remove the lock whose id is exactly ``lock_id`` (a holder that is gone); returns
        who held it. Another id, or no lock: :class:`~promote.errors.BlockedError`."""
        ...

    # -- run journals (compare-and-swap) ------------------------------------------------

    def list_journals(self) -> list[str]:
        """Run ids that have a journal, in name order (run ids start with their time)."""
        ...

    def read_journal(self, run_id: str) -> Versioned | None:
        """The journal of ``run_id`` with its version; ``None`` when there is none."""
        ...

    def read_journal_end(self, run_id: str, size: int) -> bytes | None:
        """The last ``size`` bytes of ``run_id``'s journal (all of it when shorter): where
        its run's status is, without the steps of 20,000 objects before it; ``None`` when
        there is none."""
        ...

    def write_journal(self, run_id: str, data: bytes, *, expected: str | None) -> str:
        """Write ``run_id``'s journal only if it is still at version ``expected`` (``None``:
        only if it does not exist yet); returns the new version. Lost race:
        :class:`ConflictError`."""
        ...

    def delete_journal(self, run_id: str) -> None:
        """Remove ``run_id``'s journal (absent: no-op)."""
        ...

    # -- history (append-only) ----------------------------------------------------------

    def append_history(self, data: bytes, *, copied_at: int | None = None) -> None:
        """Add one history entry (one JSON document), never rewriting another.
        ``copied_at`` (``state push``): the entry's time in nanoseconds since the epoch, for
        its place in the order (default: now)."""
        ...

    def read_history(self) -> list[HistoryEntry]:
        """Every history entry, oldest first, unparsed (the caller reports the ones it
        cannot read)."""
        ...

    # -- records and the fingerprint key ------------------------------------------------

    def read_record(self, name: str) -> bytes | None:
        """The record ``name`` (``applied/staging.json``), ``None`` when absent."""
        ...

    def write_record(self, name: str, data: bytes) -> None:
        """Replace the record ``name`` in one step."""
        ...

    def delete_record(self, name: str) -> None:
        """Remove the record ``name`` (absent: no-op)."""
        ...

    def list_records(self) -> list[str]:
        """Names of every record, sorted."""
        ...

    def fingerprint_key(
        self, *, create: bool = True, proposed: bytes | None = None
    ) -> bytes | None:
        """The workspace's fingerprint key, created on first use when ``create`` (``proposed``,
        else :data:`KEY_BYTES` random bytes); two machines creating it at once get the same
        key. Never printed."""
        ...

    def close(self) -> None:
        """Release connections and files (a held lock is released by :meth:`release_lock`)."""
        ...
