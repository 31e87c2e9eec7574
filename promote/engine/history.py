"""History of promotions and rollbacks (``.promote/history.jsonl``), and environment status.

One JSON line per applied stage or rollback: what changed by id (config objects, ESVs by id
and kind), never a value. ``config_digest`` is a hash of the config the tenant held right
after, so :func:`environment_status` can tell drift (someone changed the tenant since).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from esv import EsvError
from promote.engine.clock import WallClock, stamp, utc_now
from promote.engine.diff import diff_objects
from promote.errors import PromoteError
from promote.files import Appender, append_line, read_text
from promote.tenants.base import JSON, Tenant
from promote.workspace import Workspace

__all__ = [
    "EnvironmentStatus",
    "HistoryRecord",
    "append_history",
    "config_digest",
    "environment_status",
    "read_history",
]

HISTORY_FILE = "history.jsonl"


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


def config_digest(config: Mapping[str, JSON]) -> str:
    """A stable hash of a set of config objects."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _path(state_dir: Path) -> Path:
    return state_dir / HISTORY_FILE


def read_history(
    state_dir: Path, *, env: str | None = None, notes: list[str] | None = None
) -> list[HistoryRecord]:
    """Every record (of ``env`` when given), oldest first.

    Unreadable lines are skipped, each with a line in ``notes`` when given: a last line
    without its newline is a write that was cut off (a crash, a full disk).
    """
    path = _path(state_dir)
    text = read_text(path) or ""
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = HistoryRecord.from_json(json.loads(line))
        except (ValueError, TypeError):
            if notes is not None:
                torn = number == len(lines)
                why = "is incomplete (a write was cut off)" if torn else "cannot be read"
                notes.append(f"{path}: line {number} {why}; skipped")
            continue
        if env is None or record.env == env:
            records.append(record)
    return records


def append_history(
    state_dir: Path, record: HistoryRecord, *, append: Appender = append_line
) -> None:
    """Add ``record`` as one line at the end of the history (one append, fsynced)."""
    append(_path(state_dir), (json.dumps(record.to_json(), sort_keys=True) + "\n").encode())


def now(clock: WallClock = utc_now) -> str:
    """``clock``'s time (default: now) in UTC as ISO 8601 seconds."""
    return stamp(clock)


@dataclass(frozen=True)
class EnvironmentStatus:
    """What ``promote status`` says about one environment."""

    env: str
    lower: str
    """The stage below (``config`` for the first)."""
    in_sync: bool | None
    """Config equals the stage below's; ``None`` when it cannot be compared (see ``note``)."""
    differing: tuple[str, ...]
    """Config object ids that differ from the stage below."""
    pending_esvs: tuple[str, ...]
    last: HistoryRecord | None
    drift: bool | None
    """Config differs from what the last run left; ``None`` without history."""
    note: str | None = None
    """Why something could not be told (the tenant could not be read, resolved config)."""
    readable: bool = True
    """False when the tenant (its config or its ESVs) could not be read; ``note`` says why."""
    lower_in_sync: bool | None = None
    """When ``in_sync``: whether the stage below is itself in sync all the way down to
    ``config`` (``None``: that cannot be told). Only then is this stage "in sync with" the
    one below; otherwise it is merely the "same as" it."""


def environment_status(
    workspace: Workspace,
    tenants: Mapping[str, Tenant],
    *,
    envs: Sequence[str] | None = None,
    notes: list[str] | None = None,
) -> list[EnvironmentStatus]:
    """Status of every environment of the chain (or ``envs``), in chain order.

    A tenant that cannot be read (no token here, unreachable) does not stop the others: its
    entry says why (``readable`` false), and the stage above it cannot be compared (its note
    refers to the lower's entry, ``cannot compare: dev cannot be read (above)``). History
    lines that cannot be read are skipped with a line in ``notes`` (see :func:`read_history`).
    """
    records = read_history(workspace.state_dir, notes=notes)
    held: dict[str, dict[str, JSON] | str] = {}

    def config_of(env: str) -> dict[str, JSON] | str:
        if env not in held:
            try:
                tenant = tenants[env]
                held[env] = tenant.read_config(sorted(tenant.list_config_ids()))
            except (PromoteError, EsvError) as error:
                held[env] = _one_line(error)
        return held[env]

    found: dict[str, EnvironmentStatus] = {}

    def status_of(env: str) -> EnvironmentStatus:
        if env not in found:
            status = _status_of(workspace, tenants, env, config_of, records, listed)
            if status.in_sync:
                lower = workspace.lower(env)
                below = None if lower is None else status_of(lower)
                status = replace(status, lower_in_sync=_settled(below))
            found[env] = status
        return found[env]

    listed = tuple(envs or workspace.chain)
    return [status_of(env) for env in listed]


def _settled(status: EnvironmentStatus | None) -> bool | None:
    """Whether ``status``'s environment is in sync all the way down (``None``: the first
    stage's lower, ``config``, which is in sync by definition)."""
    if status is None:
        return True
    if status.in_sync is False or status.lower_in_sync is False:
        return False
    if status.in_sync is None or status.lower_in_sync is None:
        return None
    return True


def _one_line(error: Exception) -> str:
    return " ".join(line.strip() for line in str(error).splitlines())


def _status_of(
    workspace: Workspace,
    tenants: Mapping[str, Tenant],
    env: str,
    config_of: Callable[[str], dict[str, JSON] | str],
    records: Sequence[HistoryRecord],
    listed: Sequence[str],
) -> EnvironmentStatus:
    lower = workspace.lower(env)
    last = next((r for r in reversed(records) if r.env == env), None)
    current = config_of(env)
    if isinstance(current, str):
        unreadable = f"cannot be read: {current}"
        return EnvironmentStatus(
            env, lower or "config", None, (), (), last, None, unreadable, readable=False
        )
    tenant = tenants[env]
    below = dict(workspace.config) if lower is None else config_of(lower)
    in_sync: bool | None
    note: str | None = None
    differing: tuple[str, ...] = ()
    if isinstance(below, str):
        # The lower's own entry (listed before this one) carries the whole error.
        why = "(above)" if lower in listed else f"({below})"
        in_sync, note = None, f"cannot compare: {lower} cannot be read {why}"
    elif not tenant.capabilities.placeholders:
        in_sync, note = None, "holds resolved config; 'promote plan' compares it"
    else:
        allowed = tenant.capabilities.config_ids
        if allowed is not None:
            below = {key: value for key, value in below.items() if key in allowed}
        differing = tuple(d.object for d in diff_objects(current, below))
        in_sync = not differing
    pending: list[str] = []
    readable = True
    if tenant.capabilities.esvs:
        try:
            pending = [k for k, v in tenant.list_variables().items() if not v.loaded]
            pending += [k for k, s in tenant.list_secrets().items() if not s.loaded]
        except (PromoteError, EsvError) as error:
            pending, readable = [], False
            unreadable = f"its ESVs cannot be read: {_one_line(error)}"
            note = unreadable if note is None else f"{note}; {unreadable}"
    drift = None if last is None else config_digest(current) != last.config_digest
    return EnvironmentStatus(
        env,
        lower or "config",
        in_sync,
        differing,
        tuple(sorted(pending)),
        last,
        drift,
        note,
        readable=readable,
    )
