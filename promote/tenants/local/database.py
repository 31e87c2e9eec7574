"""The local tenant's SQLite file: schema and migration, private mode, WAL, one
``BEGIN IMMEDIATE`` transaction per write, errors for people (:class:`Database`)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from esv.conversions import TYPES
from esv.jsonfile import loads
from esv.objects import content_digest
from promote.errors import TenantError
from promote.tenants.base import (
    Capabilities,
)

__all__ = ["DB_NAME", "Database"]


DB_NAME = "tenant.sqlite3"
"""The state file's name inside the tenant's ``state_dir``."""


_SCHEMA_VERSION = 2
"""1: the first; 2: each config object's content digest (``config.digest``)."""


_TYPES = frozenset(TYPES)


_CHUNK = 500  # ids per IN (...) query, well under SQLite's bound-parameter limit


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE config (id TEXT PRIMARY KEY, json TEXT NOT NULL, digest TEXT);
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

_DIGEST_TRIGGER = """
CREATE TRIGGER config_digest_stale AFTER UPDATE OF json ON config
WHEN NEW.digest IS OLD.digest
BEGIN
    UPDATE config SET digest = NULL WHERE id = NEW.id;
END
"""
"""A ``json`` written without its digest (by hand, by an older tool) clears the digest, so
it is never trusted for content it does not describe."""

_TOKEN_TRIGGERS = [
    f"""
CREATE TRIGGER IF NOT EXISTS config_token_{event.lower()} AFTER {event} ON config
BEGIN
    UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'config_token';
END
"""
    for event in ("INSERT", "UPDATE", "DELETE")
]
"""``meta.config_token``: a new random value with every change of a config row, whoever
makes it (promote, a hand edit, another version: the triggers live in the file), in the
same transaction. Equal tokens mean equal config, which keys the cache of digests
(:meth:`ConfigObjects.config_digests`)."""


def _add_token(conn: sqlite3.Connection) -> None:
    """The config token and its triggers, when the file has none yet (files of schema 2
    made before them gain them when opened; the schema version does not change)."""
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) "
        "VALUES ('config_token', lower(hex(randomblob(16))))"
    )
    for trigger in _TOKEN_TRIGGERS:
        conn.execute(trigger)


_FIX_WRITABLE = (
    "make the directory and the file readable and writable by you (check permissions, a "
    "read-only mount, "
    "or the disk), or set tenant.path in the environment file to a writable place"
)


def _create_schema(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(_DIGEST_TRIGGER)
    _add_token(conn)


def _add_digests(conn: sqlite3.Connection) -> None:
    """Schema 1 to 2: the digest of every config object held."""
    conn.execute("ALTER TABLE config ADD COLUMN digest TEXT")
    conn.execute(_DIGEST_TRIGGER)
    rows = conn.execute("SELECT id, json FROM config").fetchall()
    conn.executemany(
        "UPDATE config SET digest = ? WHERE id = ?",
        [(content_digest(loads(text)), key) for key, text in rows],
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


class Database:
    """The tenant's database: opened on first use, created by the first write; the state every
    part of :class:`~promote.tenants.local.tenant.LocalTenant` shares."""

    env: str
    mutable: bool
    restart_seconds: float
    capabilities: Capabilities
    path: Path
    _state_dir: Path
    _clock: Callable[[], float]
    _busy_timeout: float
    _durable: bool
    _mutex: threading.RLock
    _conn: sqlite3.Connection | None
    _empty: sqlite3.Connection | None
    _closed: bool

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
                _create_schema(conn)
                conn.execute("INSERT INTO meta (key, value) VALUES ('env', ?)", (self.env,))
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            elif version == 1:
                _add_digests(conn)
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
            _add_token(conn)
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
            _create_schema(empty)
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
