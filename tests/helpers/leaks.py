"""What a leak of a secret looks like: the value itself, encoded, or an unkeyed digest of it
(which lets anyone who reads it test a guessed value offline)."""

from __future__ import annotations

import base64
import hashlib
import json

_DIGESTS = ("sha256", "sha1", "md5", "blake2b", "blake2s", "sha512")


def leak_forms(secret: str) -> list[str]:
    """The value, its base64 and JSON-escaped forms, and every common unkeyed digest of it
    (hex and base64)."""
    data = secret.encode()
    forms = [secret, base64.b64encode(data).decode(), json.dumps(secret)[1:-1]]
    for name in _DIGESTS:
        digest = hashlib.new(name, data).digest()
        forms += [digest.hex(), base64.b64encode(digest).decode()]
    return forms


def assert_no_leak(text: str | bytes, secrets: list[str], where: str) -> None:
    """Fail naming ``where`` (never the secret) when ``text`` holds a leak form of one."""
    haystack = text.decode("latin-1") if isinstance(text, bytes) else text
    for secret in secrets:
        for index, form in enumerate(leak_forms(secret)):
            assert form not in haystack, f"secret leaked into {where} (form {index})"
