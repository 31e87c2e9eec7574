"""Run journals and the run lock, kept in the state store (:mod:`promote.state.base`).

A journal is written (atomically) before every step of a run, so a process killed mid-run
leaves a record of where it stopped: which environments were done, which step of which
environment was under way. It holds ids only, never a value. The next ``run`` finds the
unfinished journal and finishes that run (a re-plan makes re-applying idempotent).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from esv.jsonfile import loads
from promote.clock import WallClock, stamp, utc_now
from promote.state.base import LockInfo, StateStore, new_lock

__all__ = [
    "JOURNAL_FORMAT",
    "KEEP_FINISHED",
    "Journal",
    "RunStatus",
    "prune_finished",
    "run_in_progress",
    "run_lock",
    "unfinished_runs",
]

JOURNAL_FORMAT = "promote.journal/1"
RunStatus = Literal["running", "interrupted", "aborted", "failed", "done", "recovered"]
"""``aborted``: stopped by an unexpected error (a bug); unfinished, as ``interrupted``."""
UNFINISHED = ("running", "interrupted", "aborted")
KEEP_FINISHED = 100
"""How many journals of finished runs the store keeps (the history keeps every run)."""
_READERS = 8


@contextmanager
def run_lock(
    store: StateStore,
    *,
    env: str,
    run_id: str = "",
    run: str = "run",
    clock: WallClock = utc_now,
) -> Iterator[LockInfo]:
    """Hold the store's run lock for the block; another holder -> ``LockedError`` (exit 4).

    ``env`` names the environment the caller wanted to change (for the message); ``run_id``
    and ``run`` (``run to staging``) name the holder to whoever finds the lock held.
    """
    lock = store.acquire_lock(new_lock(run_id, run, stamp(clock)), env=env)
    try:
        yield lock
    finally:
        store.release_lock(lock)


def run_in_progress(store: StateStore) -> LockInfo | None:
    """The holder of the run lock right now, if any (reads only)."""
    return store.read_lock()


@dataclass
class Journal:
    """One run's journal in the state store; every update is written (compare-and-swap on
    the version read or written last) before the step it announces."""

    store: StateStore
    data: dict[str, Any]
    version: str | None = None
    """The stored journal's version; ``None`` before it is first written."""
    clock: WallClock = utc_now
    """The time of each step and of the end."""

    @classmethod
    def start(
        cls,
        store: StateStore,
        *,
        run_id: str,
        to: str,
        stages: Sequence[str],
        approved: Sequence[str],
        clock: WallClock = utc_now,
        changes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Journal:
        """Create the journal of ``run_id`` (status ``running``) listing the stages to apply.

        ``changes``: per environment, what its steps change, by id (``config_added``,
        ``config_modified``, ``config_deleted``, ``esvs`` as ``<action> <kind> <id>``,
        ``restart``), so a run that finishes this one can record it (:meth:`begun_changes`).
        """
        changes = changes or {}
        journal = cls(
            store,
            {
                "format": JOURNAL_FORMAT,
                "id": run_id,
                "to": to,
                "pid": os.getpid(),
                "started": stamp(clock),
                "status": "running",
                "approved": sorted(approved),
                "stages": [
                    {
                        "env": env,
                        "status": "pending",
                        "steps": [],
                        "changes": dict(changes.get(env, {})),
                    }
                    for env in stages
                ],
                "current": None,
            },
            None,
            clock,
        )
        journal.save()
        return journal

    @classmethod
    def load(
        cls,
        store: StateStore,
        run_id: str,
        *,
        clock: WallClock = utc_now,
        wanted: Callable[[str], bool] | None = None,
    ) -> Journal | None:
        """The journal of ``run_id``; ``None`` when there is no readable journal, or when
        ``wanted(status)`` is false (told from the journal's last bytes where its layout
        allows: one of 20,000 objects is 2 MB, a store keeps 100 finished ones, and finding
        the unfinished runs should read none of them whole)."""
        if wanted is not None:
            end = store.read_journal_end(run_id, _STATUS_WITHIN)
            if end is None:
                return None
            quick = _run_status(end)
            if quick is not None and not wanted(quick):
                return None
        found = store.read_journal(run_id)
        if found is None:
            return None
        try:
            data = loads(found.data)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT:
            return None
        if wanted is not None and not wanted(str(data["status"])):
            return None
        return cls(store, data, found.version, clock)

    @property
    def run_id(self) -> str:
        """The run's id."""
        return str(self.data["id"])

    @property
    def to(self) -> str:
        """The environment the run was walking to."""
        return str(self.data["to"])

    @property
    def status(self) -> str:
        """``running``, ``interrupted``, ``aborted``, ``failed``, ``done`` or ``recovered``."""
        return str(self.data["status"])

    @property
    def approved(self) -> list[str]:
        """Protected environments the run was approved for."""
        return [str(env) for env in self.data.get("approved", [])]

    def save(self) -> None:
        """Write the journal in one step, only over the version this object last saw
        (``StateStoreError`` / ``StateFileError`` on failure, ``ConflictError`` when another
        process changed it)."""
        text = json.dumps(self.data, indent=2, sort_keys=True) + "\n"
        self.version = self.store.write_journal(self.run_id, text.encode(), expected=self.version)

    def _stage(self, env: str) -> dict[str, Any]:
        for stage in self.data["stages"]:
            if stage["env"] == env:
                return stage  # type: ignore[no-any-return]
        raise KeyError(env)

    def step(self, env: str, step: str, ids: Sequence[str] = ()) -> None:
        """Record that ``step`` of ``env`` is about to start (ids of what it touches)."""
        stage = self._stage(env)
        stage["status"] = "applying"
        stage["steps"].append({"step": step, "ids": list(ids), "at": stamp(self.clock)})
        self.data["current"] = {"env": env, "step": step}
        self.save()

    def stages(self) -> list[tuple[str, str]]:
        """``(env, status)`` of each stage the run set out to apply, in walk order."""
        return [(str(s["env"]), str(s["status"])) for s in self.data["stages"]]

    def begun_changes(self, env: str) -> dict[str, Any]:
        """What the steps of ``env`` that began changed (or were changing when the run
        stopped), by id: keys as in :meth:`start`'s ``changes``; empty when none began."""
        try:
            stage = self._stage(env)
        except KeyError:
            return {}
        planned = stage.get("changes") or {}
        begun = {step.get("step") for step in stage["steps"]}
        found: dict[str, Any] = {}
        if "esvs" in begun and planned.get("esvs"):
            found["esvs"] = [str(item) for item in planned["esvs"]]
        if "config" in begun:
            for key in ("config_added", "config_modified", "config_deleted"):
                if planned.get(key):
                    found[key] = [str(item) for item in planned[key]]
        if "restart" in begun:
            found["restart"] = True
        return found

    def stage_done(self, env: str) -> None:
        """Record that ``env`` is fully applied."""
        self._stage(env)["status"] = "done"
        self.data["current"] = None
        self.save()

    def finish(self, status: RunStatus, **extra: Any) -> None:
        """Record how the run ended."""
        self.data["status"] = status
        self.data["ended"] = stamp(self.clock)
        self.data.update(extra)
        self.save()

    def describe(self) -> str:
        """Where the run stopped, in words: ``run X to staging, stopped in staging at config``."""
        current = self.data.get("current")
        done = [s["env"] for s in self.data["stages"] if s["status"] == "done"]
        text = f"run {self.run_id} to {self.to} (started {self.data.get('started')})"
        if current:
            text += f", stopped in {current['env']} at step {current['step']}"
        if done:
            text += f"; already applied: {', '.join(done)}"
        return text


_STATUS_KEY = b'\n  "status": "'
_STATUS = re.compile(rb'([a-z]+)"')
_STATUS_WITHIN = 4096
"""How many bytes from its end a journal's run status is looked for (only ``to`` and a
closing brace follow it)."""


def _run_status(data: bytes) -> str | None:
    """The run's own status in a journal as :meth:`Journal.save` writes it (``None``:
    written otherwise): keys at the top are indented two spaces, a stage's deeper, no text
    holds a raw newline, and sorted keys put the status near the end (found from there)."""
    at = data.rfind(_STATUS_KEY)
    found = _STATUS.match(data, at + len(_STATUS_KEY)) if at >= 0 else None
    return found.group(1).decode() if found is not None else None


def _journals(store: StateStore, clock: WallClock, wanted: Callable[[str], bool]) -> list[Journal]:
    """Every readable journal in the store whose run's status is ``wanted`` (read a few at
    a time: the store may be remote)."""
    run_ids = store.list_journals()

    def load(run_id: str) -> Journal | None:
        return Journal.load(store, run_id, clock=clock, wanted=wanted)

    if len(run_ids) < 2:
        found = [load(run_id) for run_id in run_ids]
    else:
        from concurrent.futures import ThreadPoolExecutor  # ~4 ms to load: only here

        with ThreadPoolExecutor(max_workers=_READERS) as pool:
            found = list(pool.map(load, run_ids))
    return [journal for journal in found if journal is not None]


def unfinished_runs(store: StateStore, *, clock: WallClock = utc_now) -> list[Journal]:
    """Journals of runs that neither finished nor failed cleanly (killed or interrupted),
    oldest first. Act on them only while holding :func:`run_lock`."""
    found = _journals(store, clock, UNFINISHED.__contains__)
    return sorted(found, key=lambda j: str(j.data.get("started", "")))


def _finished(status: str) -> bool:
    return status not in UNFINISHED


def prune_finished(store: StateStore, *, keep: int = KEEP_FINISHED) -> int:
    """Delete all but the ``keep`` newest journals of finished runs; returns how many went.

    Unfinished journals are never deleted. Call only while holding :func:`run_lock`.
    """
    # Run ids start with a UTC timestamp, so name order is age order.
    finished = sorted(j.run_id for j in _journals(store, utc_now, _finished))
    removed = 0
    for run_id in finished[: max(len(finished) - keep, 0)]:
        store.delete_journal(run_id)
        removed += 1
    return removed
