"""What resolution works with and gives: one ESV's value in one environment
(:class:`EsvValue`), one config object as an environment runs it (:class:`Resolved`), and the
JSON paths problems and changes are named by (:func:`json_path`). :mod:`esv.resolver`
re-exports them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from esv.secrets import MASK

__all__ = ["JSON", "MAX_DEPTH", "EsvValue", "Resolved", "json_path"]

JSON = Any
"""A parsed JSON value: dict, list, str, int, float, bool or None."""

MAX_DEPTH = 256
"""Deepest nesting of objects and arrays accepted in config (real config is < 20 deep)."""

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$:@-]+")


@dataclass(frozen=True)
class EsvValue:
    """One ESV's value in one environment, as text. ``repr`` masks the text of secrets.

    ``stand_in`` (secrets only): the text stands in for a value that is not available here
    (``validate`` without a secret's source); typed conversions of text derived from it are
    not checked, and their paths are listed in :attr:`Resolved.unknown_paths`.
    """

    id: str
    text: str = field(repr=False)
    type: str = "string"
    secret: bool = False
    stand_in: bool = False

    def __repr__(self) -> str:
        shown = MASK if self.secret else repr(self.text)
        extra = ", stand_in=True" if self.stand_in else ""
        return (
            f"EsvValue(id={self.id!r}, text={shown}, type={self.type!r}, "
            f"secret={self.secret}{extra})"
        )


@dataclass(frozen=True, slots=True)
class Resolved:
    """One config object as an environment runs it.

    ``value`` is the resolved JSON (treat it as read-only: unchanged parts are shared with the
    input and with ``masked``). ``masked`` is the same with secret-derived parts replaced by
    ``********``: the part of a longer string, or the whole value of a typed wrapper.
    ``secret_paths`` are the JSON paths whose value derives from a secret. ``unknown_paths``
    are the JSON paths of typed wrappers left as written because their text derives from a
    stand-in value (:attr:`EsvValue.stand_in`): what they hold is not known here.
    """

    object_id: str
    value: JSON = field(repr=False)
    masked: JSON
    secret_paths: frozenset[str] = frozenset()
    unknown_paths: frozenset[str] = frozenset()


def json_path(parts: Sequence[str | int]) -> str:
    """Dotted JSON path with ``[i]`` for array items: ``["auth","scope",0]`` -> ``auth.scope[0]``.

    Keys that are not plain words are quoted: ``["a.b"]``. The root is ``""``.
    """
    out: list[str] = []
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(part)}]")
    return "".join(out)
