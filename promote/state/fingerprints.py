"""Keyed secret fingerprints: how promote knows whether a write-only secret must be written
again without ever storing something a guessed value could be tested against (SPEC 4.4).

A fingerprint is ``fp2:<key id>:<HMAC-SHA256 hex>``, keyed with the workspace's fingerprint
key: ``PROMOTE_FINGERPRINT_KEY`` (any text of at least 16 characters) or, when that is unset,
the key the state store creates on first use. The key id (12 hex characters of an HMAC of a
constant) tells which key made a fingerprint and reveals nothing of the key. A fingerprint
made with another key, or an older unkeyed one, cannot be compared: :meth:`matches` says
``None`` and the plan lists that secret as to be rewritten.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Mapping

from esv.secrets import SecretValue
from promote.errors import BlockedError
from promote.state.base import StateStore

__all__ = ["KEY_VARIABLE", "MIN_KEY_CHARS", "PREFIX", "Fingerprints", "fingerprints_for"]

KEY_VARIABLE = "PROMOTE_FINGERPRINT_KEY"
MIN_KEY_CHARS = 16
PREFIX = "fp2"
_ID_LABEL = b"promote fingerprint key id"


KeySource = Callable[[bool], bytes | None]
"""Returns the key; with ``True`` creates it when there is none yet (else ``None``)."""


class Fingerprints:
    """Makes and checks keyed fingerprints. The key is read on first use and created only by
    :meth:`of` (writing a secret): planning and comparing never write state, so a plan can
    run with read-only access to the store."""

    def __init__(self, key: KeySource) -> None:
        self._source = key
        self._key: bytes | None = None
        self._mutex = threading.Lock()

    @classmethod
    def ephemeral(cls) -> Fingerprints:
        """A random key of this process only: for tenants opened without a workspace, whose
        fingerprints are then comparable only within the process (others are rewritten)."""
        return cls(lambda create: _PROCESS_KEY)

    def _get(self, *, create: bool) -> bytes | None:
        with self._mutex:
            if self._key is None:
                self._key = self._source(create)
            return self._key

    def _make(self, key: bytes, value: SecretValue | str) -> str:
        secret = value if isinstance(value, SecretValue) else SecretValue(value)
        key_id = hmac.new(key, _ID_LABEL, hashlib.sha256).hexdigest()[:12]
        return f"{PREFIX}:{key_id}:{secret.keyed_digest(key)}"

    def of(self, value: SecretValue | str) -> str:
        """``fp2:<key id>:<hmac>`` of ``value`` (the key is created if there is none)."""
        key = self._get(create=True)
        assert key is not None
        return self._make(key, value)

    def peek(self, value: SecretValue | str) -> str | None:
        """:meth:`of` when a key exists already; ``None`` otherwise (nothing is created)."""
        key = self._get(create=False)
        return None if key is None else self._make(key, value)

    def matches(self, stored: str, value: SecretValue | str) -> bool | None:
        """Whether ``stored`` is the fingerprint of ``value``; ``None`` when it cannot be told
        (not a keyed fingerprint, one made with another key, or no key here)."""
        prefix, _, rest = stored.partition(":")
        key_id, _, digest = rest.partition(":")
        mine = self.peek(value) if prefix == PREFIX and digest else None
        if mine is None or mine.split(":")[1] != key_id:
            return None
        return hmac.compare_digest(mine, stored)


_PROCESS_KEY = secrets.token_bytes(32)


def fingerprints_for(store: StateStore, environ: Mapping[str, str]) -> Fingerprints:
    """The workspace's fingerprints: keyed with ``PROMOTE_FINGERPRINT_KEY`` when set (at
    least :data:`MIN_KEY_CHARS` characters; shorter is a ``BlockedError`` that never shows
    it), else with the store's key, created there when a secret is first written."""
    text = environ.get(KEY_VARIABLE)
    if text is not None:
        if len(text) < MIN_KEY_CHARS:
            raise BlockedError(
                f"{KEY_VARIABLE} is set but has {len(text)} characters; a fingerprint key "
                f"needs at least {MIN_KEY_CHARS} (for example the output of "
                "'python -c \"import secrets; print(secrets.token_hex(32))\"'), or unset it "
                "to use the key in the state store"
            )
        key = text.encode()
        return Fingerprints(lambda create: key)
    return Fingerprints(lambda create: store.fingerprint_key(create=create))
