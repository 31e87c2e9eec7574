"""The built-in email provider of a ``local`` tenant: an outbox of ``.eml`` files.

It behaves like AIC's built-in SMTP server: every message goes out from
``noreply@<env>.local`` whatever sender it had, at most 10 messages a minute (counted across
processes: send times live in ``outbox/sent.sqlite3``, taken under a write lock), and
international addresses (any non-ASCII character in the local part or the domain; a
display name may be anything) are refused. Each message is one file,
``<outbox>/<UTC time>-<id>.eml``, written atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from pathlib import Path

from promote.email.errors import EmailRateLimitError, EmailRejectedError
from promote.files import atomic_write

__all__ = ["RATE_LIMIT", "RATE_WINDOW", "Outbox"]

RATE_LIMIT = 10
"""Messages the built-in provider accepts per :data:`RATE_WINDOW`."""
RATE_WINDOW = 60.0
"""Seconds."""


class Outbox:
    """The local built-in provider of environment ``env``, writing into ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        env: str,
        clock: Callable[[], float] = time.time,
        limit: int = RATE_LIMIT,
        window: float = RATE_WINDOW,
    ) -> None:
        self.directory = directory
        self.env = env
        self.sender = f"noreply@{env}.local"
        self._clock = clock
        self._limit = limit
        self._window = window

    def describe(self) -> str:
        """``built-in outbox .promote/tenants/dev/outbox``."""
        return f"built-in provider (outbox {self.directory})"

    def deliver(self, message: EmailMessage) -> Path:
        """Write ``message`` (sender replaced) as one ``.eml`` file; returns its path.

        Raises :class:`EmailRateLimitError` when 10 messages went out in the last minute and
        :class:`EmailRejectedError` for international addresses.
        """
        for header in ("To", "Cc", "Bcc"):
            addresses = getattr(message.get(header), "addresses", ())
            if not all(_ascii(address) for address in addresses):
                raise EmailRejectedError(
                    self.describe(),
                    f"the built-in provider of {self.env} does not support international "
                    f"(non-ASCII) addresses: {message[header]}",
                    hint="configure external.email with an SMTP server that supports SMTPUTF8",
                )
        del message["From"]
        message["From"] = self.sender
        now = self._clock()
        with self._ledger() as ledger:
            recent = ledger.execute(
                "SELECT COUNT(*), MIN(at) FROM sent WHERE at > ?", (now - self._window,)
            ).fetchone()
            if recent[0] >= self._limit:
                wait = max(0.0, recent[1] + self._window - now)
                raise EmailRateLimitError(
                    self.describe(),
                    f"the built-in provider sends at most {self._limit} messages a minute; "
                    f"try again in {wait:.0f} s",
                )
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
            path = self.directory / f"{stamp}-{uuid.uuid4().hex[:12]}.eml"
            atomic_write(path, message.as_bytes())
            ledger.execute("DELETE FROM sent WHERE at <= ?", (now - self._window,))
            ledger.execute("INSERT INTO sent (at) VALUES (?)", (now,))
        return path

    def messages(self) -> list[Path]:
        """The outbox's ``.eml`` files, oldest first."""
        return sorted(self.directory.glob("*.eml")) if self.directory.is_dir() else []

    @contextlib.contextmanager
    def _ledger(self) -> Iterator[sqlite3.Connection]:
        """The send-time table under an exclusive write lock; commits on success."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        connection = sqlite3.connect(
            self.directory / "sent.sqlite3", timeout=30.0, isolation_level=None
        )
        try:
            connection.execute("CREATE TABLE IF NOT EXISTS sent (at REAL NOT NULL)")
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()


def _ascii(address: HeaderAddress) -> bool:
    """The platform's rule: the address itself (not its display name) is all ASCII."""
    return address.username.isascii() and address.domain.isascii()
