"""The ``local`` tenant: an embedded environment in one SQLite file, with AIC's semantics.

State lives in ``state_dir / "tenant.sqlite3"`` (WAL journal, mode 0600: it holds ESV secret
values), created by the first write: until then the environment reads as empty and nothing is
created on disk (planning and ``status`` change nothing). Every public write is one
``BEGIN IMMEDIATE`` transaction, so a failure or a killed process leaves the previous state,
and concurrent processes wait (``busy_timeout``) instead of failing. AIC behaviour kept here:

- written ESVs are ``loaded: false`` until a restart completes;
- a secret is a list of versions; writing the latest version's value again adds no version;
- an immutable environment's config changes only by :meth:`LocalTenant.promote_from` (or
  :meth:`LocalTenant.rollback`), never by ``put_config``/``delete_config``;
- one promotion lock per environment; a stale lock is never broken silently
  (:meth:`LocalTenant.force_unlock` is an explicit user action);
- a promotion whose config references an ESV that is neither defined here nor defaulted is
  refused, listing every missing ESV;
- every promotion keeps a report and the previous values of what it changed, for rollback.
"""

from __future__ import annotations

import hmac
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from esv import Problem
from esv.conversions import TYPES
from esv.errors import MISSING_ESV
from esv.ids import is_valid_id
from esv.jsonfile import loads
from esv.references import index_references
from esv.secrets import SecretValue
from promote.errors import BlockedError, ImmutableError, LockedError, TenantError
from promote.tenants.base import (
    JSON,
    Capabilities,
    EsvWrite,
    LockState,
    PromotionReport,
    RestartStatus,
    SecretState,
    Tenant,
    VariableState,
)

__all__ = ["DB_NAME", "LOCAL_CAPABILITIES", "LocalTenant"]

DB_NAME = "tenant.sqlite3"
"""The state file's name inside the tenant's ``state_dir``."""
LOCAL_CAPABILITIES = Capabilities(builtin_email="outbox")
"""Everything AIC has; without ``external.email`` the built-in provider writes an outbox."""

