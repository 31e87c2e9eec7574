"""ESV ids and their placeholder tokens: ``esv-a-b_c`` <-> ``esv.a.b_c``."""

from __future__ import annotations

import re

__all__ = ["ESV_ID_PATTERN", "id_to_token", "is_valid_id", "token_to_id"]

ESV_ID_PATTERN: re.Pattern[str] = re.compile(r"^esv-[a-z0-9_-]{1,124}$")
"""The platform's id rule (the AIC API's path-parameter pattern)."""


def is_valid_id(esv_id: str) -> bool:
    """Whether ``esv_id`` is a valid ESV id (``^esv-[a-z0-9_-]{1,124}$``, no trailing newline)."""
    return ESV_ID_PATTERN.fullmatch(esv_id) is not None


def id_to_token(esv_id: str) -> str:
    """The placeholder token of an ESV id: every ``-`` becomes ``.`` (``_`` stays).

    Raises ``ValueError`` for an invalid id.
    """
    if not is_valid_id(esv_id):
        raise ValueError(f"not a valid ESV id: {esv_id!r}")
    return esv_id.replace("-", ".")


def token_to_id(token: str) -> str:
    """The ESV id a placeholder token refers to: every ``.`` becomes ``-``.

    The result may be an invalid id (``esv.Upper``); check it with :func:`is_valid_id`.
    """
    return token.replace(".", "-")
