"""What ``promote state show`` and ``promote state push`` do: describe a store, and copy the
local store (``.promote/``) into the configured one. Pure of any terminal."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from promote.state.base import ConflictError, LockInfo, StateStore
from promote.state.journal import Journal, unfinished_runs

__all__ = ["PushResult", "StateReport", "push_state", "state_report"]


@dataclass(frozen=True)
class StateReport:
    """A store at a glance."""

    store: str
    kind: str
    lock: LockInfo | None
    unfinished: tuple[Journal, ...]
    history_entries: int
    records: tuple[str, ...]
    has_fingerprint_key: bool

    def to_json(self) -> dict[str, object]:
        """As plain JSON data (never the key itself)."""
        lock = None
        if self.lock is not None:
            lock = {
                "id": self.lock.id,
                "host": self.lock.host,
                "pid": self.lock.pid,
                "run_id": self.lock.run_id,
                "run": self.lock.run,
                "started": self.lock.started,
            }
        return {
            "format": "promote.state/1",
            "store": self.store,
            "kind": self.kind,
            "lock": lock,
            "unfinished_runs": [
                {"id": j.run_id, "to": j.to, "status": j.status, "where": j.describe()}
                for j in self.unfinished
            ],
            "history_entries": self.history_entries,
            "records": list(self.records),
            "fingerprint_key": self.has_fingerprint_key,
        }


def state_report(store: StateStore) -> StateReport:
    """Read ``store``: its lock holder, unfinished runs, history size, records; changes
    nothing (the fingerprint key is not created)."""
    store.check()
    return StateReport(
        store=store.describe(),
        kind=store.kind,
        lock=store.read_lock(),
        unfinished=tuple(unfinished_runs(store)),
        history_entries=len(store.read_history()),
        records=tuple(store.list_records()),
        has_fingerprint_key=store.fingerprint_key(create=False) is not None,
    )


@dataclass
class PushResult:
    """What ``state push`` copied, and what it left as it found it."""

    journals: int = 0
    history: int = 0
    records: int = 0
    key: str = "none"
    """``copied``, ``same`` (the store held the same key), ``kept`` (it held another) or
    ``none`` (no local key)."""
    notes: list[str] = field(default_factory=list)


def push_state(source: StateStore, target: StateStore) -> PushResult:
    """Copy ``source`` (the local store) into ``target``: journals and records the target
    lacks, every history entry it does not hold yet (same bytes), the fingerprint key when
    it has none. Idempotent: pushing twice copies nothing the second time. The target's own
    objects are never overwritten (a journal or record it holds differently is named)."""
    target.check()
    result = PushResult()
    for run_id in source.list_journals():
        found = source.read_journal(run_id)
        if found is None:
            continue
        held = target.read_journal(run_id)
        if held is not None:
            if held.data != found.data:
                result.notes.append(f"journal of run {run_id}: the store's copy differs; kept it")
            continue
        try:
            target.write_journal(run_id, found.data, expected=None)
            result.journals += 1
        except ConflictError:
            result.notes.append(f"journal of run {run_id}: written by another run meanwhile")
    held_history = {entry.data.rstrip(b"\n") for entry in target.read_history()}
    for index, entry in enumerate(source.read_history()):
        data = entry.data.rstrip(b"\n")
        if data in held_history:
            continue
        at = _entry_time(data)
        if at is None:
            result.notes.append(f"{entry.where}: not a history entry; not copied")
            continue
        target.append_history(data + b"\n", copied_at=at + index)
        held_history.add(data)
        result.history += 1
    for name in source.list_records():
        ours = source.read_record(name)
        if ours is None:
            continue
        theirs = target.read_record(name)
        if theirs is None:
            target.write_record(name, ours)
            result.records += 1
        elif theirs != ours:
            result.notes.append(f"record {name}: the store's copy differs; kept it")
    local_key = source.fingerprint_key(create=False)
    if local_key is not None:
        before = target.fingerprint_key(create=False)
        stored = target.fingerprint_key(create=True, proposed=local_key)
        result.key = "same" if before == local_key else "copied" if stored == local_key else "kept"
        if stored != local_key:
            result.notes.append(
                "the store already holds another fingerprint key; kept it: secrets last "
                "written from this machine are rewritten once by the next run"
            )
    return result


def _entry_time(data: bytes) -> int | None:
    """The entry's ``time`` in nanoseconds since the epoch (its order in the target)."""
    try:
        parsed = json.loads(data)
        return int(datetime.fromisoformat(str(parsed["time"])).timestamp()) * 1_000_000_000
    except (ValueError, TypeError, KeyError):
        return None
