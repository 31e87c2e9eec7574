"""Files under ``.promote/`` written atomically: a temp file, fsync, then ``os.replace``.

A failure (read-only directory, disk full) raises :class:`StateFileError` naming the file and
the cause; the previous content of the file is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from promote.errors import PromoteError

__all__ = ["StateFileError", "Writer", "atomic_write", "read_text"]

Writer = Callable[[Path, bytes], None]
"""How state files are written; tests pass one that fails like a full disk."""


class StateFileError(PromoteError):
    """A file under ``.promote/`` cannot be written or read (exit 1)."""

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


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step (mode 0600; parents created).

    Raises :class:`StateFileError` on any OS failure; ``path`` then keeps its old content.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise StateFileError(path, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as error:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise StateFileError(path, error) from None


def read_text(path: Path) -> str | None:
    """The file's text, ``None`` when it does not exist; :class:`StateFileError` otherwise."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateFileError(path, error, "read") from None
