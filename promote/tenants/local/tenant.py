"""The ``local`` tenant (:class:`LocalTenant`), composed of its parts."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from promote.tenants.base import (
    Capabilities,
)
from promote.tenants.local.database import DB_NAME
from promote.tenants.local.esvs import Esvs
from promote.tenants.local.promotion import Promotions

__all__ = ["LOCAL_CAPABILITIES", "LocalTenant"]


LOCAL_CAPABILITIES = Capabilities(builtin_email="outbox", config_digests=True)
"""Everything AIC has; without ``external.email`` the built-in provider writes an outbox;
it keeps each config object's digest, so a plan reads only the objects that differ."""


class LocalTenant(Esvs, Promotions):
    """An embedded tenant in ``state_dir / "tenant.sqlite3"``; see the package docstring.

    ``restart_seconds`` is how long a simulated restart takes; ``clock`` gives the time (seconds
    since the epoch) for restart completion and timestamps. ``busy_timeout`` is how long a write
    waits for another process holding the state file before failing with ``TenantError``.
    ``durable``: every commit is fsynced (``synchronous = FULL``); the sandbox, which stands
    for a remote tenant and whose state is thrown away, turns it off so that its own disk
    writes do not slow down what it measures (commits stay atomic: WAL).
    """

    def __init__(
        self,
        env: str,
        state_dir: Path,
        *,
        mutable: bool,
        restart_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 30.0,
        durable: bool = True,
    ) -> None:
        self.env = env
        self._durable = durable
        self._state_dir = Path(state_dir)
        self.mutable = mutable
        self.restart_seconds = float(restart_seconds)
        self.capabilities = LOCAL_CAPABILITIES
        self.path = self._state_dir / DB_NAME
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._mutex = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._empty: sqlite3.Connection | None = None
        self._closed = False
        if self.path.exists():
            self._conn = self._open()  # an existing file is checked (and tightened) at once

    def __repr__(self) -> str:
        return f"LocalTenant(env={self.env!r}, path={str(self.path)!r}, mutable={self.mutable})"

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        with self._mutex:
            self._closed = True
            for conn in (self._conn, self._empty):
                if conn is not None:
                    conn.close()
            self._conn = self._empty = None
