"""What promote records about one AIC tenant: the promotion locks it took (by holder) and
the config ids it manages, in the state store or under ``.promote/tenants/<env>``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from promote.errors import PromoteError
from promote.state.document import Document

if TYPE_CHECKING:
    pass

__all__ = ["CONFIG_FILE", "ConfigRecord", "LOCKS_FILE", "LockRecords"]


LOCKS_FILE = "promotion-locks.json"

_LOCKS_FORMAT = "promote.aic-promotion-locks/1"

CONFIG_FILE = "managed-config.json"

_CONFIG_FORMAT = "promote.aic-managed-config/1"


class LockRecords:
    """``{holder: promotionId}`` of the promotion locks a tenant took and has not released.

    Kept in ``promotion-locks.json`` (a 0600 file under ``.promote/tenants/<env>``, replaced
    atomically and fsynced, or an object of the shared state store) before the promotion goes
    on, so a run killed mid-promotion leaves its lock's id behind for the run that recovers
    it, on any machine that shares the store; in memory when there is neither.
    """

    def __init__(self, document: Document | None, env: str) -> None:
        self.path = document
        self._env = env
        self._memory: dict[str, str] = {}
        self._mutex = threading.Lock()

    def get(self, holder: str) -> str | None:
        """The promotion id recorded for ``holder``."""
        with self._mutex:
            return self._read().get(holder)

    def holder_of(self, promotion_id: str) -> str | None:
        """The holder recorded for ``promotion_id``."""
        with self._mutex:
            found = [h for h, p in self._read().items() if p == promotion_id]
        return found[0] if found else None

    def put(self, holder: str, promotion_id: str) -> None:
        """Record ``holder``'s lock (durably, before returning)."""
        with self._mutex:
            records = self._read()
            records[holder] = promotion_id
            self._write(records)

    def remove(self, holder: str) -> None:
        """Forget ``holder``'s lock (absent: no-op)."""
        with self._mutex:
            records = self._read()
            if records.pop(holder, None) is not None:
                self._write(records)

    def _read(self) -> dict[str, str]:
        if self.path is None:
            return dict(self._memory)
        try:
            raw = self.path.read()
            if raw is None:
                return {}
            data = json.loads(raw)
        except (OSError, ValueError) as error:
            raise PromoteError(
                f"{self.path.where}: cannot read {self._env}'s promotion lock record "
                f"({type(error).__name__}); if no promotion is running, release the lock in "
                "the AIC admin console and delete the file"
            ) from None
        locks = data.get("locks") if isinstance(data, dict) else None
        if not isinstance(locks, dict):
            return {}
        return {str(h): str(p) for h, p in locks.items() if isinstance(p, str) and p}

    def _write(self, records: Mapping[str, str]) -> None:
        if self.path is None:
            self._memory = dict(records)
            return
        if not records:
            try:
                self.path.delete()
            except OSError as error:
                raise self._unwritable(error) from None
            return
        try:
            _write_json(self.path, {"format": _LOCKS_FORMAT, "locks": dict(records)})
        except OSError as error:
            raise self._unwritable(error) from None

    def _unwritable(self, error: OSError) -> PromoteError:
        assert self.path is not None
        return PromoteError(
            f"{self.path.where}: cannot record {self._env}'s promotion lock "
            f"({error.strerror or type(error).__name__}); check that .promote/ is writable"
        )


class ConfigRecord:
    """Ids of the config objects promote wrote to (or promoted into) one tenant.

    Kept in ``managed-config.json`` (a 0600 file under ``.promote/tenants/<env>``, or an
    object of the shared state store), so an object removed from the workspace is still known
    as promote's and is deleted, while the platform's own objects (never written by promote)
    are never offered for deletion. The ids a promotion replaced are kept as ``previous`` for
    a rollback. In memory when there is no place to keep it.
    """

    def __init__(self, document: Document | None, env: str) -> None:
        self.path = document
        self._env = env
        self._memory: dict[str, list[str]] = {"ids": [], "previous": []}
        self._mutex = threading.Lock()

    def ids(self) -> set[str]:
        """The recorded ids."""
        with self._mutex:
            return set(self._read()["ids"])

    def add(self, object_id: str) -> None:
        """Record ``object_id`` (durably, before returning)."""
        self._update(lambda ids, previous: (ids | {object_id}, previous))

    def discard(self, object_id: str) -> None:
        """Forget ``object_id``."""
        self._update(lambda ids, previous: (ids - {object_id}, previous))

    def replace(self, object_ids: Collection[str]) -> None:
        """After a promotion: exactly ``object_ids``; the ids before become ``previous``."""
        self._update(lambda ids, previous: (set(object_ids), ids))

    def restore_previous(self) -> None:
        """After a rollback: the ids before the last promotion come back."""
        self._update(lambda ids, previous: (ids | previous, previous))

    def _update(self, change: Callable[[set[str], set[str]], tuple[set[str], set[str]]]) -> None:
        with self._mutex:
            record = self._read()
            ids, previous = change(set(record["ids"]), set(record["previous"]))
            new = {"ids": sorted(ids), "previous": sorted(previous)}
            if new != record:
                self._write(new)

    def _read(self) -> dict[str, list[str]]:
        if self.path is None:
            return {k: list(v) for k, v in self._memory.items()}
        try:
            raw = self.path.read()
            if raw is None:
                return {"ids": [], "previous": []}
            data = json.loads(raw)
        except (OSError, ValueError) as error:
            raise PromoteError(
                f"{self.path.where}: cannot read the config ids promote manages on {self._env} "
                f"({type(error).__name__}); fix or delete the file (deleting it means objects "
                "removed from the workspace are no longer deleted from this tenant)"
            ) from None
        data = data if isinstance(data, dict) else {}
        return {
            key: sorted(str(i) for i in data.get(key) or [] if isinstance(i, str))
            for key in ("ids", "previous")
        }

    def _write(self, record: dict[str, list[str]]) -> None:
        if self.path is None:
            self._memory = record
            return
        try:
            _write_json(self.path, {"format": _CONFIG_FORMAT, **record})
        except OSError as error:
            raise PromoteError(
                f"{self.path.where}: cannot record the config ids promote manages on {self._env} "
                f"({error.strerror or type(error).__name__}); check that .promote/ is writable"
            ) from None


def _write_json(document: Document, data: Any) -> None:
    """``data`` as JSON in ``document`` (a 0600 file, or a store record); an ``OSError`` when a
    file cannot be written (the callers word the message)."""
    document.write((json.dumps(data, indent=2) + "\n").encode())