_SCHEMA_VERSION = 1
_TYPES = frozenset(TYPES)
_CHUNK = 500  # ids per IN (...) query, well under SQLite's bound-parameter limit

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE config (id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE variables (
    id TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    type TEXT NOT NULL,
    loaded INTEGER NOT NULL,
    managed INTEGER NOT NULL,
    changed TEXT NOT NULL
);
CREATE TABLE secrets (
    id TEXT PRIMARY KEY,
    active_version INTEGER NOT NULL,
    loaded_version INTEGER,
    managed INTEGER NOT NULL,
    changed TEXT NOT NULL
);
CREATE TABLE secret_versions (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    value TEXT NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (secret_id, version)
);
CREATE TABLE restart (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    status TEXT NOT NULL,
    ready_at REAL NOT NULL
);
CREATE TABLE lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    promotion_id TEXT NOT NULL,
    locked_at TEXT NOT NULL
);
CREATE TABLE reports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    source TEXT,
    created TEXT NOT NULL,
    body TEXT NOT NULL,
    rolled_back INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE snapshots (
    report_id TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    object_id TEXT NOT NULL,
    json TEXT,
    PRIMARY KEY (report_id, object_id)
);
"""
# snapshots: the value each object had before that promotion; json NULL = it did not exist.


class LocalTenant:
    """An embedded tenant in ``state_dir / "tenant.sqlite3"``; see the module docstring.

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

    # -- opening and errors -------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        """The directory of the state file, created (mode 0700) when asked for: callers keep
        their own files next to the state (the sandbox's metadata, the built-in outbox).
        ``TenantError`` when it cannot be created."""
        try:
            self._state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise self._error(
                f"cannot create the state directory ({exc.strerror or exc})", _FIX_WRITABLE
            ) from None
        return self._state_dir

    def outbox_dir(self) -> Path:
        """Where the built-in email provider writes messages: ``state_dir / "outbox"``."""
        return self.state_dir / "outbox"

    def _open(self) -> sqlite3.Connection:
        try:
            self._state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            _create_private(self.path)
        except OSError as exc:
            raise self._error(
                f"cannot create the state file ({exc.strerror or exc})",
                "check that the directory exists and is writable by you, or set tenant.path "
                "in the environment file to a writable place",
            ) from None
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
                raise self._error("cannot switch the state file to WAL mode", _FIX_WRITABLE)
            conn.execute(f"PRAGMA synchronous = {'FULL' if self._durable else 'NORMAL'}")
            self._migrate(conn)
            _tighten(self.path)
            return conn
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise self._sqlite_error(exc, "open the state file") from None
        except TenantError:
            if conn is not None:
                conn.close()
            raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise self._error(
                        "the file is an SQLite database but not a promote state file",
                        "set tenant.path in the environment file to a directory of its own",
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO meta (key, value) VALUES ('env', ?)", (self.env,))
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            elif version != _SCHEMA_VERSION:
                raise self._error(
                    f"the state file has schema version {version}, this promote knows "
                    f"{_SCHEMA_VERSION}",
                    "use the promote version that wrote it",
                )
            row = conn.execute("SELECT value FROM meta WHERE key = 'env'").fetchone()
            if row is None or row[0] != self.env:
                owner = row[0] if row else "nothing"
                raise self._error(
                    f"the state file belongs to environment {owner!r}, not {self.env!r}",
                    "give each environment its own tenant.path",
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _error(self, what: str, fix: str) -> TenantError:
        return TenantError(f"local tenant state {self.path}: {what}; {fix}", env=self.env)

    def _sqlite_error(self, exc: sqlite3.Error, action: str) -> TenantError:
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc)
        if name.startswith("SQLITE_FULL") or "disk is full" in text:
            return self._error(
                f"the disk is full while trying to {action}; nothing was written",
                f"free space on the disk holding {self._state_dir}, then run again",
            )
        if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
            return self._error(f"cannot {action} ({text}); nothing was written", _FIX_WRITABLE)
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text:
            return self._error(
                f"the file is corrupt or not a promote state file ({text})",
                "move it aside (it may hold ESV secrets: keep it private or delete it) "
                "and run again to start this environment empty, or restore it from a backup",
            )
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return self._error(
                f"another process kept the state file busy for over {self._busy_timeout:g}s "
                f"while trying to {action}; nothing was written",
                "wait for the other promote process to finish, then run again",
            )
        if name.startswith("SQLITE_IOERR"):
            return self._error(
                f"input/output error while trying to {action} ({text}); nothing was written",
                "check the disk and the directory, then run again",
            )
        return self._error(f"failed to {action} ({text})", "run again; if it persists, report it")

    @property
    def _db(self) -> sqlite3.Connection:
        """The state file's connection, creating the file on first use (writes)."""
        if self._closed:
            raise self._error("the tenant is closed", "open it again")
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    @property
    def _exists(self) -> bool:
        """Whether the state file is open or exists (another process may have created it)."""
        return self._conn is not None or self.path.exists()

    def _reader(self) -> sqlite3.Connection:
        """The state file's connection; an empty in-memory one while it does not exist, so
        reading an environment never written creates nothing."""
        if self._closed or self._exists:
            return self._db
        if self._empty is None:
            empty = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    empty.execute(statement)
            self._empty = empty
        return self._empty

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One all-or-nothing write transaction, taken before reading what it decides on."""
        with self._mutex:
            conn = self._db
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._sqlite_error(exc, action) from None
            finally:
                _tighten(self.path)

    @contextmanager
    def _read(self, action: str) -> Iterator[sqlite3.Connection]:
        """A consistent read (one transaction, so WAL gives a single snapshot)."""
        with self._mutex:
            conn = self._reader()
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._sqlite_error(exc, action) from None

    def _now(self) -> str:
        return _iso(self._clock())

    # -- config -------------------------------------------------------------------------
    def list_config_ids(self) -> set[str]:
        """Ids of every config object this environment holds."""
        with self._read("read config ids") as conn:
            return {row[0] for row in conn.execute("SELECT id FROM config")}

    def read_config(self, ids: Collection[str]) -> dict[str, JSON]:
        """The given config objects as stored; ids not held are omitted."""
        with self._read("read config") as conn:
            return {key: loads(text) for key, text in _select_config(conn, ids).items()}

    def put_config(self, object_id: str, value: JSON) -> None:
        """Create or replace one config object; ``ImmutableError`` when immutable."""
        self._check_mutable(object_id, "write")
        text = self._encode(object_id, value)
        with self._write(f"write config {object_id}") as conn:
            conn.execute(
                "INSERT INTO config (id, json) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET json = excluded.json",
                (object_id, text),
            )

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

    # -- ESVs ---------------------------------------------------------------------------
    def list_variables(self) -> dict[str, VariableState]:
        """Every ESV variable with its value, expressionType and loaded flag."""
        with self._read("read variables") as conn:
            rows = conn.execute("SELECT id, value, type, loaded, managed FROM variables")
            return {
                row[0]: VariableState(
                    id=row[0],
                    value=row[1],
                    type=row[2],
                    loaded=bool(row[3]),
                    managed=bool(row[4]),
                )
                for row in rows
            }

    def list_secrets(self) -> dict[str, SecretState]:
        """Every ESV secret's active version and loaded flag; never values."""
        with self._read("read secrets") as conn:
            rows = conn.execute("SELECT id, active_version, loaded_version, managed FROM secrets")
            return {
                row[0]: SecretState(
                    id=row[0],
                    version=row[1],
                    loaded=row[2] == row[1],
                    managed=bool(row[3]),
                )
                for row in rows
            }

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

    # -- restart ------------------------------------------------------------------------
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

    # -- lock ---------------------------------------------------------------------------
    def lock(self, holder: str) -> str:
        """Take the promotion lock for ``holder``; returns its promotion id.

        Reentrant: the same holder gets the same id back. Held by another holder:
        ``LockedError``. A lock is never broken by age; see :meth:`force_unlock`.
        """
        with self._write("take the promotion lock") as conn:
            row = conn.execute("SELECT holder, promotion_id, locked_at FROM lock").fetchone()
            if row is not None:
                if row[0] == holder:
                    return str(row[1])
                raise LockedError(
                    self.env,
                    row[0],
                    f"since {row[2]}; if that promotion is no longer running, release the "
                    "lock explicitly (force unlock)",
                )
            promotion_id = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO lock (id, holder, promotion_id, locked_at) VALUES (1, ?, ?, ?)",
                (holder, promotion_id, self._now()),
            )
            return promotion_id

    def unlock(self, holder: str) -> None:
        """Release ``holder``'s lock (not locked: no-op; another holder's: ``LockedError``)."""
        with self._write("release the promotion lock") as conn:
            row = conn.execute("SELECT holder FROM lock").fetchone()
            if row is None:
                return
            if row[0] != holder:
                raise LockedError(self.env, row[0], f"{holder} cannot release another's lock")
            conn.execute("DELETE FROM lock")

    def force_unlock(self) -> LockState:
        """Break the lock whoever holds it (an explicit user action); returns what it was."""
        with self._write("break the promotion lock") as conn:
            row = conn.execute("SELECT holder FROM lock").fetchone()
            conn.execute("DELETE FROM lock")
        return LockState(locked=row is not None, holder=row[0] if row else None)

    def lock_state(self) -> LockState:
        """Whether the promotion lock is held, and by whom."""
        with self._read("read the promotion lock") as conn:
            row = conn.execute("SELECT holder FROM lock").fetchone()
        return LockState(locked=row is not None, holder=row[0] if row else None)

    @contextmanager
    def _locked(self, holder: str) -> Iterator[str]:
        """Hold the lock for the block; release it after only if this block took it."""
        before = self.lock_state()
        promotion_id = self.lock(holder)
        try:
            yield promotion_id
        finally:
            if not (before.locked and before.holder == holder):
                self.unlock(holder)

    # -- promotion ----------------------------------------------------------------------
    def promote_from(
        self, lower: Tenant, *, holder: str, description: str, dry_run: bool = False
    ) -> PromotionReport:
        """Make this environment's config equal ``lower``'s, under the promotion lock.

        Refused with ``BlockedError`` (nothing written, dry run or not) when the incoming
        config references ESVs neither defined here nor defaulted; lists all of them with
        object and JSON path. Otherwise replaces the config, keeps the previous values of what
        changed and the report, in one transaction. ``dry_run`` computes the report only.
        The lock is reentrant: a holder that locked before keeps its lock afterwards.
        """
        if lower is self or lower.env == self.env:
            raise BlockedError(f"cannot promote environment {self.env!r} from itself")
        with self._locked(holder) as promotion_id:
            incoming = lower.read_config(lower.list_config_ids())
            texts = {key: self._encode(key, value) for key, value in incoming.items()}
            extra = {"description": description, "holder": holder, "promotion_id": promotion_id}
            if dry_run:
                with self._read("check a promotion") as conn:
                    self._check_missing_esvs(conn, incoming, lower.env)
                    current = _select_all_config(conn)
                return self._promotion_report(current, texts, lower.env, extra, dry_run=True)
            with self._write("promote") as conn:
                self._check_missing_esvs(conn, incoming, lower.env)
                current = _select_all_config(conn)
                report = self._promotion_report(current, texts, lower.env, extra, dry_run=False)
                self._store_report(conn, report)
                conn.executemany(
                    "INSERT INTO snapshots (report_id, object_id, json) VALUES (?, ?, ?)",
                    [
                        (report.id, key, current.get(key))
                        for key in (*report.added, *report.modified, *report.deleted)
                    ],
                )
                _replace_config(
                    conn,
                    {key: texts[key] for key in (*report.added, *report.modified)},
                    report.deleted,
                )
                return report

    def _promotion_report(
        self,
        current: Mapping[str, str],
        incoming: Mapping[str, str],
        source: str,
        extra: Mapping[str, JSON],
        *,
        dry_run: bool,
    ) -> PromotionReport:
        added, modified, deleted = _changes(current, incoming)
        return PromotionReport(
            id=str(uuid.uuid4()),
            type="promotion",
            env=self.env,
            source=source,
            created=self._now(),
            added=added,
            modified=modified,
            deleted=deleted,
            dry_run=dry_run,
            extra=dict(extra),
        )

    def _check_missing_esvs(
        self, conn: sqlite3.Connection, incoming: Mapping[str, JSON], source: str
    ) -> None:
        defined = {row[0] for row in conn.execute("SELECT id FROM variables")}
        defined |= {row[0] for row in conn.execute("SELECT id FROM secrets")}
        missing = [
            ref
            for ref in index_references(incoming)
            if not ref.defaulted and ref.esv_id not in defined
        ]
        if not missing:
            return
        ids = sorted({ref.esv_id for ref in missing})
        problems = [
            Problem(
                location=ref.object_id,
                path=ref.path,
                message=f"{ref.esv_id} is not defined in {self.env}",
                esv_id=ref.esv_id,
                hint=f"define it in the {self.env} environment file, or give the placeholder "
                "a default",
                code=MISSING_ESV,
            )
            for ref in missing
        ]
        raise BlockedError(
            f"{self.env}: cannot promote from {source}: {len(ids)} ESV(s) missing "
            f"({', '.join(ids)}); nothing was changed",
            problems,
        )

    def rollback(self, *, holder: str) -> PromotionReport:
        """Restore what the last promotion not yet rolled back changed; records a report.

        Nothing to roll back: ``BlockedError``. Takes the lock like a promotion.
        """
        with self._locked(holder), self._write("roll back") as conn:
            row = conn.execute(
                "SELECT id, source FROM reports WHERE type = 'promotion' AND rolled_back = 0 "
                "ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise BlockedError(
                    f"{self.env}: nothing to roll back: no promotion into this environment "
                    "that has not been rolled back already"
                )
            promotion, source = row
            previous: dict[str, str | None] = dict(
                conn.execute(
                    "SELECT object_id, json FROM snapshots WHERE report_id = ?", (promotion,)
                ).fetchall()
            )
            current = _select_config(conn, previous)
            restore = {key: text for key, text in previous.items() if text is not None}
            added = tuple(sorted(restore.keys() - current.keys()))
            modified = tuple(
                sorted(
                    key
                    for key in restore.keys() & current.keys()
                    if _canonical(restore[key]) != _canonical(current[key])
                )
            )
            deleted = tuple(sorted(current.keys() - restore.keys()))
            report = PromotionReport(
                id=str(uuid.uuid4()),
                type="rollback",
                env=self.env,
                source=source,
                created=self._now(),
                added=added,
                modified=modified,
                deleted=deleted,
                extra={"holder": holder, "rolled_back": promotion},
            )
            self._store_report(conn, report)
            conn.execute("UPDATE reports SET rolled_back = 1 WHERE id = ?", (promotion,))
            _replace_config(conn, {key: restore[key] for key in (*added, *modified)}, deleted)
            return report

    def _store_report(self, conn: sqlite3.Connection, report: PromotionReport) -> None:
        body = {
            "added": list(report.added),
            "modified": list(report.modified),
            "deleted": list(report.deleted),
            "dry_run": report.dry_run,
            "missing_esvs": list(report.missing_esvs),
            "extra": dict(report.extra),
        }
        conn.execute(
            "INSERT INTO reports (id, type, source, created, body) VALUES (?, ?, ?, ?, ?)",
            (report.id, report.type, report.source, report.created, json.dumps(body)),
        )

    def reports(self) -> list[PromotionReport]:
        """Every promotion and rollback report, oldest first."""
        with self._read("read reports") as conn:
            rows = conn.execute(
                "SELECT id, type, source, created, body FROM reports ORDER BY seq"
            ).fetchall()
        result = []
        for report_id, kind, source, created, body_text in rows:
            body: dict[str, Any] = json.loads(body_text)
            result.append(
                PromotionReport(
                    id=report_id,
                    type=kind,
                    env=self.env,
                    source=source,
                    created=created,
                    added=tuple(body["added"]),
                    modified=tuple(body["modified"]),
                    deleted=tuple(body["deleted"]),
                    dry_run=bool(body["dry_run"]),
                    missing_esvs=tuple(body["missing_esvs"]),
                    extra=body["extra"],
                )
            )
        return result

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        with self._mutex:
            self._closed = True
            for conn in (self._conn, self._empty):
                if conn is not None:
                    conn.close()
            self._conn = self._empty = None


_FIX_WRITABLE = (
    "make the directory and the file readable and writable by you (check permissions, a "
    "read-only mount, "
    "or the disk), or set tenant.path in the environment file to a writable place"
)


def _create_private(path: Path) -> None:
    """Create the state file empty with mode 0600 before SQLite opens it (no umask race)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _tighten(path: Path) -> None:
    """Make the state file and its WAL/SHM files private (0600) if they are not."""
    for candidate in (path, *_sidecars(path)):
        try:
            if candidate.stat().st_mode & 0o077:
                os.chmod(candidate, 0o600)
        except OSError:
            pass  # missing sidecar, or not ours to change: SQLite copies the db's mode


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _iso(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _same(stored: str, value: str) -> bool:
    """Constant-time comparison of two secret texts."""
    return hmac.compare_digest(stored.encode(), value.encode())


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
        "INSERT INTO config (id, json) VALUES (?, ?) "
        "ON CONFLICT (id) DO UPDATE SET json = excluded.json",
        upserts.items(),
    )
