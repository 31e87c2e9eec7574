"""Run journals and the workspace run lock (``.promote/runs/``, ``.promote/run.lock``).

A journal is written (atomically) before every step of a run, so a process killed mid-run
leaves a record of where it stopped: which environments were done, which step of which
environment was under way. It holds ids only, never a value. The next ``run`` finds the
unfinished journal and finishes that run (a re-plan makes re-applying idempotent).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from promote.engine.clock import WallClock, stamp, utc_now
from promote.errors import LockedError
from promote.files import StateFileError, Writer, atomic_write, read_text

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
_UNFINISHED = ("running", "interrupted", "aborted")
KEEP_FINISHED = 100
"""How many journals of finished runs stay in ``runs/`` (the history keeps every run)."""


@contextmanager
def run_lock(state_dir: Path, *, env: str) -> Iterator[None]:
    """Hold the workspace run lock for the block; another holder -> ``LockedError`` (exit 4).

    ``env`` names the environment the caller wanted to change (for the message).
    """
    path = state_dir / "run.lock"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise StateFileError(path, error, "create", "nothing was changed") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 100, 0).decode(errors="replace").strip() or None
            raise LockedError(
                env,
                f"another promote run (pid {holder})" if holder else "another promote run",
                f"the workspace run lock {path} is held",
            ) from None
        _note_pid(fd, str(os.getpid()))
        try:
            yield
        finally:
            _note_pid(fd, "")
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def run_in_progress(state_dir: Path) -> bool:
    """Whether another process holds the workspace run lock right now (reads only)."""
    path = state_dir / "run.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _note_pid(fd: int, text: str) -> None:
    # Only there to name the holder in another run's message: a full disk must not stop us.
    try:
        os.ftruncate(fd, 0)
        if text:
            os.pwrite(fd, text.encode(), 0)
    except OSError:
        pass


@dataclass
class Journal:
    """One run's journal file; every update is written before the step it announces."""

    path: Path
    data: dict[str, Any]
    write: Writer = atomic_write
    clock: WallClock = utc_now
    """The time of each step and of the end."""

    @classmethod
    def start(
        cls,
        state_dir: Path,
        *,
        run_id: str,
        to: str,
        stages: Sequence[str],
        approved: Sequence[str],
        write: Writer = atomic_write,
        clock: WallClock = utc_now,
        changes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Journal:
        """Create ``runs/<run_id>.json`` (status ``running``) listing the stages to apply.

        ``changes``: per environment, what its steps change, by id (``config_added``,
        ``config_modified``, ``config_deleted``, ``esvs`` as ``<action> <kind> <id>``,
        ``restart``), so a run that finishes this one can record it (:meth:`begun_changes`).
        """
        changes = changes or {}
        journal = cls(
            state_dir / "runs" / f"{run_id}.json",
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
            write,
            clock,
        )
        journal.save()
        return journal

    @classmethod
    def load(
        cls, path: Path, *, write: Writer = atomic_write, clock: WallClock = utc_now
    ) -> Journal | None:
        """The journal at ``path``; ``None`` when it is not a readable journal."""
        text = read_text(path)
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT:
            return None
        return cls(path, data, write, clock)

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
        """Write the journal atomically (``StateFileError`` on failure)."""
        text = json.dumps(self.data, indent=2, sort_keys=True) + "\n"
        self.write(self.path, text.encode())

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


def unfinished_runs(
    state_dir: Path, *, write: Writer = atomic_write, clock: WallClock = utc_now
) -> list[Journal]:
    """Journals of runs that neither finished nor failed cleanly (killed or interrupted),
    oldest first. Call only while holding :func:`run_lock`."""
    runs = state_dir / "runs"
    if not runs.is_dir():
        return []
    found = []
    for path in sorted(runs.glob("*.json")):
        journal = Journal.load(path, write=write, clock=clock)
        if journal is not None and journal.status in _UNFINISHED:
            found.append(journal)
    return sorted(found, key=lambda j: str(j.data.get("started", "")))


def prune_finished(state_dir: Path, *, keep: int = KEEP_FINISHED) -> int:
    """Delete all but the ``keep`` newest journals of finished runs; returns how many went.

    Unfinished journals are never deleted. Call only while holding :func:`run_lock`.
    """
    runs = state_dir / "runs"
    if not runs.is_dir():
        return 0
    finished = []
    for path in sorted(runs.glob("*.json")):
        journal = Journal.load(path)
        if journal is not None and journal.status not in _UNFINISHED:
            finished.append(path)
    removed = 0
    # Run ids start with a UTC timestamp, so name order is age order.
    for path in finished[: max(len(finished) - keep, 0)]:
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed
