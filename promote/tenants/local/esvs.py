"""ESVs of the local tenant: variables (loaded only after a restart) and secrets as
versions (the same value again adds no version); secrets compared in constant time."""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Sequence

from esv.ids import is_valid_id
from esv.secrets import SecretValue
from promote.errors import TenantError
from promote.tenants.base import (
    EsvWrite,
    SecretState,
    VariableState,
)
from promote.tenants.local.database import _TYPES
from promote.tenants.local.restart import Restarts

__all__ = ["Esvs"]


def _same(stored: str, value: str) -> bool:
    """Constant-time comparison of two secret texts."""
    return hmac.compare_digest(stored.encode(), value.encode())


class Esvs(Restarts):
    """ESVs: ``list_variables``, ``list_secrets``, one of them by id (``variable``,
    ``secret``: what the sandbox's API reads per request), ``secret_matches``, ``write_esvs``
    (a write settles a finished restart first, so it builds on :class:`Restarts`)."""

    def list_variables(self) -> dict[str, VariableState]:
        """Every ESV variable with its value, expressionType and loaded flag."""
        return {state.id: state for state in self._variables("")}

    def variable(self, esv_id: str) -> VariableState | None:
        """One variable (``None``: absent): one indexed read, whatever the tenant holds."""
        found = self._variables(" WHERE id = ?", esv_id)
        return found[0] if found else None

    def list_secrets(self) -> dict[str, SecretState]:
        """Every ESV secret's active version and loaded flag; never values."""
        return {state.id: state for state in self._secrets("")}

    def secret(self, esv_id: str) -> SecretState | None:
        """One secret's state (``None``: absent); never its value."""
        found = self._secrets(" WHERE id = ?", esv_id)
        return found[0] if found else None

    def _variables(self, where: str, *params: str) -> list[VariableState]:
        with self._read("read variables") as conn:
            rows = conn.execute(
                "SELECT id, value, type, loaded, managed FROM variables" + where, params
            )
            return [
                VariableState(
                    id=row[0],
                    value=row[1],
                    type=row[2],
                    loaded=bool(row[3]),
                    managed=bool(row[4]),
                )
                for row in rows
            ]

    def _secrets(self, where: str, *params: str) -> list[SecretState]:
        with self._read("read secrets") as conn:
            rows = conn.execute(
                "SELECT id, active_version, loaded_version, managed FROM secrets" + where, params
            )
            return [
                SecretState(
                    id=row[0],
                    version=row[1],
                    loaded=row[2] == row[1],
                    managed=bool(row[3]),
                )
                for row in rows
            ]

    def secret_matches(self, esv_id: str, value: SecretValue) -> bool | None:
        """Whether the secret's active version holds ``value`` (False when it is absent)."""
        with self._read(f"read secret {esv_id}") as conn:
            row = conn.execute(
                "SELECT v.value FROM secrets s JOIN secret_versions v "
                "ON v.secret_id = s.id AND v.version = s.active_version WHERE s.id = ?",
                (esv_id,),
            ).fetchone()
        if row is None:
            return False
        return _same(row[0], value.reveal())

    def write_esvs(self, writes: Sequence[EsvWrite]) -> None:
        """Apply every write in one transaction: all of them or none.

        Variables upsert (``loaded`` false after any write); a secret gets a new version only
        when the value differs from its latest; deletes remove the ESV (absent: no-op). Refused
        while a restart is still running, as AIC refuses ESV changes then.
        """
        problems = self._check_writes(writes)
        if problems:
            raise TenantError(
                f"{len(problems)} invalid ESV write(s); nothing was written: "
                + "; ".join(problems),
                env=self.env,
            )
        with self._write("write ESVs") as conn:
            self._settle_restart(conn)
            if self._restarting(conn):
                raise TenantError(
                    "a restart is still loading ESVs; nothing was written; wait until "
                    "its status is ready, then write again",
                    env=self.env,
                )
            now = self._now()
            # deletes first, so one batch can turn a variable into a secret (or back)
            for write in sorted(writes, key=lambda w: w.action != "delete"):
                if write.kind == "variable":
                    self._write_variable(conn, write, now)
                else:
                    self._write_secret(conn, write, now)

    def _check_writes(self, writes: Sequence[EsvWrite]) -> list[str]:
        problems: list[str] = []
        kinds: dict[str, str] = {}
        for write in writes:
            if not is_valid_id(write.id):
                problems.append(f"{write.id!r} is not a valid ESV id (^esv-[a-z0-9_-]{{1,124}}$)")
            if write.kind not in ("variable", "secret"):
                problems.append(f"{write.id}: unknown kind {write.kind!r}")
            elif write.action != "delete" and kinds.setdefault(write.id, write.kind) != write.kind:
                problems.append(f"{write.id}: written both as a variable and as a secret")
            if write.kind == "variable" and write.action != "delete" and write.type not in _TYPES:
                problems.append(
                    f"{write.id}: {write.type!r} is not an expressionType "
                    f"({', '.join(sorted(_TYPES))})"
                )
            if write.action not in ("add", "modify", "delete"):
                problems.append(f"{write.id}: unknown action {write.action!r}")
            elif write.action != "delete" and write.value is None:
                problems.append(f"{write.id}: {write.action} without a value")
            if write.kind == "variable" and isinstance(write.value, SecretValue):
                problems.append(f"{write.id}: a secret value cannot be written as a variable")
        return problems

    def _write_variable(self, conn: sqlite3.Connection, write: EsvWrite, now: str) -> None:
        if write.action == "delete":
            conn.execute("DELETE FROM variables WHERE id = ?", (write.id,))
            return
        self._refuse_kind_clash(conn, write.id, "secrets", "a secret")
        conn.execute(
            "INSERT INTO variables (id, value, type, loaded, managed, changed) "
            "VALUES (?, ?, ?, 0, 1, ?) ON CONFLICT (id) DO UPDATE SET value = excluded.value, "
            "type = excluded.type, loaded = 0, changed = excluded.changed",
            (write.id, str(write.value), write.type, now),
        )

    def _write_secret(self, conn: sqlite3.Connection, write: EsvWrite, now: str) -> None:
        if write.action == "delete":
            conn.execute("DELETE FROM secrets WHERE id = ?", (write.id,))
            return
        self._refuse_kind_clash(conn, write.id, "variables", "a variable")
        value = write.value.reveal() if isinstance(write.value, SecretValue) else str(write.value)
        row = conn.execute(
            "SELECT s.active_version, v.value FROM secrets s JOIN secret_versions v "
            "ON v.secret_id = s.id AND v.version = s.active_version WHERE s.id = ?",
            (write.id,),
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO secrets (id, active_version, loaded_version, managed, changed) "
                "VALUES (?, 1, NULL, 1, ?)",
                (write.id, now),
            )
            version = 1
        elif _same(row[1], value):
            return  # AIC: a new version must differ from the latest; same value, no change
        else:
            version = row[0] + 1
            conn.execute(
                "UPDATE secrets SET active_version = ?, changed = ? WHERE id = ?",
                (version, now, write.id),
            )
        conn.execute(
            "INSERT INTO secret_versions (secret_id, version, value, created, status) "
            "VALUES (?, ?, ?, ?, 'ENABLED')",
            (write.id, version, value, now),
        )

    def _refuse_kind_clash(
        self, conn: sqlite3.Connection, esv_id: str, table: str, noun: str
    ) -> None:
        if conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (esv_id,)).fetchone():
            raise TenantError(
                f"{esv_id} already exists here as {noun}; a variable and a secret cannot share "
                "an id; nothing was written (delete the other one first)",
                env=self.env,
            )
