"""The local state store: files under ``.promote/`` on this machine (the default).

Layout::

    .promote/run.lock             the run lock: an flock, holding the holder as JSON
    .promote/runs/<run-id>.json   run journals
    .promote/history.jsonl        the history, one JSON line per entry (appended, fsynced)
    .promote/applied/<env>.json   records of what was applied to each environment
    .promote/tenants/<env>/*.json records a tenant keeps about itself (AIC, Okta)
    .promote/fingerprint.key      the fingerprint key (mode 0600)

Files are written by :func:`promote.files.atomic_write` and appended by
:func:`promote.files.append_line`. The lock is an ``flock``: the kernel releases it when its
holder dies, so a lock here is never stale. Journal versions are digests of their content;
compare-and-swap is exact because only the lock holder writes journals on one machine.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
from pathlib import Path

from promote.errors import BlockedError, LockedError
from promote.files import (
    Appender,
    StateFileError,
    Writer,
    append_line,
    atomic_write,
    read_bytes,
    read_text,
)
from promote.state.base import (
    KEY_BYTES,
    ConflictError,
    HistoryEntry,
    LockInfo,
    StateStoreError,
    Versioned,
)

__all__ = ["HISTORY_FILE", "KEY_FILE", "LOCK_FILE", "LocalStore"]

LOCK_FILE = "run.lock"
HISTORY_FILE = "history.jsonl"
KEY_FILE = "fingerprint.key"
_RUNS = "runs"
_RECORD_DIRS = ("applied", "tenants")
"""Record names start with one of these: they are paths under the store's root."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class LocalStore:
    """State in ``root`` (``<workspace>/.promote``); see the module docstring."""

    kind = "local"

    def __init__(
        self, root: Path, *, write: Writer = atomic_write, append: Appender = append_line
    ) -> None:
        self.root = Path(root)
        self._write = write
        self._append = append
        self._lock_fd: int | None = None

    def describe(self) -> str:
        """``local (<path>)``."""
        return f"local ({self.root})"

    def check(self) -> None:
        """Nothing to reach: files are created when first written."""

    # -- the run lock -------------------------------------------------------------------

    def acquire_lock(self, lock: LockInfo, *, env: str) -> LockInfo:
        """``flock`` on ``run.lock``; the holder's details are written into the file."""
        path = self.root / LOCK_FILE
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise StateFileError(path, error, "create", "nothing was changed") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LockInfo.from_bytes(os.pread(fd, 4096, 0))
            os.close(fd)
            raise LockedError(
                env,
                _holder_text(holder),
                f"the workspace run lock {path} is held",
            ) from None
        _note(fd, lock.to_bytes())
        self._lock_fd = fd
        return lock

    def release_lock(self, lock: LockInfo) -> None:
        """Unlock and forget the holder."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        try:
            _note(fd, b"")
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def read_lock(self) -> LockInfo | None:
        """The holder while another process holds the flock; ``None`` otherwise."""
        path = self.root / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                found = LockInfo.from_bytes(os.pread(fd, 4096, 0))
                return found or LockInfo("unknown", "this machine", 0, "unknown", "run", "unknown")
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Refused: a local lock is held only by a live process (the kernel drops the lock
        of one that died), and that process must be stopped instead."""
        holder = self.read_lock()
        if holder is None:
            raise BlockedError(
                f"no run lock is held in {self.describe()}: a local lock is released by the "
                "system when its holder dies; nothing to unlock"
            )
        raise BlockedError(
            f"the run lock in {self.describe()} is held by a live process: "
            f"{holder.describe()}; stop that process (a local lock is released when its "
            f"holder exits){'' if holder.id == lock_id else f'; its lock id is {holder.id}'}"
        )

    # -- journals -------------------------------------------------------------------------

    def _journal_path(self, run_id: str) -> Path:
        return self.root / _RUNS / f"{run_id}.json"

    def list_journals(self) -> list[str]:
        """Run ids of ``runs/*.json``, sorted."""
        runs = self.root / _RUNS
        if not runs.is_dir():
            return []
        return sorted(path.stem for path in runs.glob("*.json"))

    def read_journal(self, run_id: str) -> Versioned | None:
        """``runs/<run_id>.json``, versioned by its digest."""
        data = read_bytes(self._journal_path(run_id))
        return None if data is None else Versioned(data, _digest(data))

    def read_journal_end(self, run_id: str, size: int) -> bytes | None:
        """The last ``size`` bytes of ``runs/<run_id>.json``."""
        path = self._journal_path(run_id)
        try:
            with path.open("rb") as file:
                file.seek(max(0, file.seek(0, os.SEEK_END) - size))
                return file.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StateFileError(path, error, "read") from None

    def write_journal(self, run_id: str, data: bytes, *, expected: str | None) -> str:
        """Atomic replace after comparing the current digest with ``expected``."""
        current = self.read_journal(run_id)
        if (current.version if current else None) != expected:
            raise ConflictError(
                self.describe(),
                f"the journal of run {run_id} was changed by another process; "
                "run 'promote state show' to see who is running",
            )
        self._write(self._journal_path(run_id), data)
        return _digest(data)

    def delete_journal(self, run_id: str) -> None:
        """Unlink ``runs/<run_id>.json``."""
        try:
            self._journal_path(run_id).unlink(missing_ok=True)
        except OSError:
            pass  # an old journal left behind is harmless; the next prune tries again

    # -- history --------------------------------------------------------------------------

    def append_history(self, data: bytes, *, copied_at: int | None = None) -> None:
        """One durable append to ``history.jsonl`` (the file's order is the order of
        appends: ``copied_at`` is not needed)."""
        line = data.rstrip(b"\n") + b"\n"
        self._append(self.root / HISTORY_FILE, line)

    def read_history(self) -> list[HistoryEntry]:
        """The lines of ``history.jsonl``, the last one flagged (it may be cut off)."""
        path = self.root / HISTORY_FILE
        lines = (read_text(path) or "").split("\n")
        return [
            HistoryEntry(f"{path}: line {number}", line.encode(), last=number == len(lines))
            for number, line in enumerate(lines, 1)
            if line.strip()
        ]

    # -- records and the key --------------------------------------------------------------

    def _record_path(self, name: str) -> Path:
        parts = Path(name).parts
        if len(parts) < 2 or parts[0] not in _RECORD_DIRS or ".." in parts:
            raise ValueError(f"not a record name: {name!r}")
        return self.root / Path(*parts)

    def read_record(self, name: str) -> bytes | None:
        """``<root>/<name>``."""
        return read_bytes(self._record_path(name))

    def write_record(self, name: str, data: bytes) -> None:
        """Atomic replace of ``<root>/<name>`` (mode 0600)."""
        self._write(self._record_path(name), data)

    def delete_record(self, name: str) -> None:
        """Unlink ``<root>/<name>``."""
        path = self._record_path(name)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise StateFileError(path, error, "delete") from None

    def list_records(self) -> list[str]:
        """``applied/*.json`` and ``tenants/<env>/*.json`` (not a local tenant's database)."""
        found = [*self.root.glob("applied/*.json"), *self.root.glob("tenants/*/*.json")]
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in found
            if p.is_file() and not p.name.startswith(".")
        )

    def fingerprint_key(
        self, *, create: bool = True, proposed: bytes | None = None
    ) -> bytes | None:
        """``fingerprint.key`` (hex text, mode 0600). Created by linking a complete temp
        file into place, which fails when the key exists: of two processes creating it at
        once, both read the one linked first, never a half-written file."""
        path = self.root / KEY_FILE
        text = read_text(path)
        if text is None and create:
            key = (proposed or secrets.token_bytes(KEY_BYTES)).hex()
            temp = self.root / f".{KEY_FILE}.{secrets.token_hex(8)}.tmp"
            try:
                self._write(temp, key.encode() + b"\n")
                try:
                    os.link(temp, path)
                except FileExistsError:
                    pass
                finally:
                    temp.unlink(missing_ok=True)
            except StateFileError as error:
                raise StateFileError(
                    path, error.os_error, "create", "nothing was changed"
                ) from None
            except OSError as error:
                raise StateFileError(path, error, "create", "nothing was changed") from None
            text = read_text(path)
        if text is None:
            return None
        try:
            return bytes.fromhex(text.strip())
        except ValueError:
            raise StateStoreError(
                self.describe(),
                f"{path} is not a fingerprint key (hex text); delete it (secrets are then "
                "rewritten once by the next run) or restore it",
            ) from None

    def close(self) -> None:
        """Nothing is held open between calls (the lock's descriptor is released by
        :meth:`release_lock`)."""


def _holder_text(holder: LockInfo | None) -> str:
    if holder is None:
        return "another promote run"
    return (
        f"another promote run (pid {holder.pid} on {holder.host}: {holder.run} "
        f"{holder.run_id} since {holder.started}, lock {holder.id})"
    )


def _note(fd: int, data: bytes) -> None:
    # Only there to name the holder in another run's message: a full disk must not stop us.
    try:
        os.ftruncate(fd, 0)
        if data:
            os.pwrite(fd, data, 0)
    except OSError:
        pass
