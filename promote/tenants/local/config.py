"""Config objects of the local tenant: read, and written directly only where the environment
is mutable (AIC semantics: otherwise only by promotion)."""

from __future__ import annotations

import contextlib
import json
import marshal
import sqlite3
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import cast

from esv.jsonfile import loads
from esv.objects import DigestMap, content_digest, digest_of_set
from promote.errors import ImmutableError, TenantError
from promote.files import StateFileError, atomic_write
from promote.tenants.base import (
    JSON,
)
from promote.tenants.local.database import _CHUNK, Database

__all__ = ["ConfigObjects"]

_DIGESTS_FORMAT = "promote.tenant-digests/2"


def _canonical(text: str) -> str:
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def _changes(
    current: Mapping[str, str], wanted: Mapping[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(added, modified, deleted) ids turning ``current`` into ``wanted`` (JSON texts)."""
    added = tuple(sorted(wanted.keys() - current.keys()))
    deleted = tuple(sorted(current.keys() - wanted.keys()))
    modified = tuple(
        sorted(
            key
            for key in wanted.keys() & current.keys()
            if wanted[key] != current[key] and _canonical(wanted[key]) != _canonical(current[key])
        )
    )
    return added, modified, deleted


def _select_all_config(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT id, json FROM config").fetchall())


def _select_config(conn: sqlite3.Connection, ids: Collection[str]) -> dict[str, str]:
    wanted = list(dict.fromkeys(ids))
    result: dict[str, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        result.update(
            conn.execute(f"SELECT id, json FROM config WHERE id IN ({marks})", chunk).fetchall()
        )
    return result


def _replace_config(
    conn: sqlite3.Connection, upserts: Mapping[str, str], deletes: Collection[str]
) -> None:
    conn.executemany("DELETE FROM config WHERE id = ?", [(key,) for key in deletes])
    conn.executemany(
        _UPSERT, [(key, text, content_digest(loads(text))) for key, text in upserts.items()]
    )


_UPSERT = (
    "INSERT INTO config (id, json, digest) VALUES (?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET json = excluded.json, digest = excluded.digest"
)
"""Each object is stored with its content digest; a change of ``json`` alone (someone
editing the file by hand) clears the digest (a trigger), and it is made again when read."""


class ConfigObjects(Database):
    """Config objects: ``list_config_ids``, ``read_config``, ``config_digests``,
    ``put_config``, ``delete_config``."""

    def list_config_ids(self) -> set[str]:
        """Ids of every config object this environment holds."""
        with self._read("read config ids") as conn:
            return {row[0] for row in conn.execute("SELECT id FROM config")}

    def read_config(self, ids: Collection[str]) -> dict[str, JSON]:
        """The given config objects as stored; ids not held are omitted."""
        with self._read("read config") as conn:
            return {key: loads(text) for key, text in _select_config(conn, ids).items()}

    def config_digests(self) -> dict[str, str]:
        """Object id -> content digest of every config object held (one snapshot).

        Kept beside the state file with their digest of all (a :class:`DigestMap`) and
        the config token they were read at (``meta.config_token``, new with every change):
        while the token is the same, they are read from there, a fifth of the cost of
        20,000 rows."""
        with self._read("read config digests") as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'config_token'").fetchone()
            token = row[0] if row is not None and self._exists else None
            kept = self._kept_digests(token)
            if kept is not None:
                return kept
            found: dict[str, str | None] = dict(
                conn.execute("SELECT id, digest FROM config ORDER BY id")
            )
            stale = [key for key, digest in found.items() if digest is None]
            texts = _select_config(conn, stale) if stale else {}
        for key in stale:
            found[key] = content_digest(loads(texts[key]))
        digests = DigestMap(cast(dict[str, str], found))
        if token is not None:
            digests.set_digest = digest_of_set(digests)
            self._keep_digests(token, digests)
        return digests

    def _kept_digests(self, token: str | None) -> DigestMap | None:
        if token is None:
            return None
        try:
            data = marshal.loads(self._digests_path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if isinstance(data, tuple) and len(data) == 4 and data[:2] == (_DIGESTS_FORMAT, token):
            digests, set_digest = data[2:]
            if isinstance(digests, dict) and isinstance(set_digest, str):
                return DigestMap(digests, set_digest)
        return None

    def _keep_digests(self, token: str, digests: DigestMap) -> None:
        # Only a shortcut: when it cannot be written, the next read asks the file again.
        kept = (_DIGESTS_FORMAT, token, dict(digests), digests.set_digest)
        with contextlib.suppress(StateFileError):
            atomic_write(self._digests_path, marshal.dumps(kept))

    @property
    def _digests_path(self) -> Path:
        return self.path.with_name(self.path.name + "-digests")

    def put_config(self, object_id: str, value: JSON) -> None:
        """Create or replace one config object; ``ImmutableError`` when immutable."""
        self._check_mutable(object_id, "write")
        text = self._encode(object_id, value)
        with self._write(f"write config {object_id}") as conn:
            conn.execute(_UPSERT, (object_id, text, content_digest(value)))

    def delete_config(self, object_id: str) -> None:
        """Delete one config object (absent: no-op); ``ImmutableError`` when immutable."""
        self._check_mutable(object_id, "delete")
        with self._write(f"delete config {object_id}") as conn:
            conn.execute("DELETE FROM config WHERE id = ?", (object_id,))

    def reconcile_write_only(self, object_id: str, desired: JSON, current: JSON) -> JSON:
        """The local tenant returns everything it stores: ``current`` unchanged."""
        return current

    def _check_mutable(self, object_id: str, verb: str) -> None:
        if not self.mutable:
            raise ImmutableError(
                f"cannot {verb} config object {object_id!r} directly: this environment is "
                "immutable; its config changes only by promotion from the stage below "
                "(run `promote run --to <env>`)",
                env=self.env,
            )

    def _encode(self, object_id: str, value: JSON) -> str:
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TenantError(
                f"config object {object_id!r} is not plain JSON ({exc}); nothing was written",
                env=self.env,
            ) from None
