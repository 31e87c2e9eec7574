"""Kept for importers of the old name: the atomic writer lives in :mod:`promote.files`."""

from __future__ import annotations

from promote.files import StateFileError, Writer, atomic_write, read_text

__all__ = ["StateFileError", "Writer", "atomic_write", "read_text"]
