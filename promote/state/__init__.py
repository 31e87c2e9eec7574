"""Promote's state: the run lock, run journals, history, records of what was applied and
the fingerprint key, behind one interface (:class:`StateStore`) with a local and an S3
backend. ``promote.state.s3`` (boto3) is imported only when a workspace configures it."""

from __future__ import annotations

from promote.state.base import (
    ConflictError,
    HistoryEntry,
    LockInfo,
    StateStore,
    StateStoreError,
    Versioned,
    new_lock,
)
from promote.state.local import LocalStore
from promote.state.settings import StateSettings

__all__ = [
    "ConflictError",
    "HistoryEntry",
    "LocalStore",
    "LockInfo",
    "StateSettings",
    "StateStore",
    "StateStoreError",
    "Versioned",
    "new_lock",
]
