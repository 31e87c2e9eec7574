"""Restarts of the local tenant: ``restart_seconds`` long, then every ESV written is loaded."""

from __future__ import annotations

import sqlite3

from promote.tenants.base import (
    RestartStatus,
)
from promote.tenants.local.database import Database

__all__ = ["Restarts"]


class Restarts(Database):
    """Restarts: ``restart``, ``restart_status``."""

    def restart(self) -> None:
        """Start a simulated restart that completes ``restart_seconds`` from now."""
        with self._write("start a restart") as conn:
            self._settle_restart(conn)
            conn.execute(
                "INSERT INTO restart (id, status, ready_at) VALUES (1, 'restarting', ?) "
                "ON CONFLICT (id) DO UPDATE SET status = 'restarting', "
                "ready_at = excluded.ready_at",
                (self._clock() + self.restart_seconds,),
            )

    def restart_status(self) -> RestartStatus:
        """``restarting`` until the restart's time is up; then every ESV is loaded: ``ready``."""
        if not self._closed and not self._exists:
            return "ready"  # never written: nothing to load, and nothing is created
        with self._write("read the restart status") as conn:
            self._settle_restart(conn)
            return "restarting" if self._restarting(conn) else "ready"

    def _restarting(self, conn: sqlite3.Connection) -> bool:
        row = conn.execute("SELECT status FROM restart WHERE id = 1").fetchone()
        return row is not None and row[0] == "restarting"

    def _settle_restart(self, conn: sqlite3.Connection) -> None:
        """Complete a due restart: the runtime now has every ESV's current value."""
        row = conn.execute("SELECT status, ready_at FROM restart WHERE id = 1").fetchone()
        if row is None or row[0] != "restarting" or self._clock() < row[1]:
            return
        conn.execute("UPDATE variables SET loaded = 1 WHERE loaded = 0")
        conn.execute(
            "UPDATE secrets SET loaded_version = active_version "
            "WHERE loaded_version IS NULL OR loaded_version != active_version"
        )
        conn.execute("UPDATE restart SET status = 'ready' WHERE id = 1")
