"""Secret values that cannot be printed by accident."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

__all__ = ["MASK", "SecretValue"]

MASK = "********"


class SecretValue:
    """A secret's text. ``str()``, ``repr()`` and formatting show ``********``.

    Call :meth:`reveal` at the single place that must send the value to a tenant or server.
    Equality compares values in constant time, so plans can tell "changed" without showing either.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret text itself: only for sending it where it belongs."""
        return self._value

    def keyed_digest(self, key: bytes) -> str:
        """HMAC-SHA256 of the value keyed with ``key``, as hex: safe to store where others read
        it, since without the key no guessed value can be tested against it."""
        return hmac.new(key, self._value.encode(), hashlib.sha256).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._value.encode()).digest())

    def __repr__(self) -> str:
        return f"SecretValue({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("SecretValue cannot be pickled")
