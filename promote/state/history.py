"""History of promotions and rollbacks, kept in the state store.

One JSON entry per applied stage or rollback: what changed by id (config objects, ESVs by id
and kind), never a value. ``config_digest`` is a hash of the config the tenant held right
after, so :func:`promote.engine.status.environment_status` can tell drift (someone changed
the tenant since).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from promote.clock import WallClock, stamp, utc_now
from promote.state.base import StateStore

__all__ = [
    "HistoryRecord",
    "append_history",
    "config_digest",
    "now",
    "read_history",
]


@dataclass(frozen=True)
class HistoryRecord:
    """One applied stage or rollback. Ids only; no ESV value ever."""

    time: str
    run_id: str
    env: str
    action: str
    """``promote`` (a run applied this stage) or ``rollback``."""
    source: str
    config_added: tuple[str, ...] = ()
    config_modified: tuple[str, ...] = ()
    config_deleted: tuple[str, ...] = ()
    esvs: tuple[str, ...] = ()
    """``<action> <kind> <id>`` per ESV change, e.g. ``modify secret esv-x``."""
    restarted: bool = False
    report_id: str | None = None
    config_digest: str = ""
    notes: tuple[str, ...] = field(default=())
    failed: bool = False
    """The stage failed part-way: the record lists only the steps that completed (what was
    written), and a note says where it failed."""

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryRecord:
        """Read a record written by :meth:`to_json` (unknown keys ignored)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        for name, value in list(known.items()):
            if isinstance(value, list):
                known[name] = tuple(value)
        return cls(**known)

    def summary(self) -> str:
        """One line for people: what changed (``config +2 ~0 -1, 1 ESV change, restarted``).

        Whether the stage failed is not repeated here: the caller marks the record
        ``(failed)`` and its note says how far it got."""
        parts: list[str] = []
        if self.config_added or self.config_modified or self.config_deleted:
            parts.append(
                f"config +{len(self.config_added)} ~{len(self.config_modified)}"
                f" -{len(self.config_deleted)}"
            )
        if self.esvs:
            parts.append(f"{len(self.esvs)} ESV change{'s' if len(self.esvs) != 1 else ''}")
        if self.restarted:
            parts.append("restarted")
        return ", ".join(parts) or "no changes"


def config_digest(config: Mapping[str, Any]) -> str:
    """A stable hash of a set of config objects."""
    text = json.dumps(dict(config.items()), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_history(
    store: StateStore, *, env: str | None = None, notes: list[str] | None = None
) -> list[HistoryRecord]:
    """Every record (of ``env`` when given), oldest first.

    Unreadable entries are skipped, each with a line in ``notes`` when given: a last line
    without its newline is a write that was cut off (a crash, a full disk).
    """
    records = []
    for entry in store.read_history():
        try:
            record = HistoryRecord.from_json(json.loads(entry.data))
        except (ValueError, TypeError):
            if notes is not None:
                why = "is incomplete (a write was cut off)" if entry.last else "cannot be read"
                notes.append(f"{entry.where} {why}; skipped")
            continue
        if env is None or record.env == env:
            records.append(record)
    return records


def append_history(store: StateStore, record: HistoryRecord) -> None:
    """Add ``record`` as one entry at the end of the history (never rewriting another)."""
    store.append_history((json.dumps(record.to_json(), sort_keys=True) + "\n").encode())


def now(clock: WallClock = utc_now) -> str:
    """``clock``'s time (default: now) in UTC as ISO 8601 seconds."""
    return stamp(clock)
