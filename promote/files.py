"""Files promote writes (``.promote/`` state, tenant records, the outbox, ``promote init``):
each written atomically and durably by :func:`atomic_write`; logs grow by :func:`append_line`.

A temp file in the same directory (created exclusively), the data, ``fsync``, ``os.replace``
over the target, then ``fsync`` of the directory so the rename itself survives a crash. A
failure (read-only directory, disk full) raises :class:`StateFileError` naming the file and
the cause; the previous content of the file is left as it was and no temp file remains.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from promote.errors import PromoteError

__all__ = [
    "PRIVATE",
    "SHARED",
    "Appender",
    "StateFileError",
    "Writer",
    "append_line",
    "atomic_write",
    "read_bytes",
    "read_text",
]

Writer = Callable[[Path, bytes], None]
"""How state files are written; tests pass one that fails like a full disk."""

PRIVATE = 0o600
"""Mode of promote's own state files: the owner only."""
SHARED = 0o666
"""Mode of files people share (workspace files): like any new file, 0666 less the umask."""


class StateFileError(PromoteError):
    """A file promote keeps cannot be written or read (exit 1)."""

    def __init__(
        self, path: Path, error: OSError, action: str = "write", consequence: str = ""
    ) -> None:
        reason = error.strerror or str(error)
        text = f"cannot {action} {path}: {reason}"
        if consequence:
            text += f"; {consequence}"
        super().__init__(
            text + "; check that the directory is writable and the disk has free space"
        )
        self.path = path
        self.errno = error.errno
        self.os_error = error
        """The failure itself, for callers that word their own message."""


def atomic_write(path: Path, data: bytes, *, mode: int = PRIVATE, dir_mode: int = 0o777) -> None:
    """Replace ``path`` with ``data`` in one durable step; missing parents are created.

    The new file is created with ``mode`` less the process umask, as ``open`` does
    (:data:`PRIVATE` 0600 by default; :data:`SHARED` gives what a plain ``open`` gives);
    parents with ``dir_mode`` less the umask. Raises :class:`StateFileError` on any OS
    failure; ``path`` then keeps its old content and no temp file is left behind.
    """
    directory = path.parent
    temp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=dir_mode)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as error:
        raise StateFileError(path, error) from None
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException as error:
        try:
            os.unlink(temp)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise StateFileError(path, error) from None
        raise
    try:
        _fsync_directory(directory)
    except OSError as error:
        raise StateFileError(
            path, error, consequence="it is written but may not survive a crash"
        ) from None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_text(path: Path) -> str | None:
    """The file's text, ``None`` when it does not exist; :class:`StateFileError` otherwise."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateFileError(path, error, "read") from None


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, ``None`` when it does not exist; :class:`StateFileError` otherwise."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateFileError(path, error, "read") from None


Appender = Callable[[Path, bytes], None]
"""How lines are appended to a log file; tests pass one that fails like a full disk."""


def append_line(path: Path, line: bytes, *, mode: int = PRIVATE) -> None:
    """Append ``line`` (one record ending in a newline) to ``path`` durably, in one
    ``os.write`` on an ``O_APPEND`` descriptor, then ``fsync``; missing parents are created.

    A file whose last line was cut off (a crash, a full disk) gets a newline first, in the
    same write, so the new line stands on its own. Raises :class:`StateFileError` when the
    line cannot be written whole; readers then find at most a torn last line.
    """
    if not line.endswith(b"\n"):
        raise ValueError("append_line takes one line ending in a newline")
    try:
        created = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, mode)
    except OSError as error:
        raise StateFileError(path, error) from None
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync(fd)
        if created:
            _fsync_directory(path.parent)
    except OSError as error:
        raise StateFileError(path, error) from None
    finally:
        os.close(fd)
